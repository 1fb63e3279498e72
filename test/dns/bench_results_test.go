package dns

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// figure is one measured value: a round's, or the median of the rounds.
type figure struct {
	services int
	mode     string // shape/pinning, such as "shipped/pinned"
	plugin   string // "kubernetes", "outpost", or "" for a setting of the run
	metric   string // such as "qps", "cpu_s_per_100k", "rss_1m0s_mib"
	round    string // "1", "2", ..., or "median"
	value    float64
}

// results collects the figures for the table and the TSV file.
type results struct{ figures []figure }

// add records one value as its own median.
func (r *results) add(services int, mode, plugin, metric string, value float64) {
	r.figures = append(r.figures, figure{services, mode, plugin, metric, "median", value})
}

// addRuns records each plugin's value of every round and their median.
func (r *results) addRuns(services int, mode, metric string, runs map[string][]perfRun, value func(perfRun) float64) {
	for _, plugin := range []string{"kubernetes", "outpost"} {
		var values []float64
		for i, run := range runs[plugin] {
			values = append(values, value(run))
			r.figures = append(r.figures, figure{services, mode, plugin, metric, strconv.Itoa(i + 1), values[i]})
		}
		r.add(services, mode, plugin, metric, median(values))
	}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *results) median(services int, mode, plugin, metric string) float64 {
	for _, f := range r.figures {
		if f.services == services && f.mode == mode && f.plugin == plugin && f.metric == metric && f.round == "median" {
			return f.value
		}
	}
	return 0
}

func (r *results) memoryLine(services int, mode, plugin string) string {
	var parts []string
	for _, f := range r.figures {
		if f.services == services && f.mode == mode && f.plugin == plugin {
			parts = append(parts, fmt.Sprintf("%s %.1f", strings.TrimSuffix(f.metric, "_mib"), f.value))
		}
	}
	return strings.Join(parts, " ") + " MiB"
}

// print writes the medians side by side, with outpost/kubernetes.
func (r *results) print() {
	type key struct {
		services     int
		mode, metric string
	}
	var keys []key
	for _, f := range r.figures {
		if k := (key{f.services, f.mode, f.metric}); f.plugin != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	fmt.Printf("\n%-8s %-24s %-22s %12s %12s %8s\n", "services", "mode", "figure (median)", "kubernetes", "outpost", "ratio")
	for _, k := range keys {
		kv, ov := r.median(k.services, k.mode, "kubernetes", k.metric), r.median(k.services, k.mode, "outpost", k.metric)
		fmt.Printf("%-8d %-24s %-22s %12.2f %12.2f %7.2fx\n", k.services, k.mode, k.metric, kv, ov, ov/kv)
	}
}

// writeTSV writes every figure, one a line, for plotting: services, mode,
// plugin, metric, round, value.
func (r *results) writeTSV(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("BENCH_OUT=%s: %w", path, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("BENCH_OUT=%s: %w", path, err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "services\tmode\tplugin\tmetric\tround\tvalue")
	for _, fig := range r.figures {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%g\n", fig.services, fig.mode, fig.plugin, fig.metric, fig.round, fig.value)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("BENCH_OUT=%s: %w", path, err)
	}
	return f.Close()
}
