package syncer

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	netutils "k8s.io/utils/net"

	"github.com/outpost-dev/outpost/operator/syncer/render"
)

// defaultAffinitySeconds is the API default for ClientIP session affinity.
const defaultAffinitySeconds = 10800

// ServicePorts reduces a Service to the ports the rules of one IP family
// need. Headless and ExternalName Services, and Services without a cluster
// IP of this family, give none. A malformed address is an error naming the
// field: the caller skips the Service rather than emit a rule iptables-restore
// would reject (which would fail the whole restore).
func ServicePorts(svc *v1.Service, ipv6 bool) ([]render.ServicePort, error) {
	if svc.Spec.Type == v1.ServiceTypeExternalName || svc.Spec.ClusterIP == v1.ClusterIPNone || svc.Spec.ClusterIP == "" {
		return nil, nil
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 {
		ips = []string{svc.Spec.ClusterIP}
	}
	var clusterIP netip.Addr
	for i, s := range ips {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("spec.clusterIPs[%d] %q: not an IP address", i, s)
		}
		if a.Is6() == ipv6 && !clusterIP.IsValid() {
			clusterIP = a
		}
	}
	if !clusterIP.IsValid() {
		return nil, nil
	}
	var externalIPs, lbIPs []netip.Addr
	for i, s := range svc.Spec.ExternalIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("spec.externalIPs[%d] %q: not an IP address", i, s)
		}
		if a.Is6() == ipv6 {
			externalIPs = append(externalIPs, a)
		}
	}
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" || ing.IPMode != nil && *ing.IPMode == v1.LoadBalancerIPModeProxy {
			continue
		}
		a, err := netip.ParseAddr(ing.IP)
		if err != nil {
			return nil, fmt.Errorf("status.loadBalancer.ingress[%d].ip %q: not an IP address", i, ing.IP)
		}
		if a.Is6() == ipv6 {
			lbIPs = append(lbIPs, a)
		}
	}
	sourceRanges, err := loadBalancerSourceRanges(svc, ipv6)
	if err != nil {
		return nil, err
	}
	accessible := svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer || len(svc.Spec.ExternalIPs) > 0
	affinity := 0
	if svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		affinity = defaultAffinitySeconds
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = int(*c.ClientIP.TimeoutSeconds)
		}
	}
	externalLocal := accessible && svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	healthCheckNodePort := 0
	if svc.Spec.Type == v1.ServiceTypeLoadBalancer && externalLocal {
		healthCheckNodePort = int(svc.Spec.HealthCheckNodePort)
	}
	out := make([]render.ServicePort, 0, len(svc.Spec.Ports))
	for i, p := range svc.Spec.Ports {
		proto := strings.ToLower(string(p.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, fmt.Errorf("spec.ports[%d].protocol %q: not TCP, UDP or SCTP", i, p.Protocol)
		}
		out = append(out, render.ServicePort{
			Namespace:                svc.Namespace,
			Name:                     svc.Name,
			PortName:                 p.Name,
			Protocol:                 proto,
			ClusterIP:                clusterIP,
			Port:                     int(p.Port),
			NodePort:                 int(p.NodePort),
			ExternalIPs:              externalIPs,
			LoadBalancerIPs:          lbIPs,
			LoadBalancerSourceRanges: sourceRanges,
			HealthCheckNodePort:      healthCheckNodePort,
			ExternallyAccessible:     accessible,
			ExternalPolicyLocal:      externalLocal,
			InternalPolicyLocal:      svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal,
			AffinitySeconds:          affinity,
		})
	}
	return out, nil
}

// loadBalancerSourceRanges returns spec.loadBalancerSourceRanges of one
// family, masked, read as kube-proxy reads them: surrounding whitespace
// (which old API servers let through) is trimmed, IPv4 with leading zeros
// is accepted, and a range of length 0 means everyone, so the list is
// dropped. Unlike kube-proxy, which ignores a malformed range, an error
// names it: ignoring it could leave a list of nothing but other-family
// ranges and so open the load balancer to every source.
func loadBalancerSourceRanges(svc *v1.Service, ipv6 bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range svc.Spec.LoadBalancerSourceRanges {
		_, n, err := netutils.ParseCIDRSloppy(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("spec.loadBalancerSourceRanges[%d] %q: not a CIDR (such as 203.0.113.0/24)", i, s)
		}
		addr, _ := netip.AddrFromSlice(n.IP)
		bits, _ := n.Mask.Size()
		p := netip.PrefixFrom(addr.Unmap(), bits)
		if !p.IsValid() {
			return nil, fmt.Errorf("spec.loadBalancerSourceRanges[%d] %q: an IPv4-mapped IPv6 range; write it as IPv4", i, s)
		}
		if p.Addr().Is6() != ipv6 {
			continue
		}
		if bits == 0 {
			return nil, nil
		}
		out = append(out, p)
	}
	return out, nil
}

// Endpoints collects a service port's endpoints of one family from its
// EndpointSlices, matching the slice port by name and protocol, sorted by
// "ip:port" as kube-proxy sorts them. An address appearing in several
// slices is used once.
func Endpoints(sp *render.ServicePort, slices []*discovery.EndpointSlice, ipv6 bool) []render.Endpoint {
	want := discovery.AddressTypeIPv4
	if ipv6 {
		want = discovery.AddressTypeIPv6
	}
	// Sort keys are "ip:port" strings (kube-proxy's order), written into
	// one shared buffer rather than one allocation per endpoint.
	type keyed struct {
		start, end int
		ep         render.Endpoint
	}
	var list []keyed
	var arena []byte
	var seen map[string]bool
	if len(slices) > 1 {
		seen = map[string]bool{}
	}
	for _, s := range slices {
		if s.AddressType != want {
			continue
		}
		port := -1
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := "tcp"
			if p.Protocol != nil {
				proto = strings.ToLower(string(*p.Protocol))
			}
			if name == sp.PortName && proto == sp.Protocol && p.Port != nil {
				port = int(*p.Port)
				break
			}
		}
		if port < 0 {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(e.Addresses[0])
			if err != nil || a.Is6() != ipv6 {
				continue
			}
			ep := render.Endpoint{IP: a, Port: port, Ready: true}
			if e.Conditions.Ready != nil {
				ep.Ready = *e.Conditions.Ready
			}
			ep.Serving = ep.Ready
			if e.Conditions.Serving != nil {
				ep.Serving = *e.Conditions.Serving
			}
			if e.Conditions.Terminating != nil {
				ep.Terminating = *e.Conditions.Terminating
			}
			if e.NodeName != nil {
				ep.NodeName = *e.NodeName
			}
			start := len(arena)
			arena = netip.AddrPortFrom(a, uint16(port)).AppendTo(arena)
			if seen != nil {
				key := string(arena[start:])
				if seen[key] {
					arena = arena[:start]
					continue
				}
				seen[key] = true
			}
			list = append(list, keyed{start, len(arena), ep})
		}
	}
	sort.Slice(list, func(i, j int) bool {
		return bytes.Compare(arena[list[i].start:list[i].end], arena[list[j].start:list[j].end]) < 0
	})
	out := make([]render.Endpoint, len(list))
	for i := range list {
		out[i] = list[i].ep
	}
	return out
}

// shrinkService keeps only what ServicePorts reads, so the informer cache
// holds small objects (no managed fields, annotations or unused spec).
func shrinkService(svc *v1.Service) *v1.Service {
	out := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, UID: svc.UID, ResourceVersion: svc.ResourceVersion},
		Spec: v1.ServiceSpec{
			Type:                     svc.Spec.Type,
			ClusterIP:                svc.Spec.ClusterIP,
			ClusterIPs:               svc.Spec.ClusterIPs,
			ExternalIPs:              svc.Spec.ExternalIPs,
			SessionAffinity:          svc.Spec.SessionAffinity,
			SessionAffinityConfig:    svc.Spec.SessionAffinityConfig,
			ExternalTrafficPolicy:    svc.Spec.ExternalTrafficPolicy,
			InternalTrafficPolicy:    svc.Spec.InternalTrafficPolicy,
			LoadBalancerSourceRanges: svc.Spec.LoadBalancerSourceRanges,
			HealthCheckNodePort:      svc.Spec.HealthCheckNodePort,
		},
	}
	out.Spec.Ports = make([]v1.ServicePort, len(svc.Spec.Ports))
	for i, p := range svc.Spec.Ports {
		out.Spec.Ports[i] = v1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port, NodePort: p.NodePort}
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		out.Status.LoadBalancer.Ingress = append(out.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ing.IP, IPMode: ing.IPMode})
	}
	return out
}

// shrinkSlice keeps only what Endpoints reads.
func shrinkSlice(s *discovery.EndpointSlice) *discovery.EndpointSlice {
	out := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion},
		AddressType: s.AddressType,
		Ports:       s.Ports,
	}
	if svc, ok := s.Labels[discovery.LabelServiceName]; ok {
		out.Labels = map[string]string{discovery.LabelServiceName: svc}
	}
	if at, ok := s.Annotations[v1.EndpointsLastChangeTriggerTime]; ok {
		// For the network programming latency.
		out.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: at}
	}
	out.Endpoints = make([]discovery.Endpoint, len(s.Endpoints))
	for i, e := range s.Endpoints {
		out.Endpoints[i] = discovery.Endpoint{Conditions: e.Conditions, NodeName: e.NodeName}
		if len(e.Addresses) > 0 {
			out.Endpoints[i].Addresses = e.Addresses[:1]
		}
	}
	return out
}
