package controller

import (
	"context"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/operator/probe"
	"github.com/outpost-dev/outpost/operator/resolve"
	"github.com/outpost-dev/outpost/operator/status"
)

// observe asks the resolver and the prober what they know of xb, registering
// what they should work on next. Neither ever blocks: they run beside the
// reconciler and wake it through the notify source when something changes.
// published is what xb's status and EndpointSlices say was published: the
// names and addresses the resolver and prober start tracking begin from it,
// so a restart, a new leader or a relist never shrinks what was published.
func (r *ExternalBackendReconciler) observe(ctx context.Context, xb *v1alpha1.ExternalBackend, published status.Published) status.Inputs {
	key := types.NamespacedName{Namespace: xb.Namespace, Name: xb.Name}
	in := status.Inputs{Allow: r.Policy.Check, Limits: r.Limits, Now: time.Now(), Published: published}
	if desired.IsAlias(xb) {
		in.AliasErr = r.Policy.CheckExternalName(xb.Namespace, xb.Spec.ExternalName)
	}
	if reason, _ := status.Refusal(xb, in); reason != "" || desired.IsAlias(xb) {
		// Nothing to resolve or probe: an alias is resolved by its
		// clients, and a refused backend publishes nothing.
		r.forget(key)
		return in
	}

	if names := status.DNSNames(xb); len(names) > 0 {
		in.ResolveErr = r.Refresher.EnsureFrom(key, names, resolutionSpec(xb), published.Known)
		in.Names = make([]status.Name, 0, len(names))
		for _, name := range names {
			st, _ := r.Refresher.Lookup(key, name)
			in.Names = append(in.Names, status.Name{Name: name, State: st})
		}
	} else {
		r.Refresher.Forget(key)
	}

	if xb.Spec.HealthCheck != nil {
		targets := status.ProbeTargets(xb, in)
		var spec probe.Spec
		spec, in.ProbeErr = probeSpec(xb, r.caBundleReader(ctx, xb.Namespace))
		if in.ProbeErr == nil {
			in.ProbeErr = r.Prober.Ensure(key, targets, spec)
		}
		if in.ProbeErr == nil {
			in.Health = make(map[netip.Addr]probe.Status, len(targets))
			for _, t := range targets {
				in.Health[t.Addr] = r.Prober.Status(key, t.Addr)
			}
		}
	} else {
		r.Prober.Forget(key)
	}
	return in
}

// forget makes the resolver and the prober drop xb.
func (r *ExternalBackendReconciler) forget(key types.NamespacedName) {
	r.Refresher.Forget(key)
	r.Prober.Forget(key)
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
		if r.RotationWindow != nil {
			spec.RotationWindow = r.RotationWindow.Duration
		}
	}
	return spec
}
