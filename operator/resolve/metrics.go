package resolve

import (
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
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
)

func init() {
	metrics.Registry.MustRegister(resolutions, resolutionSeconds, namesTracked)
}

// countResult counts one family's outcome of one resolution.
func countResult(f corev1.IPFamily, err *Error) {
	result := "Success"
	if err != nil {
		result = err.Reason
	}
	resolutions.WithLabelValues(string(f), result).Inc()
}
