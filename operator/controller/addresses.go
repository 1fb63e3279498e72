package controller

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/operator/probe"
	"github.com/outpost-dev/outpost/operator/resolve"
)

// nameState is what the resolver knows of one DNS name of spec.addresses.
type nameState struct {
	name  string
	state resolve.State
}

// addressInputs is everything the address rows are computed from, gathered
// from the resolver and the prober so that buildRows stays pure.
type addressInputs struct {
	names  []nameState
	health func(netip.Addr) probe.Status // nil without a healthCheck
	allow  func(netip.Addr) error        // the address policy
}

// buildRows turns the spec's literal addresses and the resolved names into
// one row per distinct address, in spec order: denied addresses are kept as
// rows with reason Denied (and no endpoint); the rest become endpoints,
// ready unless their health check says otherwise.
func buildRows(xb *v1alpha1.ExternalBackend, in addressInputs) ([]v1alpha1.EndpointStatus, []desired.Endpoint) {
	var rows []v1alpha1.EndpointStatus
	var endpoints []desired.Endpoint
	seen := map[netip.Addr]bool{}
	add := func(ip netip.Addr, row v1alpha1.EndpointStatus) {
		ip = ip.Unmap()
		if seen[ip] {
			return
		}
		seen[ip] = true
		row.Address = ip.String()
		if err := in.allow(ip); err != nil {
			row.Reason, row.Message = ReasonDenied, err.Error()
			rows = append(rows, row)
			return
		}
		row.Ready = true
		if in.health != nil {
			if st := in.health(ip); !st.Ready {
				row.Ready, row.Reason, row.Message = false, ReasonUnhealthy, st.LastError
			}
		}
		rows = append(rows, row)
		endpoints = append(endpoints, desired.Endpoint{Address: ip, Ready: row.Ready})
	}
	states := map[string]resolve.State{}
	for _, n := range in.names {
		states[n.name] = n.state
	}
	for _, a := range xb.Spec.Addresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			add(ip, v1alpha1.EndpointStatus{})
			continue
		}
		for _, r := range states[a].Addresses {
			expires := metav1.NewTime(r.Expires.Truncate(time.Second))
			add(r.Addr, v1alpha1.EndpointStatus{Host: a, Expires: &expires})
		}
	}
	return rows, endpoints
}

// dnsNames lists the DNS names among spec.addresses.
func dnsNames(xb *v1alpha1.ExternalBackend) []string {
	var names []string
	for _, a := range xb.Spec.Addresses {
		if _, err := netip.ParseAddr(a); err != nil {
			names = append(names, a)
		}
	}
	return names
}

// resolutionSpec is spec.resolution for the resolver.
func resolutionSpec(xb *v1alpha1.ExternalBackend) resolve.Spec {
	var spec resolve.Spec
	for _, f := range desired.ResolutionFamilies(xb) {
		spec.Families = append(spec.Families, corev1.IPFamily(f))
	}
	if r := xb.Spec.Resolution; r != nil {
		if r.MinTTL != nil {
			spec.MinTTL = r.MinTTL.Duration
		}
		if r.MaxTTL != nil {
			spec.MaxTTL = r.MaxTTL.Duration
		}
	}
	return spec
}

// probeSpec is spec.healthCheck for the prober; the port defaults to the
// first port's targetPort.
func probeSpec(xb *v1alpha1.ExternalBackend) probe.Spec {
	hc := xb.Spec.HealthCheck
	spec := probe.Spec{
		Type:               probe.Type(hc.Type),
		Port:               int(hc.Port),
		Path:               hc.Path,
		HealthyThreshold:   int(hc.HealthyThreshold),
		UnhealthyThreshold: int(hc.UnhealthyThreshold),
		VerifyTLS:          hc.VerifyCertificate != nil && *hc.VerifyCertificate,
	}
	if spec.Port == 0 && len(xb.Spec.Ports) > 0 {
		spec.Port = int(desired.TargetPort(xb.Spec.Ports[0]))
	}
	if hc.Interval != nil {
		spec.Interval = hc.Interval.Duration
	}
	if hc.Timeout != nil {
		spec.Timeout = hc.Timeout.Duration
	}
	return spec
}

// observe asks the resolver and the prober what they know of xb, registering
// what they should work on next. Neither ever blocks: they run beside the
// reconciler and wake it through the notify source when something changes.
func (r *ExternalBackendReconciler) observe(ctx context.Context, xb *v1alpha1.ExternalBackend) (observation, []desired.Endpoint) {
	key := types.NamespacedName{Namespace: xb.Namespace, Name: xb.Name}
	obs := observation{mode: v1alpha1.ModeStatic}
	if desired.IsAlias(xb) {
		obs.mode = v1alpha1.ModeAlias
		r.forget(key)
		return obs, nil
	}

	in := addressInputs{allow: r.Policy.Check}
	names := dnsNames(xb)
	if len(names) > 0 {
		obs.mode = v1alpha1.ModeResolved
		if err := r.Tracker.Ensure(key, names, resolutionSpec(xb)); err != nil {
			obs.resolveErr = err
		}
		obs.names = make([]nameState, 0, len(names))
		for _, name := range names {
			st, _ := r.Tracker.Lookup(key, name)
			obs.names = append(obs.names, nameState{name: name, state: st})
		}
		in.names = obs.names
	} else {
		r.Tracker.Forget(key)
	}

	if xb.Spec.HealthCheck != nil {
		// Only addresses the policy allows are probed: the operator must
		// not become a port scanner for the cluster's users.
		rows, _ := buildRows(xb, addressInputs{names: in.names, allow: in.allow})
		var targets []probe.Target
		for _, row := range rows {
			if row.Reason != ReasonDenied {
				targets = append(targets, probe.Target{Addr: netip.MustParseAddr(row.Address), Host: row.Host})
			}
		}
		if err := r.Prober.Ensure(key, targets, probeSpec(xb)); err != nil {
			obs.probeErr = err
		} else {
			in.health = func(ip netip.Addr) probe.Status { return r.Prober.Status(key, ip) }
		}
	} else {
		r.Prober.Forget(key)
	}

	var endpoints []desired.Endpoint
	obs.rows, endpoints = buildRows(xb, in)
	r.recordAddressEvents(ctx, xb, obs.rows)
	return obs, endpoints
}

func (r *ExternalBackendReconciler) forget(key types.NamespacedName) {
	r.Tracker.Forget(key)
	r.Prober.Forget(key)
}

// recordAddressEvents tells the user, in one Event per kind, which addresses
// were newly denied, which resolved addresses came and went, and which
// changed health, by comparing the new rows with the last status.
func (r *ExternalBackendReconciler) recordAddressEvents(ctx context.Context, xb *v1alpha1.ExternalBackend, rows []v1alpha1.EndpointStatus) {
	previous := map[string]v1alpha1.EndpointStatus{}
	for _, row := range xb.Status.Endpoints {
		previous[row.Address] = row
	}
	current := map[string]bool{}
	var denied, added, removed, unhealthy, healthy []string
	for _, row := range rows {
		current[row.Address] = true
		before, existed := previous[row.Address]
		switch {
		case row.Reason == ReasonDenied && (!existed || before.Reason != ReasonDenied):
			denied = append(denied, row.Message)
		case row.Host != "" && !existed:
			added = append(added, row.Address+" ("+row.Host+")")
		}
		if existed && before.Reason != ReasonDenied && row.Reason != ReasonDenied && before.Ready != row.Ready {
			if row.Ready {
				healthy = append(healthy, row.Address)
			} else {
				unhealthy = append(unhealthy, fmt.Sprintf("%s: %s", row.Address, row.Message))
			}
		}
	}
	for _, row := range xb.Status.Endpoints {
		if row.Host != "" && !current[row.Address] {
			removed = append(removed, row.Address+" ("+row.Host+")")
		}
	}
	if len(denied) > 0 {
		logf.FromContext(ctx).Info("addresses denied", "addresses", denied)
		// One Event per reconcile: the events API folds Events that differ
		// only in their note into a series, which would hide all but one.
		r.Recorder.Eventf(xb, nil, corev1.EventTypeWarning, EventAddressDenied, "Deny",
			"%d address(es) left out by the address policy: %s", len(denied), strings.Join(denied, "; "))
	}
	if len(added) > 0 || len(removed) > 0 {
		r.Recorder.Eventf(xb, nil, corev1.EventTypeNormal, EventAddressesChanged, "Resolve",
			"DNS answers changed: added [%s], removed [%s]", strings.Join(added, ", "), strings.Join(removed, ", "))
	}
	if len(unhealthy) > 0 {
		r.Recorder.Eventf(xb, nil, corev1.EventTypeWarning, EventEndpointsUnhealthy, "Probe", "not ready: %s", strings.Join(unhealthy, "; "))
	}
	if len(healthy) > 0 {
		r.Recorder.Eventf(xb, nil, corev1.EventTypeNormal, EventEndpointsHealthy, "Probe", "ready again: %s", strings.Join(slices.Sorted(slices.Values(healthy)), ", "))
	}
}
