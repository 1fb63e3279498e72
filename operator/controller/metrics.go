package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// writes counts every write the operator makes, so that "a steady cluster
// costs no writes" can be watched in production and asserted in tests.
var writes = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "outpost_operator_writes_total",
	Help: "Writes to the API server by the ExternalBackend controller, by object kind and verb.",
}, []string{"kind", "verb"})

// backendEndpoints is the one per-backend view of what the controller
// publishes: two series per non-alias ExternalBackend (ready and total), so
// the cardinality is that of the ExternalBackends, never of their addresses.
var backendEndpoints = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "outpost_backend_endpoints",
	Help: "Endpoints an ExternalBackend publishes, by state: ready, or total (ready or not). Alias backends publish none and have no series.",
}, []string{"namespace", "name", "state"})

func init() {
	metrics.Registry.MustRegister(writes, backendEndpoints)
}

// exportEndpoints sets the backend's series from the status being written;
// an alias has no endpoints to count, so it has no series.
func exportEndpoints(key types.NamespacedName, st v1alpha1.ExternalBackendStatus) {
	if st.Mode == v1alpha1.ModeAlias {
		forgetEndpoints(key)
		return
	}
	backendEndpoints.WithLabelValues(key.Namespace, key.Name, "ready").Set(float64(st.ReadyEndpoints))
	backendEndpoints.WithLabelValues(key.Namespace, key.Name, "total").Set(float64(st.TotalEndpoints))
}

// forgetEndpoints drops the series of a backend that is gone, so deleted
// backends do not accumulate.
func forgetEndpoints(key types.NamespacedName) {
	backendEndpoints.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "name": key.Name})
}
