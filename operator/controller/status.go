package controller

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// Condition reasons. Each names a state a person can act on.
const (
	ReasonEndpointsReady     = "EndpointsReady"
	ReasonNoReadyEndpoints   = "NoReadyEndpoints"
	ReasonAddressesDenied    = "AddressesDenied"
	ReasonServiceConflict    = "ServiceConflict"
	ReasonApplyFailed        = "ApplyFailed"
	ReasonAliasConfigured    = "AliasConfigured"
	ReasonStaticAddresses    = "StaticAddresses"
	ReasonNotChecked         = "HealthCheckDisabled"
	ReasonDenied             = "Denied"
	ReasonUnhealthy          = "Unhealthy"
	ReasonResolvedByClient   = "ResolvedByClient"
	ReasonNamesResolved      = "NamesResolved"
	ReasonResolving          = "Resolving"
	ReasonInvalidResolution  = "InvalidResolution"
	ReasonAllHealthy         = "AllHealthy"
	ReasonInvalidHealthCheck = "InvalidHealthCheck"
	// The Resolved condition also takes the resolver's failure reasons:
	// Timeout, ServerFailure, NameNotFound, Refused, NoAddresses, QueryFailed.
)

// observation is what one reconcile found; buildStatus turns it into status.
type observation struct {
	mode     v1alpha1.Mode
	rows     []v1alpha1.EndpointStatus
	conflict string // non-empty: the Service is someone else's
	applyErr error
	// names are the DNS names of spec.addresses with what the resolver knows.
	names      []nameState
	resolveErr error // the resolver refused spec.resolution
	probeErr   error // the prober refused spec.healthCheck
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

	setResolved(xb, obs, set)
	setHealthy(xb, obs, set)

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

// setResolved explains where the addresses came from and, for DNS names,
// whether the last answers were good.
func setResolved(xb *v1alpha1.ExternalBackend, obs observation, set func(string, bool, string, string, ...any)) {
	const cond = v1alpha1.ConditionResolved
	if obs.mode == v1alpha1.ModeAlias {
		set(cond, true, ReasonResolvedByClient, "%s is resolved by the client through the CNAME", xb.Spec.ExternalName)
		return
	}
	if len(obs.names) == 0 {
		set(cond, true, ReasonStaticAddresses, "all addresses are IP literals")
		return
	}
	if obs.resolveErr != nil {
		set(cond, false, ReasonInvalidResolution, "%v", obs.resolveErr)
		return
	}
	var pending, failing []string
	reason := ""
	addresses := 0
	for _, n := range obs.names {
		addresses += len(n.state.Addresses)
		switch {
		case n.state.Err != nil:
			if reason == "" {
				reason = string(n.state.Err.Reason)
			}
			msg := fmt.Sprintf("%s: %s", n.name, n.state.Err.Message)
			if kept := len(n.state.Addresses); kept > 0 {
				msg += fmt.Sprintf(" (keeping %d last known address(es) until %s)", kept,
					n.state.Addresses[0].Expires.UTC().Format(time.RFC3339))
			}
			failing = append(failing, msg)
		case !n.state.Resolved:
			pending = append(pending, n.name)
		}
	}
	switch {
	case len(failing) > 0:
		set(cond, false, reason, "%s", strings.Join(failing, "; "))
	case len(pending) > 0:
		set(cond, false, ReasonResolving, "waiting for the first answer for %s", strings.Join(pending, ", "))
	default:
		set(cond, true, ReasonNamesResolved, "%d name(s) resolved to %d address(es)", len(obs.names), addresses)
	}
}

// setHealthy summarises the health checks.
func setHealthy(xb *v1alpha1.ExternalBackend, obs observation, set func(string, bool, string, string, ...any)) {
	const cond = v1alpha1.ConditionHealthy
	hc := xb.Spec.HealthCheck
	switch {
	case obs.mode == v1alpha1.ModeAlias || hc == nil:
		set(cond, true, ReasonNotChecked, "no healthCheck: every address is ready")
		return
	case obs.probeErr != nil:
		set(cond, false, ReasonInvalidHealthCheck, "%v", obs.probeErr)
		return
	}
	var failing []string
	probed := 0
	for _, row := range obs.rows {
		if row.Reason == ReasonDenied {
			continue
		}
		probed++
		if row.Reason == ReasonUnhealthy {
			failing = append(failing, fmt.Sprintf("%s: %s", row.Address, row.Message))
		}
	}
	if len(failing) > 0 {
		set(cond, false, ReasonUnhealthy, "%d/%d address(es) fail %s checks: %s", len(failing), probed, hc.Type, strings.Join(failing, "; "))
		return
	}
	set(cond, true, ReasonAllHealthy, "%d/%d address(es) pass %s checks", probed, probed, hc.Type)
}
