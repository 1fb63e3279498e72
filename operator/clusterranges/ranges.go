// Package clusterranges learns the cluster's own address ranges (its
// ServiceCIDRs, every Node's pod CIDRs and addresses, the API server's
// endpoints) and keeps an address policy's learned set equal to them, so
// that no ExternalBackend can point a Service at the cluster itself even when
// the admin passed no --service-cidr or --pod-cidr, or the cluster grew a
// range since.
package clusterranges

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/operator/policy"
)

// The API server's endpoints are the EndpointSlices of this Service.
const (
	apiServerNamespace = metav1.NamespaceDefault
	apiServerService   = "kubernetes"
)

// Learn returns the ranges the objects say belong to the cluster, each
// with where it was found. Unparsable values are skipped: the API server
// validates them, and a policy must not stop learning over one bad object.
func Learn(nodes []corev1.Node, serviceCIDRs []networkingv1.ServiceCIDR, apiServerSlices []discoveryv1.EndpointSlice) []policy.LearnedRange {
	var ranges []policy.LearnedRange
	for i := range nodes {
		ranges = append(ranges, rangesOf(&nodes[i])...)
	}
	for i := range serviceCIDRs {
		ranges = append(ranges, rangesOf(&serviceCIDRs[i])...)
	}
	for i := range apiServerSlices {
		ranges = append(ranges, rangesOf(&apiServerSlices[i])...)
	}
	return ranges
}

// rangesOf is what one watched object contributes to the learned set, so
// that an update that changes none of it can be ignored.
func rangesOf(obj any) []policy.LearnedRange {
	var ranges []policy.LearnedRange
	addPrefix := func(s, source string) {
		if prefix, err := netip.ParsePrefix(s); err == nil {
			ranges = append(ranges, policy.LearnedRange{Prefix: prefix, Source: source})
		}
	}
	addAddr := func(s, source string) {
		if addr, err := netip.ParseAddr(s); err == nil {
			ranges = append(ranges, policy.LearnedRange{Prefix: netip.PrefixFrom(addr, addr.BitLen()), Source: source})
		}
	}
	switch o := obj.(type) {
	case *corev1.Node:
		podCIDRs := o.Spec.PodCIDRs
		if len(podCIDRs) == 0 && o.Spec.PodCIDR != "" {
			podCIDRs = []string{o.Spec.PodCIDR}
		}
		for _, c := range podCIDRs {
			addPrefix(c, fmt.Sprintf("the pod CIDR of node %s", o.Name))
		}
		// Hostname and InternalDNS entries are names, not addresses,
		// and do not parse.
		for _, a := range o.Status.Addresses {
			addAddr(a.Address, fmt.Sprintf("an address of node %s", o.Name))
		}
	case *networkingv1.ServiceCIDR:
		for _, c := range o.Spec.CIDRs {
			addPrefix(c, fmt.Sprintf("ServiceCIDR %s", o.Name))
		}
	case *discoveryv1.EndpointSlice:
		for _, ep := range o.Endpoints {
			for _, a := range ep.Addresses {
				addAddr(a, "an API server endpoint")
			}
		}
	}
	return ranges
}
