package syncer

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Registry holds the syncer's metrics; the binary serves it on
// --metrics-bind-address.
var Registry = prometheus.NewRegistry()

var (
	syncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "outpost_syncer", Name: "sync_duration_seconds",
		Help:    "Time to render and apply rules, by IP family and sync kind (full or partial).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"family", "kind"})
	restoreBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "outpost_syncer", Name: "restore_input_bytes",
		Help: "Size of the last iptables-restore input, by IP family and sync kind.",
	}, []string{"family", "kind"})
	restoreFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "outpost_syncer", Name: "restore_failures_total",
		Help: "Failed iptables-restore runs (each is retried as a full sync).",
	}, []string{"family", "kind"})
	rulesTotal = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "outpost_syncer", Name: "rules",
		Help: "Rules the syncer owns, by IP family and table.",
	}, []string{"family", "table"})
	servicesSkipped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "outpost_syncer", Name: "services_skipped_total",
		Help: "Services skipped because of an invalid address.",
	})
	canaryResyncs = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "outpost_syncer", Name: "canary_resyncs_total",
		Help: "Full resyncs triggered by a missing canary chain (someone flushed the table).",
	})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		Registry.MustRegister(syncDuration, restoreBytes, restoreFailures, rulesTotal, servicesSkipped, canaryResyncs)
	})
}
