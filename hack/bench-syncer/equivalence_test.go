package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
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
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	kpiptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
	"k8s.io/utils/ptr"

	"github.com/outpost-dev/outpost/operator/syncer"
	"github.com/outpost-dev/outpost/operator/syncer/iptablestest"
	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/restore"
	testnetns "github.com/outpost-dev/outpost/test/lib/netns"
)

// family writes the test's IPv4 addresses in the family under test: IPv6
// embeds them in fd00::/96, so ranges keep what they contain.
type family struct{ ipv6 bool }

func (f family) String() string {
	if f.ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

func (f family) protocol() v1.IPFamily {
	if f.ipv6 {
		return v1.IPv6Protocol
	}
	return v1.IPv4Protocol
}

func (f family) addressType() discovery.AddressType {
	if f.ipv6 {
		return discovery.AddressTypeIPv6
	}
	return discovery.AddressTypeIPv4
}

func (f family) addr(v4 string) netip.Addr {
	a := netip.MustParseAddr(v4)
	if !f.ipv6 {
		return a
	}
	b := netip.MustParseAddr("fd00::").As16()
	a4 := a.As4()
	copy(b[12:], a4[:])
	return netip.AddrFrom16(b)
}

// ip maps an address; anything else (v1.ClusterIPNone) is kept.
func (f family) ip(v4 string) string {
	if _, err := netip.ParseAddr(v4); err != nil {
		return v4
	}
	return f.addr(v4).String()
}

// otherFamilyRange stands for a loadBalancerSourceRanges entry of the
// other family, which both proxies ignore.
const otherFamilyRange = "2001:db8::/32"

// cidr maps a loadBalancerSourceRanges entry, keeping its padding;
// 0.0.0.0/0 stays "everything" and otherFamilyRange stays of the other
// family.
func (f family) cidr(v4 string) string {
	trimmed := strings.TrimSpace(v4)
	pad := v4[:strings.Index(v4, trimmed)]
	p := netip.MustParsePrefix(trimmed)
	switch {
	case !f.ipv6:
		return v4
	case trimmed == otherFamilyRange:
		return pad + "192.0.2.0/24"
	case p.Bits() == 0:
		return pad + "::/0"
	}
	return pad + netip.PrefixFrom(f.addr(p.Addr().String()), 96+p.Bits()).String()
}

// variedWorld covers every feature both proxies implement, in one IP
// family.
func variedWorld(f family) *world {
	w := &world{}
	port := func(name string, p int32, proto v1.Protocol, nodePort int32) v1.ServicePort {
		return v1.ServicePort{Name: name, Port: p, Protocol: proto, NodePort: nodePort}
	}
	svc := func(name, ip string, typ v1.ServiceType, mutate func(*v1.Service), ports ...v1.ServicePort) {
		s := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec: v1.ServiceSpec{Type: typ, ClusterIP: f.ip(ip), ClusterIPs: []string{f.ip(ip)}, Ports: ports}}
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
			AddressType: f.addressType(), Ports: ports,
		}
		for _, e := range eps {
			d := discovery.Endpoint{Addresses: []string{f.ip(e.ip)}, Conditions: discovery.EndpointConditions{
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
		s.Spec.ExternalIPs = []string{f.ip("192.168.99.2")}
	}, port("http", 80, v1.ProtocolTCP, 30002))
	slice("b", tcp80, ready("10.180.1.1", "node0"), ready("10.180.1.2", "node1"))
	svc("c", "172.30.0.3", v1.ServiceTypeLoadBalancer, func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: f.ip("203.0.113.3")}}
	}, port("http", 80, v1.ProtocolTCP, 30003))
	slice("c", tcp80, ready("10.180.2.1", "node1"), ready("10.180.2.2", "node2"), ready("10.180.2.3", ""))
	svc("d", "172.30.0.4", v1.ServiceTypeClusterIP, func(s *v1.Service) {
		s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
	}, port("http", 80, v1.ProtocolTCP, 0))
	slice("d", tcp80, ready("10.180.3.1", "node0"), ready("10.180.3.2", "node1"))
	svc("e", "172.30.0.5", v1.ServiceTypeNodePort, func(s *v1.Service) {
		s.Spec.ExternalIPs = []string{f.ip("192.168.99.5")}
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
			for _, r := range ranges {
				s.Spec.LoadBalancerSourceRanges = append(s.Spec.LoadBalancerSourceRanges, f.cidr(r))
			}
			for _, a := range lbIPs {
				s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: f.ip(a)})
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
	lb("fw-other-family", "172.30.0.21", []string{"203.0.113.22"}, []string{otherFamilyRange}, false, 0, 30022)
	slice("fw-other-family", tcpWeb, ready("10.180.21.1", "node1"))
	lb("fw-local", "172.30.0.22", []string{"203.0.113.23"}, []string{"198.51.100.0/25", "192.0.2.7/32"}, true, 32022, 30024)
	slice("fw-local", tcpWeb, ready("10.180.22.1", "node0"), ready("10.180.22.2", "node1"))
	lb("fw-local-remote", "172.30.0.23", []string{"203.0.113.24"}, []string{"198.51.100.0/24"}, true, 32023, 30026)
	slice("fw-local-remote", tcpWeb, ready("10.180.23.1", "node1"))
	lb("fw-open", "172.30.0.24", []string{"203.0.113.25"}, []string{"198.51.100.0/24", "0.0.0.0/0"}, false, 0, 30028)
	slice("fw-open", tcpWeb, ready("10.180.24.1", "node1"))
	lb("fw-empty", "172.30.0.25", []string{"203.0.113.26"}, []string{"198.51.100.0/24"}, true, 32025, 30030)
	// Hairpin: endpoints on this node, on another node (it reaches the
	// Local-policy node port through the pod rule), and outside the
	// cluster CIDR on no node (an external backend, Outpost's case), with
	// affinity.
	svc("hairpin", "172.30.0.9", v1.ServiceTypeNodePort, func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
	}, port("http", 80, v1.ProtocolTCP, 30009))
	slice("hairpin", tcp80, ready("10.180.9.1", "node0"), ready("10.180.9.2", "node1"), ready("192.168.1.2", ""))
	svc("external-backends", "172.30.0.10", v1.ServiceTypeClusterIP, nil, port("http", 80, v1.ProtocolTCP, 0))
	slice("external-backends", tcp80, ready("192.168.1.2", ""), ready("192.168.1.3", ""))
	svc("headless", v1.ClusterIPNone, v1.ServiceTypeClusterIP, nil, port("http", 80, v1.ProtocolTCP, 0))
	slice("headless", tcp80, ready("10.180.8.1", ""))
	w.services = append(w.services, &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ext"},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeExternalName, ExternalName: "db.example.org"}})
	return w
}

// A normalization is one deliberate difference between kube-proxy's rules
// and ours that the comparison forgives; each is listed under "Deliberate
// differences" in operator/syncer/README.md. Everything else is compared
// rule by rule, in order.
type normalization struct {
	name, reason string
	// line rewrites one line of restore input or iptables-save output;
	// false drops it.
	line func(string) (string, bool)
}

// structuralNormalizations are the deliberate differences canonical
// forgives by how it compares rather than line by line.
var structuralNormalizations = []normalization{
	{name: "layout", reason: "restore input is compared as the chains it leaves: kube-proxy interleaves its chains Service by Service in Go map order"},
	{name: "dispatch order", reason: "dispatchChains are compared as sorted lists"},
}

// dispatchChains are filled by kube-proxy in Go map order of its Service
// ports, a different order every run; their rules match disjoint
// destinations (address, protocol, port), so no order changes a packet's
// fate. Their rules are compared as sorted lists; every other chain in
// order.
var dispatchChains = map[string]bool{
	"nat KUBE-SERVICES": true, "nat KUBE-NODEPORTS": true,
	"filter KUBE-SERVICES": true, "filter KUBE-EXTERNAL-SERVICES": true,
	"filter KUBE-NODEPORTS": true, "filter KUBE-PROXY-FIREWALL": true,
}

var normalizations = []normalization{
	{
		name:   "nfacct",
		reason: `kube-proxy counts dropped invalid packets with "-m nfacct --nfacct-name ct_state_invalid_dropped_pkts" and node-port packets to 127.0.0.0/8 with a rule of their own before each node port's (a metric; the counters exist only where kube-proxy created them); ours has no such metric`,
		line: func(l string) (string, bool) {
			const m = " -m nfacct --nfacct-name "
			i := strings.Index(l, m)
			if i < 0 {
				return l, true
			}
			counter, after, _ := strings.Cut(l[i+len(m):], " ")
			if counter == "localhost_nps_accepted_pkts" {
				// Only counts: the node port's next rule makes the same
				// jump for every address.
				return "", false
			}
			return l[:i] + " " + after, true
		},
	},
	{
		name:   "canary",
		reason: "kube-proxy creates its KUBE-PROXY-CANARY chains with iptables -N, ours declares them in the restore input",
		line: func(l string) (string, bool) {
			return l, !strings.HasPrefix(l, ":KUBE-PROXY-CANARY ")
		},
	},
	{
		name:   "built-in chains",
		reason: "both proxies insert the jumps from PREROUTING, OUTPUT, INPUT, FORWARD and POSTROUTING outside the restore input (kube-proxy with iptables -I, ours with restore.Runner.EnsureJump): only KUBE-* chains are compared",
		line: func(l string) (string, bool) {
			switch {
			case strings.HasPrefix(l, ":"):
				return l, strings.HasPrefix(l, ":KUBE-")
			case strings.HasPrefix(l, "-A "):
				return l, strings.HasPrefix(l, "-A KUBE-")
			}
			return l, true
		},
	},
}

// ruleState is what restore inputs leave in tables that start empty: per
// table and chain, the rules in order.
type ruleState map[string]map[string][]string

// apply applies restore input (or reads iptables-save output), through
// the normalizations if normalize is set.
func (st ruleState) apply(in []byte, normalize bool) {
	var cur map[string][]string
	for _, l := range strings.Split(string(in), "\n") {
		if normalize {
			l = normalized(l)
		}
		switch {
		case strings.HasPrefix(l, "*"):
			if st[l[1:]] == nil {
				st[l[1:]] = map[string][]string{}
			}
			cur = st[l[1:]]
		case strings.HasPrefix(l, ":"):
			// A declaration flushes the chain (and creates it).
			name, _, _ := strings.Cut(l[1:], " ")
			cur[name] = []string{}
		case strings.HasPrefix(l, "-A "):
			name, _, _ := strings.Cut(l[3:], " ")
			cur[name] = append(cur[name], l)
		case strings.HasPrefix(l, "-X "):
			delete(cur, strings.TrimSpace(l[3:]))
		}
	}
}

// normalized applies every normalization to a line; "" drops it.
func normalized(l string) string {
	for _, n := range normalizations {
		var keep bool
		if l, keep = n.line(l); !keep {
			return ""
		}
	}
	return l
}

// recording is a restore.Runner that also keeps what its restores left.
type recording struct {
	restore.Runner
	state ruleState
}

func (r *recording) Restore(ctx context.Context, ipv6 bool, in []byte) error {
	if err := r.Runner.Restore(ctx, ipv6, in); err != nil {
		return err
	}
	r.state.apply(in, false)
	return nil
}

// restoreInput writes the state back as restore input, for the tracer.
func (st ruleState) restoreInput() []byte {
	var b bytes.Buffer
	for _, tn := range slices.Sorted(maps.Keys(st)) {
		fmt.Fprintf(&b, "*%s\n", tn)
		for _, cn := range slices.Sorted(maps.Keys(st[tn])) {
			fmt.Fprintf(&b, ":%s - [0:0]\n", cn)
		}
		for _, cn := range slices.Sorted(maps.Keys(st[tn])) {
			for _, r := range st[tn][cn] {
				b.WriteString(r + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}

// canonical is the state of the KUBE-* chains that restore input leaves
// in empty tables (or that iptables-save shows), normalized: for each
// table and chain, by name, the declaration and then the rules, in order
// (dispatchChains sorted). kube-proxy writes its chains and rules
// interleaved Service by Service in map order, so the file itself is not
// reproducible, not even by kube-proxy: what iptables-restore makes of it
// is.
func canonical(in []byte) string {
	tables := ruleState{}
	tables.apply(in, true)
	var b strings.Builder
	for _, tn := range slices.Sorted(maps.Keys(tables)) {
		fmt.Fprintf(&b, "*%s\n", tn)
		for _, cn := range slices.Sorted(maps.Keys(tables[tn])) {
			fmt.Fprintf(&b, ":%s\n", cn)
			rs := tables[tn][cn]
			if dispatchChains[tn+" "+cn] {
				rs = slices.Clone(rs)
				// The jump to KUBE-NODEPORTS stays last (both proxies
				// write it last, and it must be).
				last := len(rs)
				if tn == "nat" && cn == "KUBE-SERVICES" && last > 0 {
					last--
				}
				slices.Sort(rs[:last])
			}
			for _, r := range rs {
				b.WriteString(r + "\n")
			}
		}
	}
	return b.String()
}

// lineDiff lists the lines only one side has, with their position, for a
// failure message short enough to read.
func lineDiff(kube, ours string) string {
	k, o := strings.Split(kube, "\n"), strings.Split(ours, "\n")
	var b strings.Builder
	i, j := 0, 0
	for (i < len(k) || j < len(o)) && b.Len() < 8000 {
		switch {
		case i < len(k) && j < len(o) && k[i] == o[j]:
			i, j = i+1, j+1
		case j < len(o) && !slices.Contains(k[i:], o[j]):
			fmt.Fprintf(&b, "only ours:       %s\n", o[j])
			j++
		case i < len(k) && !slices.Contains(o[j:], k[i]):
			fmt.Fprintf(&b, "only kube-proxy: %s\n", k[i])
			i++
		default:
			fmt.Fprintf(&b, "out of order:    kube-proxy %s\n                 ours       %s\n", k[i], o[j])
			i, j = i+1, j+1
		}
	}
	return b.String()
}

// kubeIPTables is kube-proxy's iptables interface: a fake for everything
// but the restores, which it keeps and, given a namespace, also applies
// there for real (and reads back with iptables-save, for kube-proxy's
// stale-chain cleanup).
type kubeIPTables struct {
	*kpiptablestest.FakeIPTables
	ipv6 bool
	ns   *restore.Exec
	last []byte
	// state is what the restores left.
	state ruleState
}

func (k *kubeIPTables) RestoreAll(data []byte, _ utiliptables.FlushFlag, _ utiliptables.RestoreCountersFlag) error {
	k.last = append(k.last[:0], data...)
	if k.ns != nil {
		// The nfacct counter does not exist in the namespace
		// (normalization "nfacct").
		if err := k.ns.Restore(context.Background(), k.ipv6, []byte(normalizeOnly("nfacct", string(data)))); err != nil {
			return err
		}
	}
	k.state.apply(data, false)
	return nil
}

func (k *kubeIPTables) SaveInto(table utiliptables.Table, buf *bytes.Buffer) error {
	if k.ns == nil {
		return k.FakeIPTables.SaveInto(table, buf)
	}
	out, err := save(k.ns, k.ipv6, string(table))
	buf.Write(out)
	return err
}

func normalizeOnly(name, in string) string {
	i := slices.IndexFunc(normalizations, func(n normalization) bool { return n.name == name })
	lines := strings.Split(in, "\n")
	out := lines[:0]
	for _, l := range lines {
		if l, keep := normalizations[i].line(l); keep {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// save runs iptables-save (of one table, or all) through run's prefix.
func save(run *restore.Exec, ipv6 bool, table string) ([]byte, error) {
	tool := "iptables-save"
	if ipv6 {
		tool = "ip6tables-save"
	}
	args := append(slices.Clone(run.Prefix[1:]), tool)
	if table != "" {
		args = append(args, "-t", table)
	}
	out, err := exec.Command(run.Prefix[0], args...).Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tool, err)
	}
	return out, nil
}

// pair is kube-proxy's proxier and our syncer fed the same objects.
type pair struct {
	f       family
	kube    *kpiptables.Proxier
	kubeIPT *kubeIPTables
	tracker *syncer.ChangeTracker
	ours    *syncer.Syncer
	oursRun restore.Runner
	// compact, if set, is a second syncer of ours in the default
	// (compact) layout, fed the same objects.
	compact        *syncer.Syncer
	compactTracker *syncer.ChangeTracker
	compactRun     *recording
	services       map[string]*v1.Service
	slices         map[string]*discovery.EndpointSlice
}

// newPair makes kube-proxy and our --chain-prefix KUBE --layout kube-proxy;
// kubeNS and oursNS (nil: capture only) are the namespaces their restores
// are applied in. With compactNS, our compact layout runs there too.
func newPair(t *testing.T, f family, kubeNS, oursNS, compactNS *restore.Exec) *pair {
	t.Helper()
	fake := kpiptablestest.NewFake()
	if f.ipv6 {
		fake = kpiptablestest.NewIPv6Fake()
	}
	p := &pair{f: f, kubeIPT: &kubeIPTables{FakeIPTables: fake, ipv6: f.ipv6, ns: kubeNS, state: ruleState{}},
		tracker: syncer.NewChangeTracker(), services: map[string]*v1.Service{}, slices: map[string]*discovery.EndpointSlice{}}
	cfg := &kpconfig.KubeProxyConfiguration{
		IPTables:      kpconfig.KubeProxyIPTablesConfiguration{MasqueradeBit: ptr.To[int32](14), LocalhostNodePorts: ptr.To(true)},
		SyncPeriod:    metav1.Duration{Duration: time.Hour},
		MinSyncPeriod: metav1.Duration{Duration: time.Second},
	}
	var err error
	p.kube, err = kpiptables.NewProxier(context.Background(), cfg, f.protocol(), p.kubeIPT, sysctltest.NewFake(),
		proxyutil.NewDetectLocalByCIDR(f.clusterCIDR().String()), nodeName, net.IP(f.addr("192.168.0.2").AsSlice()), &events.FakeRecorder{}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if oursNS != nil {
		p.oursRun = &recording{Runner: oursNS, state: ruleState{}}
	} else {
		p.oursRun = &capture{}
	}
	p.ours = newSyncer(t, f, p.tracker, p.oursRun, render.KubeProxy, "KUBE")
	if compactNS != nil {
		p.compactTracker = syncer.NewChangeTracker()
		p.compactRun = &recording{Runner: compactNS, state: ruleState{}}
		p.compact = newSyncer(t, f, p.compactTracker, p.compactRun, render.Compact, "OUTPOST")
	}
	return p
}

func newSyncer(t *testing.T, f family, tr *syncer.ChangeTracker, run restore.Runner, layout render.Layout, prefix string) *syncer.Syncer {
	t.Helper()
	s, err := syncer.New(tr, run, syncer.Options{Log: logr.Discard(), Families: []render.Config{{
		Prefix: prefix, Layout: layout, NodeName: nodeName, MasqueradeMark: fmt.Sprintf("%#08x", 1<<14), IPv6: f.ipv6,
		ClusterCIDRs:       []netip.Prefix{f.clusterCIDR()},
		PrimaryNodeIP:      f.addr("192.168.0.2"),
		LocalhostNodePorts: true,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f family) clusterCIDR() netip.Prefix {
	if f.ipv6 {
		return netip.PrefixFrom(f.addr("10.0.0.0"), 104)
	}
	return netip.MustParsePrefix(clusterCIDR)
}

func key(namespace, name string) string { return namespace + "/" + name }

func (p *pair) setService(s *v1.Service) {
	k := key(s.Namespace, s.Name)
	if old := p.services[k]; old != nil {
		p.kube.OnServiceUpdate(old, s)
	} else {
		p.kube.OnServiceAdd(s)
	}
	p.services[k] = s
	p.tracker.SetService(s)
	if p.compactTracker != nil {
		p.compactTracker.SetService(s)
	}
}

func (p *pair) deleteService(namespace, name string) {
	k := key(namespace, name)
	p.kube.OnServiceDelete(p.services[k])
	delete(p.services, k)
	p.tracker.DeleteService(namespace, name)
	if p.compactTracker != nil {
		p.compactTracker.DeleteService(namespace, name)
	}
}

func (p *pair) setSlice(s *discovery.EndpointSlice) {
	k := key(s.Namespace, s.Name)
	if old := p.slices[k]; old != nil {
		p.kube.OnEndpointSliceUpdate(old, s)
	} else {
		p.kube.OnEndpointSliceAdd(s)
	}
	p.slices[k] = s
	p.tracker.SetSlice(s)
	if p.compactTracker != nil {
		p.compactTracker.SetSlice(s)
	}
}

func (p *pair) deleteSlice(namespace, name string) {
	k := key(namespace, name)
	p.kube.OnEndpointSliceDelete(p.slices[k])
	p.tracker.DeleteSlice(p.slices[k])
	if p.compactTracker != nil {
		p.compactTracker.DeleteSlice(p.slices[k])
	}
	delete(p.slices, k)
}

// start loads w and runs both proxies' first, full sync.
func (p *pair) start(t *testing.T, w *world) {
	t.Helper()
	for _, s := range w.services {
		p.setService(s)
	}
	for _, s := range w.slices {
		p.setSlice(s)
	}
	p.kube.OnServiceSynced()
	p.kube.OnEndpointSlicesSynced() // kube-proxy's first, full sync
	p.syncOurs(t, true)
}

func (p *pair) syncOurs(t *testing.T, full bool) {
	t.Helper()
	for _, s := range []*syncer.Syncer{p.ours, p.compact} {
		if s == nil {
			continue
		}
		if err := s.Sync(context.Background(), full); err != nil {
			t.Fatal(err)
		}
	}
}

// sync runs a partial sync of both.
func (p *pair) sync(t *testing.T) {
	t.Helper()
	p.kube.OnEndpointSlicesSynced() // a synchronous syncProxyRules, partial after the first
	p.syncOurs(t, false)
}

func (p *pair) oursLast() []byte { return p.oursRun.(*capture).last }

// TestKubeProxyLayoutEqualsKubeProxy renders the same API objects with
// kube-proxy v1.37.2's own proxier and with ours (--chain-prefix KUBE,
// --layout kube-proxy), in both families, and requires the same chains
// with the same rules in the same order after the first, full sync.
func TestKubeProxyLayoutEqualsKubeProxy(t *testing.T) {
	for _, f := range []family{{ipv6: false}, {ipv6: true}} {
		t.Run(f.String(), func(t *testing.T) {
			p := newPair(t, f, nil, nil, nil)
			p.start(t, variedWorld(f))
			kube, ours := canonical(p.kubeIPT.last), canonical(p.oursLast())
			// The comparison must cover the firewall, the health check
			// ports and localhost node ports (IPv4 only): kube-proxy's
			// output has to contain them.
			covered := []string{
				"-A KUBE-FW-",
				"-s " + f.ip("203.0.113.20") + " -j KUBE-EXT-", // the node is in a range: LB IPs admitted
				"-A KUBE-PROXY-FIREWALL ",
				"health check node port",
				"-j KUBE-SVL-",
				"--rcheck --seconds 600",
				"-s " + f.ip("10.180.9.2") + " -j KUBE-MARK-MASQ", // hairpin of another node's pod
			}
			if !f.ipv6 {
				covered = append(covered, "-A KUBE-FIREWALL -m comment --comment \"block incoming localnet connections\"",
					"-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
			}
			for _, rule := range covered {
				if !strings.Contains(kube, rule) {
					t.Errorf("kube-proxy's rules have no %q: the inputs no longer cover it", rule)
				}
			}
			if kube != ours {
				t.Errorf("our rules differ from kube-proxy's:\n%s", lineDiff(kube, ours))
			}
		})
	}
}

// change is one API change applied to both proxies between syncs.
type change struct {
	name  string
	apply func(p *pair)
}

func (p *pair) editService(name string, edit func(*v1.Service)) {
	s := p.services[key("ns", name)].DeepCopy()
	edit(s)
	p.setService(s)
}

// editSlice edits the (only) EndpointSlice of Service name.
func (p *pair) editSlice(name string, edit func(*discovery.EndpointSlice)) {
	for _, s := range p.slices {
		if s.Labels[discovery.LabelServiceName] == name {
			s = s.DeepCopy()
			edit(s)
			p.setSlice(s)
			return
		}
	}
	panic("no EndpointSlice for Service " + name)
}

func (p *pair) sliceOf(name string) *discovery.EndpointSlice {
	for _, s := range p.slices {
		if s.Labels[discovery.LabelServiceName] == name {
			return s
		}
	}
	return nil
}

// changes is a day in the life of variedWorld.
func changes(f family) []change {
	endpoint := func(ip, node string, ready, serving, terminating bool) discovery.Endpoint {
		return discovery.Endpoint{Addresses: []string{f.ip(ip)}, NodeName: ptr.To(node), Conditions: discovery.EndpointConditions{
			Ready: ptr.To(ready), Serving: ptr.To(serving), Terminating: ptr.To(terminating)}}
	}
	setCond := func(ip string, ready, serving, terminating bool) func(*discovery.EndpointSlice) {
		return func(s *discovery.EndpointSlice) {
			for i := range s.Endpoints {
				if s.Endpoints[i].Addresses[0] == f.ip(ip) {
					s.Endpoints[i].Conditions = discovery.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(serving), Terminating: ptr.To(terminating)}
				}
			}
		}
	}
	return []change{
		{"endpoint added", func(p *pair) {
			p.editSlice("a", func(s *discovery.EndpointSlice) {
				s.Endpoints = append(s.Endpoints, endpoint("10.180.0.4", "node0", true, true, false))
			})
		}},
		{"endpoint removed", func(p *pair) {
			p.editSlice("a", func(s *discovery.EndpointSlice) { s.Endpoints = s.Endpoints[1:] })
		}},
		{"endpoint terminating", func(p *pair) { p.editSlice("a", setCond("10.180.0.2", false, true, true)) }},
		{"only local endpoint not serving (Local policy)", func(p *pair) { p.editSlice("b", setCond("10.180.1.1", false, false, false)) }},
		{"terminating endpoints ready again", func(p *pair) {
			p.editSlice("g", setCond("10.180.6.1", true, true, false))
			p.editSlice("g", setCond("10.180.6.2", true, true, false))
		}},
		{"affinity removed", func(p *pair) {
			p.editService("c", func(s *v1.Service) {
				s.Spec.SessionAffinity, s.Spec.SessionAffinityConfig = v1.ServiceAffinityNone, nil
			})
		}},
		{"affinity added", func(p *pair) {
			p.editService("d", func(s *v1.Service) {
				s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](10800)}}
			})
		}},
		{"internalTrafficPolicy Local to Cluster", func(p *pair) {
			p.editService("d", func(s *v1.Service) { s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyCluster) })
		}},
		{"internalTrafficPolicy Cluster to Local", func(p *pair) {
			p.editService("a", func(s *v1.Service) { s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal) })
		}},
		{"externalTrafficPolicy Local to Cluster", func(p *pair) {
			p.editService("h", func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster })
		}},
		{"externalTrafficPolicy Cluster to Local", func(p *pair) {
			p.editService("fw-cluster", func(s *v1.Service) {
				s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
				s.Spec.HealthCheckNodePort = 32020
			})
		}},
		{"NodePort to ClusterIP", func(p *pair) {
			p.editService("e", func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeClusterIP
				s.Spec.Ports[0].NodePort = 0
			})
		}},
		{"endpoints for a Service without", func(p *pair) {
			p.setSlice(&discovery.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "e-new", Labels: map[string]string{discovery.LabelServiceName: "e"}},
				AddressType: f.addressType(),
				Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
				Endpoints:   []discovery.Endpoint{endpoint("10.180.4.1", "node1", true, true, false)},
			})
		}},
		{"LoadBalancer to NodePort", func(p *pair) {
			p.editService("c", func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeNodePort
				s.Status.LoadBalancer.Ingress = nil
			})
		}},
		{"ClusterIP to NodePort", func(p *pair) {
			p.editService("d", func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30004
			})
		}},
		{"loadBalancerSourceRanges changed", func(p *pair) {
			p.editService("fw-cluster", func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{f.cidr("10.0.0.0/8")} })
		}},
		{"loadBalancerSourceRanges removed", func(p *pair) {
			p.editService("fw-local", func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = nil })
		}},
		{"loadBalancerSourceRanges added", func(p *pair) {
			p.editService("fw-open", func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{f.cidr("198.51.100.0/24")} })
		}},
		{"local endpoint terminating beside ready remote ones (Local policy)", func(p *pair) {
			p.editSlice("hairpin", setCond("10.180.9.1", false, true, true))
		}},
		{"remote endpoint moves to this node", func(p *pair) {
			p.editSlice("fw-local-remote", func(s *discovery.EndpointSlice) { s.Endpoints[0].NodeName = ptr.To(nodeName) })
		}},
		{"EndpointSlice deleted", func(p *pair) { p.deleteSlice("ns", p.sliceOf("f").Name) }},
		{"Service deleted, its EndpointSlice kept", func(p *pair) { p.deleteService("ns", "h") }},
		{"Service and EndpointSlice deleted", func(p *pair) {
			p.deleteSlice("ns", p.sliceOf("a").Name)
			p.deleteService("ns", "a")
		}},
		{"Service without endpoints deleted", func(p *pair) { p.deleteService("ns", "fw-empty") }},
		{"Service added", func(p *pair) {
			p.setService(&v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "new"},
				Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: f.ip("172.30.0.40"), ClusterIPs: []string{f.ip("172.30.0.40")},
					Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}}})
			p.setSlice(&discovery.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "new-1", Labels: map[string]string{discovery.LabelServiceName: "new"}},
				AddressType: f.addressType(),
				Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
				Endpoints:   []discovery.Endpoint{endpoint("10.180.40.1", "node0", true, true, false), endpoint("10.180.40.2", "node2", true, true, false)},
			})
		}},
	}
}

// TestKubeProxyLayoutEqualsKubeProxyAfterChanges applies each proxy's
// restores for real, in a network namespace of its own, along a sequence
// of changes, and requires the same chains and rules (iptables-save) after
// every partial sync: our partial restores may be smaller than
// kube-proxy's, what they leave may not differ.
func TestKubeProxyLayoutEqualsKubeProxyAfterChanges(t *testing.T) {
	testnetns.Require(t)
	for _, f := range []family{{ipv6: false}, {ipv6: true}} {
		t.Run(f.String(), func(t *testing.T) {
			in := func(ns *testnetns.NS) *restore.Exec {
				return &restore.Exec{Prefix: []string{"ip", "netns", "exec", ns.Name}}
			}
			kubeNS := in(testnetns.New(t, "outpost-equiv-kube-"+f.String()))
			oursNS := in(testnetns.New(t, "outpost-equiv-ours-"+f.String()))
			compactNS := in(testnetns.New(t, "outpost-equiv-compact-"+f.String()))
			p := newPair(t, f, kubeNS, oursNS, compactNS)
			agreed := map[string]int{} // first packets traced, per layout of ours
			packets := 0
			compare := func(step string) {
				t.Helper()
				kubeSave, err := save(kubeNS, f.ipv6, "")
				if err != nil {
					t.Fatal(err)
				}
				oursSave, err := save(oursNS, f.ipv6, "")
				if err != nil {
					t.Fatal(err)
				}
				kube, ours := canonical(kubeSave), canonical(oursSave)
				if !strings.Contains(kube, "-A KUBE-SVC-") {
					t.Fatalf("%s: kube-proxy's namespace has no Service chains: nothing was applied", step)
				}
				if kube != ours {
					t.Fatalf("after %s, our rules differ from kube-proxy's:\n%s", step, lineDiff(kube, ours))
				}
				// Traced over what the restores applied: the tracer reads
				// restore input, which iptables-save rewrites (MARK
				// --or-mark becomes --set-xmark).
				kubeFates := p.fates(t, p.kubeIPT.state.restoreInput(), "KUBE")
				for _, l := range []struct {
					name   string
					state  ruleState
					prefix string
				}{
					{"kube-proxy", p.oursRun.(*recording).state, "KUBE"},
					{"compact", p.compactRun.state, "OUTPOST"},
				} {
					fates := p.fates(t, l.state.restoreInput(), l.prefix)
					if d := lineDiff(strings.Join(kubeFates, "\n"), strings.Join(fates, "\n")); d != "" {
						t.Fatalf("after %s, first packets fare differently in the %s layout:\n%s", step, l.name, d)
					}
					agreed[l.name] += len(fates)
				}
				packets += len(kubeFates)
			}
			p.start(t, variedWorld(f))
			compare("the first sync")
			for _, c := range changes(f) {
				c.apply(p)
				p.sync(t)
				compare(c.name)
			}
			for _, layout := range []string{"kube-proxy", "compact"} {
				t.Logf("%s layout: first packets agree with kube-proxy's: %d of %d (%d changes)", layout, agreed[layout], packets, len(changes(f)))
			}
		})
	}
}

// fates traces the first packet of every source class to every frontend
// of every Service port through the rules of a restore input: the
// endpoints it can reach, each with whether it is masqueraded, or its
// verdict. One line per packet.
//
// Source classes: a pod, the node, outside the cluster (inside and
// outside the source ranges), and each of the Service's own endpoints
// (hairpin). An endpoint on another node is only sent to the node's own
// frontends (node ports, external and load-balancer IPs): its cluster IP
// traffic never leaves its node. The node also calls node ports on
// loopback.
func (p *pair) fates(t *testing.T, input []byte, prefix string) []string {
	t.Helper()
	tables, err := iptablestest.ParseTables(input)
	if err != nil {
		t.Fatal(err)
	}
	nodeIP := p.f.addr("192.168.0.2")
	loopback := netip.MustParseAddr("127.0.0.1")
	if p.f.ipv6 {
		loopback = netip.IPv6Loopback()
	}
	tr := &iptablestest.Tracer{Tables: tables, Prefix: prefix, LocalAddrs: []netip.Addr{nodeIP}}
	type source struct {
		class string
		ip    netip.Addr
	}
	var common []source
	for _, s := range []struct{ class, ip string }{
		{"pod", "10.0.0.5"}, {"node", "192.168.0.2"},
		{"outside, in the source ranges", "198.51.100.9"}, {"outside", "192.0.2.99"},
	} {
		common = append(common, source{s.class, p.f.addr(s.ip)})
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(p.services)) {
		svc := p.services[k]
		// Its endpoints as sources: local ones reach every frontend,
		// remote ones only the node's.
		var local, remote []source
		for _, sk := range slices.Sorted(maps.Keys(p.slices)) {
			sl := p.slices[sk]
			if sl.Namespace != svc.Namespace || sl.Labels[discovery.LabelServiceName] != svc.Name {
				continue
			}
			for _, e := range sl.Endpoints {
				node := ptr.Deref(e.NodeName, "")
				src := source{"endpoint on " + cmp.Or(node, "no node"), netip.MustParseAddr(e.Addresses[0])}
				if node == "" || node == nodeName {
					local = append(local, src)
				} else {
					remote = append(remote, src)
				}
			}
		}
		everyone := append(slices.Clone(common), local...)
		nodeFrontend := append(slices.Clone(everyone), remote...)
		for _, port := range svc.Spec.Ports {
			type frontend struct {
				ip      netip.Addr
				port    int32
				sources []source
			}
			var fronts []frontend
			add := func(ips []string, port int32, sources []source) {
				for _, s := range ips {
					if ip, err := netip.ParseAddr(s); err == nil { // not headless
						fronts = append(fronts, frontend{ip, port, sources})
					}
				}
			}
			add(svc.Spec.ClusterIPs, port.Port, everyone)
			add(svc.Spec.ExternalIPs, port.Port, nodeFrontend)
			for _, in := range svc.Status.LoadBalancer.Ingress {
				add([]string{in.IP}, port.Port, nodeFrontend)
			}
			if port.NodePort != 0 {
				add([]string{nodeIP.String()}, port.NodePort, nodeFrontend)
				add([]string{loopback.String()}, port.NodePort, []source{{"node, on loopback", loopback}})
			}
			for _, fr := range fronts {
				for _, src := range fr.sources {
					res := tr.Trace(iptablestest.Packet{Src: src.ip, Dst: fr.ip, Proto: strings.ToLower(string(port.Protocol)), DPort: int(fr.port)})
					var fate []string
					for _, ep := range res.Endpoints() {
						fate = append(fate, fmt.Sprintf("%s masquerade=%t", ep, res.Masquerade(ep)))
					}
					for _, v := range res.Verdicts() {
						if v != "DNAT" {
							fate = append(fate, v)
						}
					}
					out = append(out, fmt.Sprintf("%s:%s to %s from %s %s: %s", k, port.Name,
						netip.AddrPortFrom(fr.ip, uint16(fr.port)), src.class, src.ip, strings.Join(fate, ", ")))
				}
			}
		}
	}
	return out
}

// TestDeliberateDifferencesAreListed keeps the README's list and the
// normalizations the comparison forgives the same.
func TestDeliberateDifferencesAreListed(t *testing.T) {
	readme, err := os.ReadFile("../../operator/syncer/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(readme), "### Deliberate differences")
	if !ok {
		t.Fatal(`operator/syncer/README.md has no "### Deliberate differences" section`)
	}
	list, _, _ = strings.Cut(list, "\n#")
	listed := 0
	for _, n := range append(slices.Clone(normalizations), structuralNormalizations...) {
		if !strings.Contains(list, "* `"+n.name+"`: ") {
			t.Errorf("normalization %q (%s) is not listed under Deliberate differences in operator/syncer/README.md", n.name, n.reason)
		}
		listed++
	}
	if got := strings.Count(list, "\n* `"); got != listed {
		t.Errorf("operator/syncer/README.md lists %d deliberate differences, the comparison forgives %d", got, listed)
	}
}
