package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// Condition reasons. Each names a state a person can act on.
const (
	ReasonEndpointsReady    = "EndpointsReady"
	ReasonNoReadyEndpoints  = "NoReadyEndpoints"
	ReasonAddressesDenied   = "AddressesDenied"
	ReasonServiceConflict   = "ServiceConflict"
	ReasonApplyFailed       = "ApplyFailed"
	ReasonAliasConfigured   = "AliasConfigured"
	ReasonStaticAddresses   = "StaticAddresses"
	ReasonNotChecked        = "HealthCheckDisabled"
	ReasonResolutionNotImpl = "ResolutionNotImplemented"
	ReasonDenied            = "Denied"
	ReasonResolvedByClient  = "ResolvedByClient"
)

// observation is what one reconcile found; buildStatus turns it into status.
type observation struct {
	mode     v1alpha1.Mode
	rows     []v1alpha1.EndpointStatus
	conflict string // non-empty: the Service is someone else's
	applyErr error
	names    []string // DNS names in spec.addresses
}

// buildStatus computes the new status from the old one. Conditions keep their
// lastTransitionTime while their status does not change.
func buildStatus(xb *v1alpha1.ExternalBackend, obs observation) v1alpha1.ExternalBackendStatus {
	st := *xb.Status.DeepCopy()
	st.ObservedGeneration = xb.Generation
	st.Mode = obs.mode
	st.ServiceName = xb.Name
	st.Endpoints = obs.rows
	st.ReadyEndpoints, st.TotalEndpoints = 0, 0
	denied := 0
	for _, row := range obs.rows {
		switch {
		case row.Reason == ReasonDenied:
			denied++
		case row.Ready:
			st.ReadyEndpoints++
			st.TotalEndpoints++
		default:
			st.TotalEndpoints++
		}
	}
	st.Ready = fmt.Sprintf("%d/%d", st.ReadyEndpoints, st.TotalEndpoints)

	set := func(condType string, ok bool, reason, format string, args ...any) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type:               condType,
			Status:             status,
			Reason:             reason,
			Message:            fmt.Sprintf(format, args...),
			ObservedGeneration: xb.Generation,
		})
	}

	switch {
	case obs.mode == v1alpha1.ModeAlias:
		set(v1alpha1.ConditionResolved, true, ReasonResolvedByClient, "%s is resolved by the client through the CNAME", xb.Spec.ExternalName)
	case len(obs.names) > 0:
		set(v1alpha1.ConditionResolved, false, ReasonResolutionNotImpl, "DNS names are not resolved yet by this operator version: %v", obs.names)
	default:
		set(v1alpha1.ConditionResolved, true, ReasonStaticAddresses, "all addresses are IP literals")
	}

	if xb.Spec.HealthCheck == nil {
		set(v1alpha1.ConditionHealthy, true, ReasonNotChecked, "no healthCheck: every address is ready")
	}

	switch {
	case obs.conflict != "":
		set(v1alpha1.ConditionReady, false, ReasonServiceConflict, "%s", obs.conflict)
	case obs.applyErr != nil:
		set(v1alpha1.ConditionReady, false, ReasonApplyFailed, "%v", obs.applyErr)
	case obs.mode == v1alpha1.ModeAlias:
		set(v1alpha1.ConditionReady, true, ReasonAliasConfigured, "Service %s is an alias for %s", xb.Name, xb.Spec.ExternalName)
	case st.ReadyEndpoints > 0:
		set(v1alpha1.ConditionReady, true, ReasonEndpointsReady, "%d/%d endpoints ready", st.ReadyEndpoints, st.TotalEndpoints)
	case st.TotalEndpoints == 0 && denied > 0:
		set(v1alpha1.ConditionReady, false, ReasonAddressesDenied, "all %d addresses are denied by the address policy; see status.endpoints", denied)
	default:
		set(v1alpha1.ConditionReady, false, ReasonNoReadyEndpoints, "0/%d endpoints ready", st.TotalEndpoints)
	}
	return st
}
