package probe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	probes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_probe_probes_total",
		Help: "Health-check probes of ExternalBackend addresses by type and result (Success or Failure).",
	}, []string{"type", "result"})
	probeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "outpost_probe_duration_seconds",
		Help:    "Time one health-check probe took.",
		Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 2, 5, 10},
	}, []string{"type"})
	targetsTracked = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "outpost_probe_targets",
		Help: "Addresses being health-checked.",
	})
	transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_probe_transitions_total",
		Help: "Addresses turning Ready or NotReady.",
	}, []string{"to"})
	// One series per ExternalBackend with a healthCheck, whatever the
	// number of its addresses and checks.
	backendFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_backend_probe_failures_total",
		Help: "Failed health-check probes of an ExternalBackend's addresses (one per address and interval, whichever of its checks failed).",
	}, []string{"namespace", "name"})
)

func init() {
	metrics.Registry.MustRegister(probes, probeSeconds, targetsTracked, transitions, backendFailures)
}

// ownerFailures is owner's failure counter; made when the owner is first
// probed, so that it exists at 0 and rate() sees its first failure.
func ownerFailures(owner types.NamespacedName) prometheus.Counter {
	return backendFailures.WithLabelValues(owner.Namespace, owner.Name)
}

// forgetOwner drops the series of an owner no longer probed.
func forgetOwner(owner types.NamespacedName) {
	backendFailures.DeleteLabelValues(owner.Namespace, owner.Name)
}

func observe(t Type, start time.Time, err error) {
	probeSeconds.WithLabelValues(string(t)).Observe(time.Since(start).Seconds())
	result := "Success"
	if err != nil {
		result = "Failure"
	}
	probes.WithLabelValues(string(t), result).Inc()
}
