package probe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
)

func init() {
	metrics.Registry.MustRegister(probes, probeSeconds, targetsTracked, transitions)
}

func observe(t Type, start time.Time, err error) {
	probeSeconds.WithLabelValues(string(t)).Observe(time.Since(start).Seconds())
	result := "Success"
	if err != nil {
		result = "Failure"
	}
	probes.WithLabelValues(string(t), result).Inc()
}
