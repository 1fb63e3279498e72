package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// writes counts every write the operator makes, so that "a steady cluster
// costs no writes" can be watched in production and asserted in tests.
var writes = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "outpost_operator_writes_total",
	Help: "Writes to the API server by the ExternalBackend controller, by object kind and verb.",
}, []string{"kind", "verb"})

func init() {
	metrics.Registry.MustRegister(writes)
}
