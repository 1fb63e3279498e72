package syncer

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-dev/outpost/internal/version"
	"github.com/outpost-dev/outpost/operator/syncer/restore"
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
		Help: "Failed iptables-restore runs of a sync (each is retried as a full sync, with backoff).",
	}, []string{"family", "kind"})
	consecutiveFailures = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "outpost_syncer", Name: "sync_consecutive_failures",
		Help: "Syncs failed in a row since the last successful one (0: the kernel holds the current rules).",
	})
	lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "outpost_syncer", Name: "last_successful_sync_timestamp_seconds",
		Help: "Unix time of the last sync that left every family's rules current.",
	})
	servicesRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "outpost_syncer", Name: "services_refused_total",
		Help: "Services whose new rules iptables-restore refused; each keeps the rules last accepted for it (see its RulesRefused Event).",
	}, []string{"family"})
	conntrackDeleted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "outpost_syncer", Name: "conntrack_entries_deleted_total",
		Help: "UDP and SCTP conntrack entries deleted because their endpoint stopped serving or their Service got its first endpoint.",
	}, []string{"family"})
	conntrackFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "outpost_syncer", Name: "conntrack_cleanup_failures_total",
		Help: "Failed conntrack cleanups (retried after the next sync).",
	}, []string{"family"})
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
	networkProgramming = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "outpost_syncer", Name: "network_programming_duration_seconds",
		Help: "Time from an EndpointSlice change (its endpoints.kubernetes.io/last-change-trigger-time) to the rules for it applied, by IP family: kube-proxy's kubeproxy_network_programming_duration_seconds.",
		// kube-proxy's buckets, so the two histograms compare bucket by bucket.
		Buckets: slices.Concat(
			prometheus.LinearBuckets(0.25, 0.25, 2), // 0.25s, 0.5s
			prometheus.LinearBuckets(1, 1, 59),      // 1s ... 59s
			prometheus.LinearBuckets(60, 5, 12),     // 60s ... 115s
			prometheus.LinearBuckets(120, 30, 7),    // 2min ... 5min
		),
	}, []string{"family"})
	iptablesBackend = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "outpost_syncer", Name: "iptables_backend",
		Help: iptablesBackendHelp,
	}, []string{"backend"})
	registerOnce sync.Once
)

const iptablesBackendHelp = "The iptables backend the syncer programs, chosen at start (--iptables-backend): 1 for it, nft or legacy."

// setIPTablesBackend exports the backend chosen; there is one at a time.
func setIPTablesBackend(b restore.Backend) {
	iptablesBackend.Reset()
	iptablesBackend.WithLabelValues(b.String()).Set(1)
}

// observeProgrammed records the latency of each change now applied.
func observeProgrammed(fam string, triggers []time.Time, applied time.Time) {
	for _, at := range triggers {
		networkProgramming.WithLabelValues(fam).Observe(applied.Sub(at).Seconds())
	}
}

func registerMetrics() {
	registerOnce.Do(func() {
		Registry.MustRegister(syncDuration, restoreBytes, restoreFailures, consecutiveFailures, lastSuccess, servicesRefused,
			rulesTotal, servicesSkipped, canaryResyncs, conntrackDeleted, conntrackFailures, networkProgramming, iptablesBackend, version.Get().Collector())
	})
}
