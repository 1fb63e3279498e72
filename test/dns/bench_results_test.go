package dns

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/outpost-dev/outpost/internal/benchresult"
)

// results collects the figures for the table and for the record make
// plots reads (internal/benchresult).
type results struct{ figures []benchresult.Figure }

// unitOf reads a metric's unit from its name ("qps", "..._mib", "..._ms",
// "cpu_s_per_100k").
func unitOf(metric string) string {
	switch {
	case strings.HasSuffix(metric, "qps"):
		return "QPS"
	case strings.HasSuffix(metric, "_mib"):
		return "MiB"
	case strings.HasSuffix(metric, "_ms"):
		return "ms"
	case strings.HasPrefix(metric, "cpu_s_"):
		return "CPU seconds"
	}
	return ""
}

// add records one value measured once.
func (r *results) add(services int, mode, plugin, metric string, value float64) {
	r.figures = append(r.figures, benchresult.Figure{Metric: metric, Mode: mode, Unit: unitOf(metric), Size: services, Side: plugin, Value: value})
}

// addRuns records each plugin's value of every round, with their median.
func (r *results) addRuns(services int, mode, metric string, runs map[string][]perfRun, value func(perfRun) float64) {
	for _, plugin := range []string{"kubernetes", "outpost"} {
		var values []float64
		for _, run := range runs[plugin] {
			values = append(values, value(run))
		}
		r.figures = append(r.figures, benchresult.Rounds(metric, mode, unitOf(metric), services, plugin, values))
	}
}

func (r *results) median(services int, mode, plugin, metric string) float64 {
	for _, f := range r.figures {
		if f.Size == services && f.Mode == mode && f.Side == plugin && f.Metric == metric {
			return f.Value
		}
	}
	return 0
}

// print writes the medians side by side, with outpost/kubernetes.
func (r *results) print() {
	type key struct {
		services     int
		mode, metric string
	}
	var keys []key
	for _, f := range r.figures {
		if k := (key{f.Size, f.Mode, f.Metric}); f.Side != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	fmt.Printf("\n%-8s %-24s %-22s %12s %12s %8s\n", "services", "mode", "figure (median)", "kubernetes", "outpost", "ratio")
	for _, k := range keys {
		kv, ov := r.median(k.services, k.mode, "kubernetes", k.metric), r.median(k.services, k.mode, "outpost", k.metric)
		fmt.Printf("%-8d %-24s %-22s %12.2f %12.2f %7.2fx\n", k.services, k.mode, k.metric, kv, ov, ov/kv)
	}
}

// write records every figure with its rounds at path (BENCH_OUT).
func (r *results) write(path string) error {
	f := benchresult.File{Bench: "bench-dns", Written: time.Now().UTC(), Machine: fmt.Sprintf("%d CPUs, %s/%s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH), Figures: r.figures}
	if err := benchresult.Write(path, f); err != nil {
		return fmt.Errorf("BENCH_OUT=%s: %w", path, err)
	}
	return nil
}
