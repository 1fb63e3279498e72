package outpost

import (
	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/outpost-dev/outpost/internal/version"
)

// The metrics plugin serves the default registry; outpost_build_info is named
// as in the operator and the syncer, so one query finds every Outpost build
// in a cluster. CoreDNS' own version is coredns_build_info.
func init() { prometheus.MustRegister(version.Get().Collector()) }

// Metrics are exported under coredns_outpost_*. Counters per query result are
// resolved once at start so that serving a query costs one atomic add.
var (
	requestCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "outpost",
		Name:      "requests_total",
		Help:      "Queries answered by the outpost plugin, by result (success, nodata, nxdomain, unsynced, fallthrough, refused, error).",
	}, []string{"result"})

	objectCount = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "outpost",
		Name:      "objects",
		Help:      "Objects held in the index, by kind (service, endpointslice, namespace).",
	}, []string{"kind"})

	eventCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "outpost",
		Name:      "events_total",
		Help:      "API watch events applied to the index, by kind and type (add, update, delete).",
	}, []string{"kind", "type"})

	synced = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "outpost",
		Name:      "synced",
		Help:      "1 once the informers have synced with the API server, 0 before (answers may come from a snapshot).",
	})

	snapshotWrites = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "outpost",
		Name:      "snapshot_writes_total",
		Help:      "Snapshot writes, by result (ok, error).",
	}, []string{"result"})

	snapshotLoads = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "outpost",
		Name:      "snapshot_loads_total",
		Help:      "Snapshot loads at start, by result (loaded, stale: older than max-age, invalid: truncated, corrupt or another version, unreadable).",
	}, []string{"result"})

	snapshotSkippedEntries = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "outpost",
		Name:      "snapshot_skipped_entries_total",
		Help:      "Entries of a loaded snapshot left out because they were null, of the wrong type or invalid.",
	})

	snapshotLoaded = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "outpost",
		Name:      "snapshot_loaded_timestamp_seconds",
		Help:      "Time the index was loaded from a snapshot at start, 0 if it was not.",
	})
)

var (
	resultSuccess     = requestCount.WithLabelValues("success")
	resultNodata      = requestCount.WithLabelValues("nodata")
	resultNxdomain    = requestCount.WithLabelValues("nxdomain")
	resultUnsynced    = requestCount.WithLabelValues("unsynced")
	resultFallthrough = requestCount.WithLabelValues("fallthrough")
	resultRefused     = requestCount.WithLabelValues("refused")
	resultError       = requestCount.WithLabelValues("error")
)
