// Package benchresult is the record the side-by-side benchmarks (make
// bench-dns, make bench-syncer) write next to their printed tables, and
// that make plots reads: one figure per metric, size and side, with every
// round it was measured in, so a plot or a reader can check the median
// against the rounds it came from.
package benchresult

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Figure is one measured quantity of one side (a plugin, a proxy) at one
// size.
type Figure struct {
	// Metric names what was measured, e.g. "qps" or "restore-input-bytes";
	// plots select figures by it.
	Metric string `json:"metric"`
	// Mode is the configuration it was measured in, e.g. "shipped,
	// cache off, pinned"; empty where there is only one.
	Mode string `json:"mode,omitempty"`
	// Unit of Value and Rounds, e.g. "QPS", "MiB", "bytes", "rules".
	Unit string `json:"unit"`
	// Size is the number of Services.
	Size int `json:"size"`
	// Side is what was measured: "outpost", "kubernetes", "kube-proxy".
	Side string `json:"side"`
	// Value is the median of Rounds, or the one deterministic value.
	Value float64 `json:"value"`
	// Rounds holds every round's value, in the order measured.
	Rounds []float64 `json:"rounds,omitempty"`
}

// File is what one benchmark run writes.
type File struct {
	// Bench is the make target that wrote it.
	Bench   string    `json:"bench"`
	Written time.Time `json:"written"`
	// Machine describes where it ran (CPUs, kernel), since ratios are
	// only comparable on the same kind of machine.
	Machine string   `json:"machine,omitempty"`
	Figures []Figure `json:"figures"`
}

// Rounds returns a figure whose value is the median of rounds.
func Rounds(metric, mode, unit string, size int, side string, rounds []float64) Figure {
	return Figure{Metric: metric, Mode: mode, Unit: unit, Size: size, Side: side, Value: Median(rounds), Rounds: slices.Clone(rounds)}
}

// Median of xs (the mean of the middle two for an even count); 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Write writes f as indented JSON to path, creating its directory.
func Write(path string, f File) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Read reads a file Write wrote.
func Read(path string) (File, error) {
	var f File
	b, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("%s: not a benchmark result: %w", path, err)
	}
	return f, nil
}

// Select returns the figures of one metric and mode, ordered by side and
// then size.
func (f File) Select(metric, mode string) []Figure {
	var out []Figure
	for _, fig := range f.Figures {
		if fig.Metric == metric && fig.Mode == mode {
			out = append(out, fig)
		}
	}
	slices.SortStableFunc(out, func(a, b Figure) int {
		if a.Side != b.Side {
			if a.Side < b.Side {
				return -1
			}
			return 1
		}
		return a.Size - b.Size
	})
	return out
}
