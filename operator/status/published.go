package status

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/operator/resolve"
)

// Published is what an earlier run of the operator published for a
// backend, read back so that a restart, a new leader or a relist after an
// API server outage starts from it instead of from nothing.
type Published struct {
	// Known are the addresses of spec.addresses' DNS names, for
	// resolve.Refresher.EnsureFrom.
	Known []resolve.Known
	// NotReady are the addresses published as not ready, which the prober
	// must not call ready before their healthy threshold passes.
	NotReady map[netip.Addr]bool
}

// ReadPublished reads what xb published from its status rows and its
// EndpointSlices. The slices are written before the status, so after a crash
// between the two they are the newer: an address in a slice is published
// whatever the rows say, and its readiness is the slice's. The rows add
// what slices cannot carry: the name an address came from, its expiry and
// when it was last resolved. A slice address that is neither a literal of
// the spec nor in a row came from an answer the status never recorded: it
// is known for every DNS name of the spec, so it stays until they all
// answered, or the grace (counted from the restart, nothing older being
// known) ends.
func ReadPublished(xb *v1alpha1.ExternalBackend, endpointSlices []discoveryv1.EndpointSlice) Published {
	p := Published{NotReady: map[netip.Addr]bool{}}
	literals := map[netip.Addr]bool{}
	for _, a := range desired.SpecAddresses(xb) {
		if ip, err := netip.ParseAddr(a.Value); err == nil {
			literals[ip.Unmap()] = true
		}
	}
	inSlice := map[netip.Addr]bool{}
	for _, s := range endpointSlices {
		for _, ep := range s.Endpoints {
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				ip = ip.Unmap()
				inSlice[ip] = true
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					p.NotReady[ip] = true
				}
			}
		}
	}
	inRows := map[netip.Addr]bool{}
	for _, row := range xb.Status.Endpoints {
		ip, err := netip.ParseAddr(row.Address)
		if err != nil || row.Reason == v1alpha1.EndpointDenied {
			continue
		}
		ip = ip.Unmap()
		inRows[ip] = true
		switch {
		case !inSlice[ip] && row.Reason == v1alpha1.EndpointUnhealthy:
			p.NotReady[ip] = true
		case row.Reason == v1alpha1.EndpointStandby:
			// Published as not ready only because a preferred group
			// was serving: it passed its checks, and holding it back
			// for healthyThreshold would delay a failover right after
			// a restart.
			delete(p.NotReady, ip)
		}
		if row.Host != "" {
			p.Known = append(p.Known, resolve.Known{Name: row.Host, Addr: ip, Expires: timeOf(row.Expires), Confirmed: timeOf(row.LastResolved)})
		}
	}
	names := DNSNames(xb)
	for _, ip := range slices.SortedFunc(maps.Keys(inSlice), netip.Addr.Compare) {
		if inRows[ip] || literals[ip] {
			continue
		}
		for _, name := range names {
			p.Known = append(p.Known, resolve.Known{Name: name, Addr: ip})
		}
	}
	return p
}

// timeOf is t, or the zero time for a field not set.
func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}
