package main

import (
	"testing"

	"github.com/outpost-dev/outpost/operator/syncer/render"
)

// BenchmarkSync runs a first full sync and a one-endpoint partial sync of
// 10k services x 10 endpoints through outpost-syncer and through
// kube-proxy's proxier, side by side (go test -bench . in this module; the
// table in operator/syncer/README.md comes from `make bench-syncer`).
func BenchmarkSync(b *testing.B) {
	w := gen(10000, 10)
	for _, side := range []struct {
		name string
		run  func() (*result, error)
	}{
		{"outpost", func() (*result, error) { return outpost(w, 5000, render.Compact, "OUTPOST") }},
		{"kube-proxy", func() (*result, error) { return kubeProxy(w, 5000) }},
	} {
		b.Run(side.name, func(b *testing.B) {
			var full, partial float64
			for range b.N {
				r, err := side.run()
				if err != nil {
					b.Fatal(err)
				}
				full += r.renderFull.Seconds()
				partial += r.renderPartial.Seconds()
			}
			b.ReportMetric(full/float64(b.N)*1e3, "full-ms")
			b.ReportMetric(partial/float64(b.N)*1e3, "one-endpoint-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
