package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryac "k8s.io/client-go/applyconfigurations/discovery/v1"
)

// Every EndpointSlice the operator writes carries the time of the change it
// publishes in endpoints.kubernetes.io/last-change-trigger-time, as the
// EndpointSlice controller's slices do, so kube-proxy and outpost-syncer
// measure the network programming latency of ExternalBackends too. The time
// is left out when comparing with what was written before: a stamp that
// differs on every reconcile must not make a steady cluster write.

// ignoreChangeTrigger drops the stamp from what we wrote before.
func ignoreChangeTrigger(owned any) {
	if s, ok := owned.(*discoveryac.EndpointSliceApplyConfiguration); ok && s != nil {
		delete(s.Annotations, corev1.EndpointsLastChangeTriggerTime)
	}
}

// stampChangeTrigger stamps a slice about to be written with now.
func stampChangeTrigger(want applyConfiguration, now time.Time) {
	if s, ok := want.(*discoveryac.EndpointSliceApplyConfiguration); ok {
		s.WithAnnotations(map[string]string{corev1.EndpointsLastChangeTriggerTime: now.UTC().Format(time.RFC3339Nano)})
	}
}
