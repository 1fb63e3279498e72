package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	sysctltest "k8s.io/component-helpers/node/util/sysctl/testing"
	kpconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	kpiptables "k8s.io/kubernetes/pkg/proxy/iptables"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	kpiptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
	"k8s.io/utils/ptr"

	"github.com/outpost-dev/outpost/operator/syncer"
	"github.com/outpost-dev/outpost/operator/syncer/render"
)

// variedWorld covers every feature both proxies implement.
func variedWorld() *world {
	w := &world{}
	port := func(name string, p int32, proto v1.Protocol, nodePort int32) v1.ServicePort {
		return v1.ServicePort{Name: name, Port: p, Protocol: proto, NodePort: nodePort}
	}
	svc := func(name, ip string, typ v1.ServiceType, mutate func(*v1.Service), ports ...v1.ServicePort) {
		s := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec: v1.ServiceSpec{Type: typ, ClusterIP: ip, ClusterIPs: []string{ip}, Ports: ports}}
		if mutate != nil {
			mutate(s)
		}
		w.services = append(w.services, s)
	}
	type ep struct {
		ip                          string
		node                        string
		ready, serving, terminating bool
	}
	slice := func(svcName string, ports []discovery.EndpointPort, eps ...ep) {
		s := &discovery.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("%s-%d", svcName, len(w.slices)), Labels: map[string]string{discovery.LabelServiceName: svcName}},
			AddressType: discovery.AddressTypeIPv4, Ports: ports,
		}
		for _, e := range eps {
			d := discovery.Endpoint{Addresses: []string{e.ip}, Conditions: discovery.EndpointConditions{
				Ready: ptr.To(e.ready), Serving: ptr.To(e.serving), Terminating: ptr.To(e.terminating)}}
			if e.node != "" {
				d.NodeName = ptr.To(e.node)
			}
			s.Endpoints = append(s.Endpoints, d)
		}
		w.slices = append(w.slices, s)
	}
	sp := func(name string, p int32, proto v1.Protocol) discovery.EndpointPort {
		return discovery.EndpointPort{Name: ptr.To(name), Port: ptr.To(p), Protocol: ptr.To(proto)}
	}
	ready := func(ip, node string) ep { return ep{ip: ip, node: node, ready: true, serving: true} }
	tcp80 := []discovery.EndpointPort{sp("http", 8080, v1.ProtocolTCP)}

	svc("a", "172.30.0.1", v1.ServiceTypeClusterIP, nil, port("http", 80, v1.ProtocolTCP, 0))
	slice("a", tcp80, ready("10.180.0.1", "node1"), ready("10.180.0.2", "node0"), ep{ip: "10.180.0.3", terminating: true})
	svc("b", "172.30.0.2", v1.ServiceTypeNodePort, func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.ExternalIPs = []string{"192.168.99.2"}
	}, port("http", 80, v1.ProtocolTCP, 30002))
	slice("b", tcp80, ready("10.180.1.1", "node0"), ready("10.180.1.2", "node1"))
	svc("c", "172.30.0.3", v1.ServiceTypeLoadBalancer, func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.3"}}
	}, port("http", 80, v1.ProtocolTCP, 30003))
	slice("c", tcp80, ready("10.180.2.1", "node1"), ready("10.180.2.2", "node2"), ready("10.180.2.3", ""))
	svc("d", "172.30.0.4", v1.ServiceTypeClusterIP, func(s *v1.Service) {
		s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
	}, port("http", 80, v1.ProtocolTCP, 0))
	slice("d", tcp80, ready("10.180.3.1", "node0"), ready("10.180.3.2", "node1"))
	svc("e", "172.30.0.5", v1.ServiceTypeNodePort, func(s *v1.Service) {
		s.Spec.ExternalIPs = []string{"192.168.99.5"}
	}, port("http", 80, v1.ProtocolTCP, 30005))
	svc("f", "172.30.0.6", v1.ServiceTypeClusterIP, nil,
		port("dns", 53, v1.ProtocolUDP, 0), port("dns-tcp", 53, v1.ProtocolTCP, 0), port("sig", 2905, v1.ProtocolSCTP, 0))
	slice("f", []discovery.EndpointPort{sp("dns", 5353, v1.ProtocolUDP), sp("dns-tcp", 5353, v1.ProtocolTCP), sp("sig", 2905, v1.ProtocolSCTP)},
		ready("10.180.5.1", ""), ready("10.180.5.2", ""))
	svc("g", "172.30.0.7", v1.ServiceTypeNodePort, func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}, port("http", 80, v1.ProtocolTCP, 30007))
	slice("g", tcp80, ep{ip: "10.180.6.1", node: "node0", serving: true, terminating: true}, ep{ip: "10.180.6.2", node: "node1", serving: true, terminating: true})
	svc("h", "172.30.0.8", v1.ServiceTypeNodePort, func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}, port("http", 80, v1.ProtocolTCP, 30008))
	slice("h", tcp80, ready("10.180.7.1", "node1"))
	// loadBalancerSourceRanges: Cluster policy with a range holding the
	// node IP (so the LB IPs themselves are admitted) and one with only
	// other-family and padded ranges; Local policy with and without local
	// endpoints; a 0.0.0.0/0 range (no firewall); no endpoints (REJECT,
	// no firewall). The Local ones also have health check node ports.
	lb := func(name, ip string, lbIPs []string, ranges []string, local bool, hcPort int32, nodePort int32) {
		svc(name, ip, v1.ServiceTypeLoadBalancer, func(s *v1.Service) {
			s.Spec.LoadBalancerSourceRanges = ranges
			for _, a := range lbIPs {
				s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: a})
			}
			if local {
				s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			}
			s.Spec.HealthCheckNodePort = hcPort
		}, port("http", 80, v1.ProtocolTCP, nodePort), port("https", 443, v1.ProtocolTCP, nodePort+1))
	}
	tcpWeb := []discovery.EndpointPort{sp("http", 8080, v1.ProtocolTCP), sp("https", 8443, v1.ProtocolTCP)}
	lb("fw-cluster", "172.30.0.20", []string{"203.0.113.20", "203.0.113.21"}, []string{"192.168.0.0/16", " 198.51.100.0/24"}, false, 0, 30020)
	slice("fw-cluster", tcpWeb, ready("10.180.20.1", "node1"), ready("10.180.20.2", "node0"))
	lb("fw-v6only", "172.30.0.21", []string{"203.0.113.22"}, []string{"2001:db8::/32"}, false, 0, 30022)
	slice("fw-v6only", tcpWeb, ready("10.180.21.1", "node1"))
	lb("fw-local", "172.30.0.22", []string{"203.0.113.23"}, []string{"198.51.100.0/25", "192.0.2.7/32"}, true, 32022, 30024)
	slice("fw-local", tcpWeb, ready("10.180.22.1", "node0"), ready("10.180.22.2", "node1"))
	lb("fw-local-remote", "172.30.0.23", []string{"203.0.113.24"}, []string{"198.51.100.0/24"}, true, 32023, 30026)
	slice("fw-local-remote", tcpWeb, ready("10.180.23.1", "node1"))
	lb("fw-open", "172.30.0.24", []string{"203.0.113.25"}, []string{"198.51.100.0/24", "0.0.0.0/0"}, false, 0, 30028)
	slice("fw-open", tcpWeb, ready("10.180.24.1", "node1"))
	lb("fw-empty", "172.30.0.25", []string{"203.0.113.26"}, []string{"198.51.100.0/24"}, true, 32025, 30030)
	svc("headless", "None", v1.ServiceTypeClusterIP, nil, port("http", 80, v1.ProtocolTCP, 0))
	slice("headless", tcp80, ready("10.180.8.1", ""))
	w.services = append(w.services, &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ext"},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeExternalName, ExternalName: "db.example.org"}})
	return w
}

// normalize sorts a table's rule lines, dropping nfacct matches (metrics
// only) and kubelet's localnet firewall, which is not kube-proxy's.
func normalize(input []byte, table string) []string {
	var out []string
	cur := ""
	for _, l := range strings.Split(string(input), "\n") {
		if strings.HasPrefix(l, "*") {
			cur = l[1:]
		}
		if cur != table || !strings.HasPrefix(l, "-A ") {
			continue
		}
		if i := strings.Index(l, " -m nfacct --nfacct-name "); i >= 0 {
			_, after, _ := strings.Cut(l[i+len(" -m nfacct --nfacct-name "):], " ")
			l = l[:i] + " " + after
		}
		if strings.HasPrefix(l, "-A KUBE-FIREWALL ") {
			continue
		}
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// TestKubeProxyLayoutEqualsKubeProxy renders the same API objects with
// kube-proxy v1.37.2's own proxier and with ours (--chain-prefix KUBE,
// --layout kube-proxy) and requires identical nat and filter rules.
func TestKubeProxyLayoutEqualsKubeProxy(t *testing.T) {
	w := variedWorld()
	ipt := &kubeIPT{FakeIPTables: kpiptablestest.NewFake()}
	cfg := &kpconfig.KubeProxyConfiguration{
		IPTables:      kpconfig.KubeProxyIPTablesConfiguration{MasqueradeBit: ptr.To[int32](14), LocalhostNodePorts: ptr.To(false)},
		SyncPeriod:    metav1.Duration{Duration: time.Hour},
		MinSyncPeriod: metav1.Duration{Duration: time.Second},
	}
	p, err := kpiptables.NewProxier(context.Background(), cfg, v1.IPv4Protocol, ipt, sysctltest.NewFake(),
		proxyutil.NewDetectLocalByCIDR("10.0.0.0/8"), "node0", net.ParseIP("192.168.0.2"), &events.FakeRecorder{}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.services {
		p.OnServiceAdd(s)
	}
	for _, s := range w.slices {
		p.OnEndpointSliceAdd(s)
	}
	p.OnServiceSynced()
	p.OnEndpointSlicesSynced()

	tr := syncer.NewChangeTracker()
	for _, s := range w.services {
		tr.SetService(s)
	}
	for _, s := range w.slices {
		tr.SetSlice(s)
	}
	got := &capture{}
	s, err := syncer.New(tr, got, syncer.Options{Log: logr.Discard(), Families: []render.Config{{
		Prefix: "KUBE", Layout: render.KubeProxy, NodeName: "node0", MasqueradeMark: fmt.Sprintf("%#08x", 1<<14),
		ClusterCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		PrimaryNodeIP: netip.MustParseAddr("192.168.0.2"),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	// The comparison must cover the firewall and the health check ports:
	// kube-proxy's output has to contain them.
	for _, c := range []struct{ table, rule string }{
		{"nat", "-A KUBE-FW-"},
		{"nat", "-s 203.0.113.20 -j KUBE-EXT-"}, // the node is in a range: LB IPs admitted
		{"filter", "-A KUBE-PROXY-FIREWALL "},
		{"filter", "health check node port"},
	} {
		if !slices.ContainsFunc(normalize(ipt.last, c.table), func(l string) bool { return strings.Contains(l, c.rule) }) {
			t.Errorf("kube-proxy's %s table has no rule with %q: the inputs no longer cover it", c.table, c.rule)
		}
	}
	for _, table := range []string{"nat", "filter"} {
		want, have := normalize(ipt.last, table), normalize(got.last, table)
		if !slices.Equal(have, want) {
			t.Errorf("%s table differs from kube-proxy's.\nonly kube-proxy:\n%s\nonly ours:\n%s", table,
				strings.Join(minus(want, have), "\n"), strings.Join(minus(have, want), "\n"))
		}
	}
}

func minus(a, b []string) []string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, l)
		}
	}
	return out
}
