package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-dev/outpost/internal/benchresult"
)

func sample() benchresult.File {
	f := benchresult.File{Bench: "test"}
	for _, n := range []int{1000, 10000, 30000} {
		x := float64(n)
		f.Figures = append(f.Figures,
			benchresult.Figure{Metric: "first-packet-rules", Size: n, Side: "outpost", Value: 40 + x/1000},
			benchresult.Figure{Metric: "first-packet-rules", Size: n, Side: "kube-proxy", Value: x / 2},
			benchresult.Figure{Metric: "full-restore-input", Size: n, Side: "outpost", Value: 1600 * x},
			benchresult.Figure{Metric: "full-restore-input", Size: n, Side: "kube-proxy", Value: 3100 * x},
			benchresult.Figure{Metric: "one-endpoint-restore-input", Size: n, Side: "outpost", Value: 1400},
			benchresult.Figure{Metric: "one-endpoint-restore-input", Size: n, Side: "kube-proxy", Value: 140 * x},
			benchresult.Rounds("qps", "bare/pinned", "QPS", n, "outpost", []float64{60000, 61000, 59000}),
			benchresult.Rounds("qps", "bare/pinned", "QPS", n, "kubernetes", []float64{36000, 37000, 35000}),
			benchresult.Rounds("qps", "shipped/pinned", "QPS", n, "outpost", []float64{40000}),
			benchresult.Rounds("qps", "shipped/pinned", "QPS", n, "kubernetes", []float64{28000}),
		)
	}
	return f
}

func TestChartsShowBothSides(t *testing.T) {
	dir := t.TempDir()
	f := sample()
	written, err := drawAll(f, append(append([]chart{}, syncerCharts...), dnsCharts...), dir)
	if err != nil {
		t.Fatal(err)
	}
	// memory.svg has no figures in the sample and must not be drawn.
	want := []string{"rules-walked.svg", "restore-input.svg", "qps.svg"}
	if len(written) != len(want) {
		t.Fatalf("wrote %v, want %v", written, want)
	}
	for i, name := range want {
		if filepath.Base(written[i]) != name {
			t.Errorf("chart %d is %s, want %s", i, written[i], name)
		}
		b, err := os.ReadFile(written[i])
		if err != nil {
			t.Fatal(err)
		}
		svg := string(b)
		for _, label := range []string{"outpost", "kube"} {
			if !strings.Contains(svg, label) {
				t.Errorf("%s has no %q in its legend", name, label)
			}
		}
	}
	// The bar chart is drawn at the largest size all its series have.
	b, _ := os.ReadFile(filepath.Join(dir, "qps.svg"))
	if !strings.Contains(string(b), "30000 Services") {
		t.Errorf("qps.svg does not say it shows 30000 Services")
	}
}

func TestNoFiguresIsAnError(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	if err := benchresult.Write(empty, benchresult.File{Bench: "x"}); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"-dns", empty, "-syncer", filepath.Join(dir, "missing.json"), "-dns-dir", dir, "-syncer-dir", dir})
	if err == nil || !strings.Contains(err.Error(), "no chart drawn") {
		t.Errorf("run with no figures: %v, want a 'no chart drawn' error", err)
	}
}
