package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/outpost-dev/outpost/internal/benchresult"
)

// series is one metric in one mode, drawn for every side that has it.
type series struct {
	metric, mode string
	// label names the series in the legend (lines) or on the axis (bars).
	label string
}

// chart is one SVG file.
type chart struct {
	file, title, ylabel string
	// bars draws one group per series at one size (the largest all
	// series were measured at); otherwise one line per side and series
	// against the number of Services.
	bars   bool
	series []series
	// scale divides every value (e.g. bytes to MiB).
	scale float64
	logY  bool
}

var dnsCharts = []chart{
	{file: "qps.svg", title: "DNS throughput, CoreDNS on one CPU", ylabel: "queries per second (median of rounds)", bars: true, series: []series{
		{"qps", "bare/pinned", "bare block"},
		{"qps", "shipped/pinned", "Corefile.example,\ncache off"},
		{"qps", "shipped+cache/pinned", "Corefile.example,\ncache on"},
	}},
	{file: "memory.svg", title: "CoreDNS memory, Corefile.example, one CPU", ylabel: "MiB", bars: true, series: []series{
		{"peak_sync_mib", "shipped+cache/pinned", "peak,\ninitial sync"},
		{"rss_60s_mib", "shipped+cache/pinned", "60 s\nafter sync"},
		{"anon_60s_mib", "shipped+cache/pinned", "of which\nanonymous"},
		{"rss_300s_mib", "shipped+cache/pinned", "300 s\nafter sync"},
		{"peak_relist_mib", "shipped+cache/pinned", "peak, relist after\nAPI server restart"},
	}},
}

var syncerCharts = []chart{
	{file: "rules-walked.svg", title: "Rules a first packet walks (mean over sampled Services)", ylabel: "rules", logY: true, series: []series{
		{"first-packet-rules", "", ""},
	}},
	{file: "restore-input.svg", title: "iptables-restore input", ylabel: "KiB", scale: 1024, logY: true, series: []series{
		{"full-restore-input", "", "full sync"},
		{"one-endpoint-restore-input", "", "one-endpoint change"},
	}},
}

// sideColors keeps each side's colour the same in every chart.
var sideColors = map[string]color.Color{
	"outpost":    color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"kubernetes": color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"kube-proxy": color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

func colorOf(side string) color.Color {
	if c, ok := sideColors[side]; ok {
		return c
	}
	return color.Gray{Y: 0x60}
}

// drawAll draws every chart whose figures f holds and returns the files
// written.
func drawAll(f benchresult.File, charts []chart, dir string) ([]string, error) {
	var written []string
	for _, c := range charts {
		p, ok, err := c.plot(f)
		if err != nil {
			return written, fmt.Errorf("%s: %w", c.file, err)
		}
		if !ok {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return written, err
		}
		path := filepath.Join(dir, c.file)
		if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, path); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

func (c chart) value(fig benchresult.Figure) float64 {
	if c.scale != 0 {
		return fig.Value / c.scale
	}
	return fig.Value
}

// plot builds the chart, or reports false when f has none of its figures.
func (c chart) plot(f benchresult.File) (*plot.Plot, bool, error) {
	p := plot.New()
	p.Title.Text = c.title
	p.Y.Label.Text = c.ylabel
	p.Legend.Top = true
	if c.logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	var ok bool
	var err error
	if c.bars {
		p, ok, err = c.barPlot(p, f)
	} else {
		p, ok, err = c.linePlot(p, f)
	}
	if !ok || err != nil {
		return p, ok, err
	}
	// Head room for the legend, so that it never covers a line or bar.
	if c.logY {
		p.Y.Max *= 30
	} else {
		p.Y.Min, p.Y.Max = 0, p.Y.Max*1.35
	}
	return p, true, nil
}

func (c chart) linePlot(p *plot.Plot, f benchresult.File) (*plot.Plot, bool, error) {
	p.X.Label.Text = "Services"
	// Sizes grow by factors (1k, 10k, 30k...).
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	drawn := false
	dashes := [][]vg.Length{nil, {vg.Points(4), vg.Points(3)}, {vg.Points(1), vg.Points(2)}}
	for i, s := range c.series {
		bySide := map[string]plotter.XYs{}
		var sides []string
		for _, fig := range f.Select(s.metric, s.mode) {
			if _, ok := bySide[fig.Side]; !ok {
				sides = append(sides, fig.Side)
			}
			bySide[fig.Side] = append(bySide[fig.Side], plotter.XY{X: float64(fig.Size), Y: c.value(fig)})
		}
		for _, side := range sides {
			line, points, err := plotter.NewLinePoints(bySide[side])
			if err != nil {
				return nil, false, err
			}
			line.Color, points.Color = colorOf(side), colorOf(side)
			line.Dashes = dashes[i%len(dashes)]
			p.Add(line, points)
			label := side
			if s.label != "" {
				label += ", " + s.label
			}
			p.Legend.Add(label, line, points)
			drawn = true
		}
	}
	return p, drawn, nil
}

func (c chart) barPlot(p *plot.Plot, f benchresult.File) (*plot.Plot, bool, error) {
	// Series with figures, drawn at the largest size they all have (or,
	// if they share none, the first one's largest).
	var present []series
	var shared []int
	for _, s := range c.series {
		var sizes []int
		for _, fig := range f.Select(s.metric, s.mode) {
			sizes = append(sizes, fig.Size)
		}
		switch {
		case len(sizes) == 0:
			continue
		case len(present) == 0:
			shared = sizes
		default:
			shared = slices.DeleteFunc(shared, func(n int) bool { return !slices.Contains(sizes, n) })
		}
		present = append(present, s)
	}
	if len(present) == 0 {
		return nil, false, nil
	}
	if len(shared) == 0 {
		for _, fig := range f.Select(present[0].metric, present[0].mode) {
			shared = append(shared, fig.Size)
		}
	}
	size := slices.Max(shared)
	p.Title.Text += fmt.Sprintf(", %d Services", size)
	var sides []string
	values := map[string]plotter.Values{}
	var names []string
	for i, s := range present {
		names = append(names, s.label)
		for _, fig := range f.Select(s.metric, s.mode) {
			if fig.Size != size {
				continue
			}
			if _, ok := values[fig.Side]; !ok {
				sides = append(sides, fig.Side)
				values[fig.Side] = make(plotter.Values, len(present))
			}
			values[fig.Side][i] = c.value(fig)
		}
	}
	width := vg.Points(18)
	for i, side := range sides {
		bars, err := plotter.NewBarChart(values[side], width)
		if err != nil {
			return nil, false, err
		}
		bars.Color = colorOf(side)
		bars.LineStyle.Width = 0
		bars.Offset = width * vg.Length(2*i-len(sides)+1) / 2
		p.Add(bars)
		p.Legend.Add(side, bars)
	}
	p.NominalX(names...)
	return p, len(sides) > 0, nil
}
