package benchresult

import (
	"path/filepath"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestRoundTripAndSelect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dns.json")
	in := File{Bench: "bench-dns", Written: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Figures: []Figure{
		Rounds("qps", "bare", "QPS", 50000, "outpost", []float64{9, 7, 8}),
		Rounds("qps", "bare", "QPS", 10000, "outpost", []float64{10, 12, 11, 13, 9}),
		Rounds("qps", "bare", "QPS", 10000, "kubernetes", []float64{5, 6, 7}),
		Rounds("qps", "shipped", "QPS", 10000, "outpost", []float64{1}),
	}}
	if err := Write(path, in); err != nil {
		t.Fatal(err)
	}
	out, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	got := out.Select("qps", "bare")
	if len(got) != 3 {
		t.Fatalf("Select returned %d figures, want 3: %+v", len(got), got)
	}
	want := []struct {
		side  string
		size  int
		value float64
	}{{"kubernetes", 10000, 6}, {"outpost", 10000, 11}, {"outpost", 50000, 8}}
	for i, w := range want {
		if got[i].Side != w.side || got[i].Size != w.size || got[i].Value != w.value {
			t.Errorf("figure %d = %s/%d/%v, want %s/%d/%v", i, got[i].Side, got[i].Size, got[i].Value, w.side, w.size, w.value)
		}
	}
	if len(got[1].Rounds) != 5 {
		t.Errorf("rounds not kept: %v", got[1].Rounds)
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("reading a missing file succeeded")
	}
}
