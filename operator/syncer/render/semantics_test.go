package render_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-dev/outpost/operator/syncer/iptablestest"
	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/rules"
)

func wantEndpoints(t *testing.T, res iptablestest.Result, want ...string) {
	t.Helper()
	if got := res.Endpoints(); !slices.Equal(got, want) {
		t.Errorf("endpoints = %v, want %v (outcomes %+v)", got, want, res.Outcomes)
	}
}

func wantVerdict(t *testing.T, res iptablestest.Result, want string) {
	t.Helper()
	if got := res.Verdicts(); !slices.Equal(got, []string{want}) {
		t.Errorf("verdicts = %v, want [%s]", got, want)
	}
}

func TestClusterIPSpreadsWithStatistic(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		w := &world{}
		w.add(tcp("default", "httpd-svc", "", "10.96.203.6", 8080),
			ep("10.244.1.28", 80), ep("10.244.1.29", 80), ep("10.244.2.22", 80))
		tr := tracer(t, cfg, w)
		res := tr.Trace(pkt(podSrc, ip("10.96.203.6"), "tcp", 8080))
		wantEndpoints(t, res, "10.244.1.28:80", "10.244.1.29:80", "10.244.2.22:80")
		text, _ := renderText(t, cfg, w)
		// 1/3, then 1/2 of the rest, then the rest: uniform.
		for _, p := range []string{"--probability 0.3333333333", "--probability 0.5000000000"} {
			if !strings.Contains(string(text), p) {
				t.Errorf("rules lack %q", p)
			}
		}
		if res.Masquerade("10.244.2.22:80") {
			t.Error("pod traffic to a cluster IP must not be masqueraded")
		}
		if !tr.Trace(pkt(outsideSrc, ip("10.96.203.6"), "tcp", 8080)).Masquerade("10.244.2.22:80") {
			t.Error("traffic from outside the cluster CIDR must be masqueraded")
		}
		// Wrong port or protocol: untouched.
		wantVerdict(t, tr.Trace(pkt(podSrc, ip("10.96.203.6"), "tcp", 80)), "ACCEPT")
		wantVerdict(t, tr.Trace(pkt(podSrc, ip("10.96.203.6"), "udp", 8080)), "ACCEPT")
	})
}

func TestMasqueradeAll(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		cfg.MasqueradeAll = true
		w := &world{}
		w.add(tcp("ns", "a", "", "10.96.0.10", 80), ep("192.168.1.2", 80))
		res := tracer(t, cfg, w).Trace(pkt(podSrc, ip("10.96.0.10"), "tcp", 80))
		wantEndpoints(t, res, "192.168.1.2:80")
		if !res.Masquerade("") {
			t.Error("--masquerade-all must masquerade pod traffic")
		}
	})
}

func TestNodePort(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		w := &world{}
		sp := tcp("default", "web", "", "10.96.0.20", 80)
		sp.NodePort, sp.ExternallyAccessible = 30000, true
		w.add(sp, ep("10.244.1.1", 8080))
		tr := tracer(t, cfg, w)
		res := tr.Trace(pkt(outsideSrc, nodeIP, "tcp", 30000))
		wantEndpoints(t, res, "10.244.1.1:8080")
		if !res.Masquerade("") {
			t.Error("Cluster policy node-port traffic must be masqueraded")
		}
		// Not a local address: no node port.
		wantVerdict(t, tr.Trace(pkt(outsideSrc, ip("198.51.100.7"), "tcp", 30000)), "ACCEPT")

		// --node-ip restricts node ports to that address.
		cfg.NodeIPs = []netip.Addr{ip("192.168.0.3")}
		tr = tracer(t, cfg, w)
		tr.LocalAddrs = append(tr.LocalAddrs, ip("192.168.0.3"))
		wantEndpoints(t, tr.Trace(pkt(outsideSrc, ip("192.168.0.3"), "tcp", 30000)), "10.244.1.1:8080")
		wantVerdict(t, tr.Trace(pkt(outsideSrc, nodeIP, "tcp", 30000)), "ACCEPT")
	})
}

func TestExternalAndLoadBalancerIPs(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		w := &world{}
		sp := tcp("default", "lb", "http", "10.96.0.30", 80)
		sp.ExternalIPs = []netip.Addr{ip("198.51.100.10")}
		sp.LoadBalancerIPs = []netip.Addr{ip("203.0.113.10")}
		sp.ExternallyAccessible = true
		w.add(sp, ep("10.244.1.1", 80))
		tr := tracer(t, cfg, w)
		for _, dst := range []string{"198.51.100.10", "203.0.113.10"} {
			res := tr.Trace(pkt(outsideSrc, ip(dst), "tcp", 80))
			wantEndpoints(t, res, "10.244.1.1:80")
			if !res.Masquerade("") {
				t.Errorf("%s: external traffic must be masqueraded", dst)
			}
		}
	})
}

func TestSessionAffinity(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		w := &world{}
		sp := tcp("default", "sticky", "", "10.96.0.40", 80)
		sp.AffinitySeconds = 10800
		w.add(sp, ep("10.244.1.1", 80), ep("10.244.1.2", 80), ep("10.244.1.3", 80))
		text, _ := renderText(t, cfg, w)
		if !strings.Contains(string(text), "--rcheck --seconds 10800 --reap") {
			t.Errorf("no affinity timeout in rules:\n%s", text)
		}
		tr := tracer(t, cfg, w)
		p := pkt(podSrc, ip("10.96.0.40"), "tcp", 80)
		first := tr.Trace(p)
		wantEndpoints(t, first, "10.244.1.1:80", "10.244.1.2:80", "10.244.1.3:80")
		// The client's first connection went to the second endpoint: the
		// next one must go there again.
		for _, o := range first.Outcomes {
			if o.Endpoint == "10.244.1.2:80" {
				tr.Remember(p, o)
			}
		}
		wantEndpoints(t, tr.Trace(p), "10.244.1.2:80")
		// Another client is not pinned.
		other := pkt(ip("10.0.0.6"), ip("10.96.0.40"), "tcp", 80)
		wantEndpoints(t, tr.Trace(other), "10.244.1.1:80", "10.244.1.2:80", "10.244.1.3:80")
	})
}

func TestExternalTrafficPolicyLocal(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		w := &world{}
		sp := tcp("default", "local", "", "10.96.0.50", 80)
		sp.NodePort, sp.ExternallyAccessible, sp.ExternalPolicyLocal = 30050, true, true
		local := ep("10.244.1.1", 80)
		local.NodeName = testNode
		remote := ep("10.244.2.1", 80)
		remote.NodeName = "node2"
		w.add(sp, local, remote)
		tr := tracer(t, cfg, w)
		res := tr.Trace(pkt(outsideSrc, nodeIP, "tcp", 30050))
		wantEndpoints(t, res, "10.244.1.1:80")
		if res.Masquerade("") {
			t.Error("Local policy must keep the client address")
		}
		// Pods short-circuit to all endpoints; cluster IP uses all endpoints.
		wantEndpoints(t, tr.Trace(pkt(podSrc, nodeIP, "tcp", 30050)), "10.244.1.1:80", "10.244.2.1:80")
		wantEndpoints(t, tr.Trace(pkt(podSrc, ip("10.96.0.50"), "tcp", 80)), "10.244.1.1:80", "10.244.2.1:80")

		// No local endpoint: external traffic is dropped, cluster IP works.
		w2 := &world{}
		w2.add(sp, remote)
		tr = tracer(t, cfg, w2)
		wantVerdict(t, tr.Trace(pkt(outsideSrc, nodeIP, "tcp", 30050)), "DROP")
		wantEndpoints(t, tr.Trace(pkt(podSrc, ip("10.96.0.50"), "tcp", 80)), "10.244.2.1:80")
	})
}

func TestInternalTrafficPolicyLocal(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		sp := tcp("default", "itp", "", "10.96.0.60", 80)
		sp.InternalPolicyLocal = true
		local := ep("10.244.1.1", 80)
		local.NodeName = testNode
		remote := ep("10.244.2.1", 80)
		remote.NodeName = "node2"
		w := &world{}
		w.add(sp, local, remote)
		wantEndpoints(t, tracer(t, cfg, w).Trace(pkt(podSrc, ip("10.96.0.60"), "tcp", 80)), "10.244.1.1:80")
		w2 := &world{}
		w2.add(sp, remote)
		wantVerdict(t, tracer(t, cfg, w2).Trace(pkt(podSrc, ip("10.96.0.60"), "tcp", 80)), "DROP")
	})
}

func TestNoEndpointsReject(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		sp := tcp("default", "empty", "", "10.96.0.70", 80)
		sp.NodePort, sp.ExternallyAccessible = 30070, true
		sp.ExternalIPs = []netip.Addr{ip("198.51.100.70")}
		notReady := ep("10.244.1.1", 80)
		notReady.Ready, notReady.Serving = false, false
		w := &world{}
		w.add(sp, notReady)
		tr := tracer(t, cfg, w)
		wantVerdict(t, tr.Trace(pkt(podSrc, ip("10.96.0.70"), "tcp", 80)), "REJECT")
		wantVerdict(t, tr.Trace(pkt(outsideSrc, ip("198.51.100.70"), "tcp", 80)), "REJECT")
		wantVerdict(t, tr.Trace(pkt(outsideSrc, nodeIP, "tcp", 30070)), "REJECT")
	})
}

func TestTerminatingEndpointsOnlyWithoutReady(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		sp := tcp("default", "term", "", "10.96.0.80", 80)
		terminating := ep("10.244.1.9", 80)
		terminating.Ready, terminating.Terminating = false, true
		w := &world{}
		w.add(sp, ep("10.244.1.1", 80), terminating)
		wantEndpoints(t, tracer(t, cfg, w).Trace(pkt(podSrc, ip("10.96.0.80"), "tcp", 80)), "10.244.1.1:80")
		w2 := &world{}
		w2.add(sp, terminating)
		wantEndpoints(t, tracer(t, cfg, w2).Trace(pkt(podSrc, ip("10.96.0.80"), "tcp", 80)), "10.244.1.9:80")
		// Terminating but no longer serving: nothing.
		gone := terminating
		gone.Serving = false
		w3 := &world{}
		w3.add(sp, gone)
		wantVerdict(t, tracer(t, cfg, w3).Trace(pkt(podSrc, ip("10.96.0.80"), "tcp", 80)), "REJECT")
	})
}

func TestHairpin(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		self := ep("10.244.1.1", 80)
		self.NodeName = testNode
		other := ep("10.244.2.1", 80)
		other.NodeName = "node2"
		w := &world{}
		w.add(tcp("default", "hp", "", "10.96.0.90", 80), self, other)
		res := tracer(t, cfg, w).Trace(pkt(self.IP, ip("10.96.0.90"), "tcp", 80))
		wantEndpoints(t, res, "10.244.1.1:80", "10.244.2.1:80")
		if !res.Masquerade("10.244.1.1:80") {
			t.Error("an endpoint reaching itself through its service must be masqueraded")
		}
		if res.Masquerade("10.244.2.1:80") {
			t.Error("an endpoint reaching another endpoint must keep its address")
		}
	})
}

// A pod of another node calling an externalTrafficPolicy: Local node port
// is sent to every endpoint, itself included: only that path is
// masqueraded.
func TestHairpinFromAnotherNodeThroughLocalPolicyNodePort(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		sp := tcp("default", "hp", "", "10.96.0.91", 80)
		sp.NodePort, sp.ExternallyAccessible, sp.ExternalPolicyLocal = 30091, true, true
		local := ep("10.244.1.1", 80)
		local.NodeName = testNode
		remote := ep("10.244.2.1", 80)
		remote.NodeName = "node2"
		w := &world{}
		w.add(sp, local, remote)
		res := tracer(t, cfg, w).Trace(pkt(remote.IP, nodeIP, "tcp", 30091))
		wantEndpoints(t, res, "10.244.1.1:80", "10.244.2.1:80")
		if !res.Masquerade("10.244.2.1:80") || res.Masquerade("10.244.1.1:80") {
			t.Errorf("masquerade to itself %t, to the other endpoint %t; want true, false",
				res.Masquerade("10.244.2.1:80"), res.Masquerade("10.244.1.1:80"))
		}
	})
}

// The compact layout spends a chain only on endpoints that can call
// themselves through this node's rules.
func TestCompactHairpinChainsOnlyForEndpointsThatCanHairpin(t *testing.T) {
	cfg := baseConfig("OUTPOST", render.Compact)
	local := ep("10.244.1.1", 80)
	local.NodeName = testNode
	remote := ep("10.244.2.1", 80)
	remote.NodeName = "node2"
	external := ep("192.168.1.2", 80) // outside the cluster CIDR, no node
	w := &world{}
	w.add(tcp("default", "hp", "", "10.96.0.92", 80), local, remote, external)
	text, _ := renderText(t, cfg, w)
	var hairpins []string
	for _, l := range rulesOf(text, "nat") {
		if strings.Contains(l, "-SEP-") && strings.Contains(l, " -s ") {
			hairpins = append(hairpins, l)
		}
	}
	want := []string{"-A " + render.Names{Prefix: "OUTPOST"}.EndpointChain("default/hp", "tcp", "10.244.1.1:80") + " -s 10.244.1.1 -j MARK --or-mark 0x4000"}
	if !slices.Equal(hairpins, want) {
		t.Errorf("hairpin rules:\n%s\nwant:\n%s", strings.Join(hairpins, "\n"), strings.Join(want, "\n"))
	}
}

// Node ports on 127.0.0.1 (kube-proxy's default, with route_localnet):
// the node reaches them, with Local policy even without a local endpoint
// (node traffic goes to every endpoint), and IPv6 never has them.
func TestLocalhostNodePorts(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		sp := tcp("default", "lo", "", "10.96.0.93", 80)
		sp.NodePort, sp.ExternallyAccessible, sp.ExternalPolicyLocal = 30093, true, true
		remote := ep("10.244.2.1", 80)
		remote.NodeName = "node2"
		w := &world{}
		w.add(sp, remote)
		loopback := ip("127.0.0.1")
		wantVerdict(t, tracer(t, cfg, w).Trace(pkt(loopback, loopback, "tcp", 30093)), "DROP")

		cfg.LocalhostNodePorts = true
		tr := tracer(t, cfg, w)
		res := tr.Trace(pkt(loopback, loopback, "tcp", 30093))
		wantEndpoints(t, res, "10.244.2.1:80")
		if !res.Masquerade("") {
			t.Error("node traffic to a node port must be masqueraded (127.0.0.1 cannot leave the node)")
		}
		wantVerdict(t, tr.Trace(pkt(outsideSrc, nodeIP, "tcp", 30093)), "DROP")
		text, _ := renderText(t, cfg, w)
		drop := "-A " + cfg.Prefix + "-FIREWALL -m comment --comment \"block incoming localnet connections\" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
		if !slices.Contains(rulesOf(text, "filter"), drop) {
			t.Errorf("no localnet firewall rule %q in\n%s", drop, text)
		}
		r, err := render.NewRenderer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, from := range []string{"INPUT", "OUTPUT"} {
			want := rules.Jump{Table: rules.Filter, From: from, Args: []string{"-j", cfg.Prefix + "-FIREWALL"}}
			if !slices.ContainsFunc(r.Jumps(), func(j rules.Jump) bool {
				return j.Table == want.Table && j.From == want.From && slices.Equal(j.Args, want.Args)
			}) {
				t.Errorf("no jump from %s to the localnet firewall in %v", from, r.Jumps())
			}
		}

		cfg.NodeIPs = []netip.Addr{nodeIP}
		wantVerdict(t, tracer(t, cfg, w).Trace(pkt(loopback, loopback, "tcp", 30093)), "DROP")
	})
}

func TestProtocolsAndNamedPorts(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		// User story 1: svc1 with two named ports to an external machine,
		// through a selectorless service and operator-written slices.
		w := &world{}
		w.add(tcp("default", "svc1", "a", "10.96.0.100", 7064), ep("192.168.1.2", 31496))
		w.add(tcp("default", "svc1", "b", "10.96.0.100", 7164), ep("192.168.1.2", 31337))
		dns := render.ServicePort{Namespace: "kube-system", Name: "dns", PortName: "dns", Protocol: "udp", ClusterIP: ip("10.96.0.10"), Port: 53}
		w.add(dns, ep("10.244.3.3", 53))
		sctp := render.ServicePort{Namespace: "default", Name: "sig", Protocol: "sctp", ClusterIP: ip("10.96.0.101"), Port: 2905}
		w.add(sctp, ep("10.244.3.4", 2905))
		tr := tracer(t, cfg, w)
		wantEndpoints(t, tr.Trace(pkt(podSrc, ip("10.96.0.100"), "tcp", 7064)), "192.168.1.2:31496")
		wantEndpoints(t, tr.Trace(pkt(podSrc, ip("10.96.0.100"), "tcp", 7164)), "192.168.1.2:31337")
		wantEndpoints(t, tr.Trace(pkt(podSrc, ip("10.96.0.10"), "udp", 53)), "10.244.3.3:53")
		wantVerdict(t, tr.Trace(pkt(podSrc, ip("10.96.0.10"), "tcp", 53)), "ACCEPT")
		wantEndpoints(t, tr.Trace(pkt(podSrc, ip("10.96.0.101"), "sctp", 2905)), "10.244.3.4:2905")
	})
}

func TestIPv6(t *testing.T) {
	cfg := baseConfig("OUTPOST", render.Compact)
	cfg.IPv6 = true
	cfg.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("fd00:10:244::/56")}
	w := &world{}
	w.add(tcp("default", "v6", "", "fd00:10:96::10", 80), ep("fd00:10:244::5", 8080))
	text, _ := renderText(t, cfg, w)
	if !strings.Contains(string(text), "--to-destination [fd00:10:244::5]:8080") || !strings.Contains(string(text), "! -d ::1/128") {
		t.Errorf("IPv6 rules:\n%s", text)
	}
	tables, err := iptablestest.ParseTables(text)
	if err != nil {
		t.Fatal(err)
	}
	tr := &iptablestest.Tracer{Tables: tables, Prefix: "OUTPOST"}
	wantEndpoints(t, tr.Trace(pkt(ip("fd00:10:244::9"), ip("fd00:10:96::10"), "tcp", 80)), "[fd00:10:244::5]:8080")
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []render.Config{
		{Prefix: ""},
		{Prefix: "TOOLONGPX"},
		{Prefix: "A-B"},
		{Prefix: "OK", NodeIPs: []netip.Addr{ip("fd00::1")}},
	} {
		if _, err := render.NewRenderer(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// lbWithSourceRanges is a LoadBalancer service port whose ingress IP only
// admits the given source ranges.
func lbWithSourceRanges(lbIP string, ranges ...string) render.ServicePort {
	sp := tcp("default", "fw", "http", "10.96.0.70", 80)
	sp.NodePort, sp.ExternallyAccessible = 30070, true
	sp.LoadBalancerIPs = []netip.Addr{ip(lbIP)}
	for _, r := range ranges {
		sp.LoadBalancerSourceRanges = append(sp.LoadBalancerSourceRanges, netip.MustParsePrefix(r))
	}
	return sp
}

func TestLoadBalancerSourceRanges(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		w := &world{}
		w.add(lbWithSourceRanges("203.0.113.10", "198.51.100.0/24", "192.0.2.7/32"), ep("10.244.1.1", 80))
		tr := tracer(t, cfg, w)
		lb := ip("203.0.113.10")
		for _, src := range []string{"198.51.100.7", "192.0.2.7"} {
			res := tr.Trace(pkt(ip(src), lb, "tcp", 80))
			wantEndpoints(t, res, "10.244.1.1:80")
			if !res.Masquerade("") {
				t.Errorf("%s: Cluster policy load-balancer traffic must be masqueraded", src)
			}
		}
		// Outside the ranges: dropped, pods included (as kube-proxy does).
		for _, src := range []netip.Addr{outsideSrc, ip("192.0.2.8"), podSrc} {
			wantVerdict(t, tr.Trace(pkt(src, lb, "tcp", 80)), "DROP")
		}
		// Another port of the load-balancer IP is not the service's.
		wantVerdict(t, tr.Trace(pkt(outsideSrc, lb, "tcp", 81)), "ACCEPT")
		// The ranges restrict the load-balancer IP only, as in kube-proxy:
		// the cluster IP and the node port stay open.
		wantEndpoints(t, tr.Trace(pkt(outsideSrc, ip("10.96.0.70"), "tcp", 80)), "10.244.1.1:80")
		wantEndpoints(t, tr.Trace(pkt(outsideSrc, nodeIP, "tcp", 30070)), "10.244.1.1:80")
	})
}

func TestLoadBalancerSourceRangesAdmitTheNodeThroughItsVIP(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		cfg.PrimaryNodeIP = nodeIP
		lb := ip("203.0.113.10")
		// A node reaching a VIP bound locally sends from the VIP: allowed
		// when the node itself is in a range, dropped otherwise.
		for _, c := range []struct {
			ranges  string
			verdict string
		}{{"192.168.0.0/24", "DNAT"}, {"198.51.100.0/24", "DROP"}} {
			w := &world{}
			w.add(lbWithSourceRanges(lb.String(), c.ranges), ep("10.244.1.1", 80))
			wantVerdict(t, tracer(t, cfg, w).Trace(pkt(lb, lb, "tcp", 80)), c.verdict)
		}
	})
}

func TestLoadBalancerSourceRangesWithLocalPolicy(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		sp := lbWithSourceRanges("203.0.113.10", "198.51.100.0/24")
		sp.ExternalPolicyLocal = true
		local := ep("10.244.1.1", 80)
		local.NodeName = testNode
		remote := ep("10.244.2.1", 80)
		remote.NodeName = "node2"
		allowed, lb := ip("198.51.100.7"), ip("203.0.113.10")

		w := &world{}
		w.add(sp, local, remote)
		tr := tracer(t, cfg, w)
		res := tr.Trace(pkt(allowed, lb, "tcp", 80))
		wantEndpoints(t, res, "10.244.1.1:80")
		if res.Masquerade("") {
			t.Error("Local policy must keep the client address")
		}
		wantVerdict(t, tr.Trace(pkt(outsideSrc, lb, "tcp", 80)), "DROP")

		// No local endpoint: even allowed sources are dropped.
		w2 := &world{}
		w2.add(sp, remote)
		wantVerdict(t, tracer(t, cfg, w2).Trace(pkt(allowed, lb, "tcp", 80)), "DROP")
	})
}

func TestLoadBalancerSourceRangesIPv6(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		cfg.IPv6 = true
		cfg.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("fd00:10:244::/56")}
		sp := render.ServicePort{Namespace: "default", Name: "v6", Protocol: "tcp", ClusterIP: ip("fd00:10:96::70"), Port: 443,
			ExternallyAccessible: true, LoadBalancerIPs: []netip.Addr{ip("2001:db8:ff::10")},
			LoadBalancerSourceRanges: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/64")}}
		w := &world{}
		w.add(sp, ep("fd00:10:244::5", 8443))
		text, _ := renderText(t, cfg, w)
		tables, err := iptablestest.ParseTables(text)
		if err != nil {
			t.Fatal(err)
		}
		tr := &iptablestest.Tracer{Tables: tables, Prefix: cfg.Prefix}
		lb := ip("2001:db8:ff::10")
		wantEndpoints(t, tr.Trace(pkt(ip("2001:db8:1::7"), lb, "tcp", 443)), "[fd00:10:244::5]:8443")
		wantVerdict(t, tr.Trace(pkt(ip("2001:db8:2::7"), lb, "tcp", 443)), "DROP")
	})
}

func TestHealthCheckNodePortAccepted(t *testing.T) {
	both(t, func(t *testing.T, cfg render.Config) {
		w := &world{}
		for _, port := range []string{"http", "https"} {
			sp := tcp("default", "hc", port, "10.96.0.80", 80)
			if port == "https" {
				sp.Port = 443
			}
			sp.ExternallyAccessible, sp.ExternalPolicyLocal = true, true
			sp.LoadBalancerIPs = []netip.Addr{ip("203.0.113.80")}
			sp.HealthCheckNodePort = 32100
			w.add(sp) // no endpoints at all: the probe must still get through
		}
		text, _ := renderText(t, cfg, w)
		tables, err := iptablestest.ParseTables(text)
		if err != nil {
			t.Fatal(err)
		}
		var accepts int
		for _, r := range tables["filter"][cfg.Prefix+"-NODEPORTS"] {
			if strings.Contains(r.Line, "-p tcp --dport 32100 -j ACCEPT") {
				accepts++
			}
		}
		want := 1 // compact: one rule per Service
		if cfg.Layout == render.KubeProxy {
			want = 2 // kube-proxy: one per Service port
		}
		if accepts != want {
			t.Errorf("%d health check ACCEPT rules in filter %s-NODEPORTS, want %d:\n%s", accepts, cfg.Prefix, want, text)
		}
	})
}
