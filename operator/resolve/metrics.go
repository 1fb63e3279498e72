package resolve

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	resolutions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_resolve_resolutions_total",
		Help: "DNS resolutions of ExternalBackend names by IP family and result (Success or a failure reason).",
	}, []string{"family", "result"})
	resolutionSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "outpost_resolve_duration_seconds",
		Help:    "Time to resolve one name for one IP family, CNAME chain and server fail-over included.",
		Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 2, 5, 10},
	}, []string{"family"})
	namesTracked = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "outpost_resolve_names",
		Help: "Names (per owner) the refresher keeps resolved.",
	})
	// The per-backend series: one of each per ExternalBackend with DNS
	// names, whatever the number of names, so an alert can compare them.
	lastResolution = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "outpost_backend_last_resolution_timestamp_seconds",
		Help: "Unix time by which every DNS name of an ExternalBackend last resolved without error (its least recently resolved name's); 0 while a name never has.",
	}, []string{"namespace", "name"})
	resolutionGrace = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "outpost_backend_resolution_grace_seconds",
		Help: "How long an ExternalBackend keeps the last known addresses of a failing name (its resolution.maxTTL).",
	}, []string{"namespace", "name"})
)

func init() {
	metrics.Registry.MustRegister(resolutions, resolutionSeconds, namesTracked, lastResolution, resolutionGrace)
}

// countResult counts one family's outcome of one resolution.
func countResult(f corev1.IPFamily, err *Error) {
	result := "Success"
	if err != nil {
		result = err.Reason
	}
	resolutions.WithLabelValues(string(f), result).Inc()
}

// exportOwner sets owner's series; oldest is its least recently confirmed
// name's confirmation (zero while one never was).
func exportOwner(owner types.NamespacedName, oldest time.Time, grace time.Duration) {
	ts := 0.0
	if !oldest.IsZero() {
		ts = float64(oldest.UnixNano()) / 1e9
	}
	lastResolution.WithLabelValues(owner.Namespace, owner.Name).Set(ts)
	resolutionGrace.WithLabelValues(owner.Namespace, owner.Name).Set(grace.Seconds())
}

// forgetOwner drops owner's series once it has no names to resolve.
func forgetOwner(owner types.NamespacedName) {
	lastResolution.DeleteLabelValues(owner.Namespace, owner.Name)
	resolutionGrace.DeleteLabelValues(owner.Namespace, owner.Name)
}
