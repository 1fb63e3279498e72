package dns

import (
	"fmt"
	"net"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	discovery "k8s.io/api/discovery/v1"

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// outpostCorefile serves cluster.local and the reverse zones with outpost
// (extra directives in block) and forwards the rest to the test upstream.
func outpostCorefile(port, upstream int, kubeconfig, block string) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    outpost cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        %s
    }
    forward . 127.0.0.1:%d
}
`, port, kubeconfig, block, upstream)
}

func soa(zone string) dns.RR {
	return test.SOA(zone + " 5 IN SOA ns.dns." + zone + " hostmaster." + zone + " 1 7200 1800 86400 5")
}

// reverse returns the PTR query name of ip.
func reverse(ip string) string {
	r, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(err)
	}
	return r
}

func TestAnswers(t *testing.T) {
	ns := namespace(t, "answers", nil)
	svc1 := createService(t, clusterIPService(ns, "svc1", true, port("http", 80), port("https", 443)))
	if len(svc1.Spec.ClusterIPs) != 2 {
		t.Fatalf("svc1 is not dual-stack: %v", svc1.Spec.ClusterIPs)
	}
	v4, v6 := svc1.Spec.ClusterIPs[0], svc1.Spec.ClusterIPs[1]
	createSlice(t, ns, "svc1", "svc1-a", discovery.AddressTypeIPv4, []discovery.EndpointPort{slicePort("http", 8080)}, endpoint{ip: "198.51.100.10"})

	createService(t, headlessService(ns, "hdls", port("http", 80)))
	createSlice(t, ns, "hdls", "hdls-v4", discovery.AddressTypeIPv4, []discovery.EndpointPort{slicePort("http", 80)},
		endpoint{ip: "198.51.100.1", hostname: "db-0"},
		endpoint{ip: "198.51.100.2", pod: "pod-2"},
		endpoint{ip: "198.51.100.3", notReady: true})
	createSlice(t, ns, "hdls", "hdls-v6", discovery.AddressTypeIPv6, []discovery.EndpointPort{slicePort("http", 80)}, endpoint{ip: "2001:db8::5"})

	createService(t, headlessService(ns, "noready", port("http", 80)))
	createSlice(t, ns, "noready", "noready-a", discovery.AddressTypeIPv4, []discovery.EndpointPort{slicePort("http", 80)}, endpoint{ip: "198.51.100.4", notReady: true})

	unnamed := createService(t, clusterIPService(ns, "unnamed", false, port("", 8080)))
	createService(t, externalService(ns, "ext", "svc1.answers.svc.cluster.local"))
	createService(t, externalService(ns, "extchain", "ext.answers.svc.cluster.local"))
	createService(t, externalService(ns, "extout", "api.partner.example"))

	var many []endpoint
	for i := range 60 {
		many = append(many, endpoint{ip: fmt.Sprintf("203.0.113.%d", 100+i)})
	}
	createService(t, headlessService(ns, "big", port("http", 80)))
	createSlice(t, ns, "big", "big-a", discovery.AddressTypeIPv4, []discovery.EndpointPort{slicePort("http", 80)}, many...)

	p := loopback.FreePort(t)
	startCoreDNS(t, outpostCorefile(p, startUpstream(t), testenv.AdminKubeconfigFile(t, env, "coredns-test", ""), ""), p)

	name := func(s string) string { return s + ".answers.svc.cluster.local." }
	cases := []test.Case{
		{Qname: "dns-version.cluster.local.", Qtype: dns.TypeTXT, Answer: []dns.RR{test.TXT(`dns-version.cluster.local. 28800 IN TXT "1.1.0"`)}},
		{Qname: name("svc1"), Qtype: dns.TypeA, Answer: []dns.RR{test.A(name("svc1") + " 5 IN A " + v4)}},
		{Qname: name("svc1"), Qtype: dns.TypeAAAA, Answer: []dns.RR{test.AAAA(name("svc1") + " 5 IN AAAA " + v6)}},
		{Qname: "SvC1.AnSwers.svc.CLUSTER.local.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("SvC1.AnSwers.svc.CLUSTER.local. 5 IN A " + v4)}},
		{Qname: name("svc1"), Qtype: dns.TypeMX, Ns: []dns.RR{soa("cluster.local.")}},
		{Qname: name("unnamed"), Qtype: dns.TypeAAAA, Ns: []dns.RR{soa("cluster.local.")}},
		{Qname: name("nosuch"), Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
		{Qname: "svc1.nosuchns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
		{Qname: "answers.svc.cluster.local.", Qtype: dns.TypeA, Ns: []dns.RR{soa("cluster.local.")}},
		// headless: ready endpoints only, both families
		{Qname: name("hdls"), Qtype: dns.TypeA, Answer: []dns.RR{
			test.A(name("hdls") + " 5 IN A 198.51.100.1"),
			test.A(name("hdls") + " 5 IN A 198.51.100.2"),
		}},
		{Qname: name("hdls"), Qtype: dns.TypeAAAA, Answer: []dns.RR{test.AAAA(name("hdls") + " 5 IN AAAA 2001:db8::5")}},
		{Qname: name("noready"), Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
		// endpoint names
		{Qname: "db-0." + name("hdls"), Qtype: dns.TypeA, Answer: []dns.RR{test.A("db-0." + name("hdls") + " 5 IN A 198.51.100.1")}},
		{Qname: "198-51-100-2." + name("hdls"), Qtype: dns.TypeA, Answer: []dns.RR{test.A("198-51-100-2." + name("hdls") + " 5 IN A 198.51.100.2")}},
		{Qname: "2001-db8--5." + name("hdls"), Qtype: dns.TypeAAAA, Answer: []dns.RR{test.AAAA("2001-db8--5." + name("hdls") + " 5 IN AAAA 2001:db8::5")}},
		{Qname: "198-51-100-3." + name("hdls"), Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
		{Qname: "pod-2." + name("hdls"), Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
		// SRV, named ports, with glue
		{Qname: "_http._tcp." + name("svc1"), Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_http._tcp." + name("svc1") + " 5 IN SRV 0 50 80 " + name("svc1"))},
			Extra:  []dns.RR{test.A(name("svc1") + " 5 IN A " + v4), test.AAAA(name("svc1") + " 5 IN AAAA " + v6)}},
		{Qname: name("svc1"), Qtype: dns.TypeSRV,
			Answer: []dns.RR{
				test.SRV(name("svc1") + " 5 IN SRV 0 25 80 " + name("svc1")),
				test.SRV(name("svc1") + " 5 IN SRV 0 25 443 " + name("svc1")),
			},
			Extra: []dns.RR{test.A(name("svc1") + " 5 IN A " + v4), test.AAAA(name("svc1") + " 5 IN AAAA " + v6)}},
		{Qname: "_http._tcp." + name("hdls"), Qtype: dns.TypeSRV,
			Answer: []dns.RR{
				test.SRV("_http._tcp." + name("hdls") + " 5 IN SRV 0 33 80 db-0." + name("hdls")),
				test.SRV("_http._tcp." + name("hdls") + " 5 IN SRV 0 33 80 198-51-100-2." + name("hdls")),
				test.SRV("_http._tcp." + name("hdls") + " 5 IN SRV 0 33 80 2001-db8--5." + name("hdls")),
			},
			Extra: []dns.RR{
				test.A("db-0." + name("hdls") + " 5 IN A 198.51.100.1"),
				test.A("198-51-100-2." + name("hdls") + " 5 IN A 198.51.100.2"),
				test.AAAA("2001-db8--5." + name("hdls") + " 5 IN AAAA 2001:db8::5"),
			}},
		{Qname: "_http._tcp." + name("unnamed"), Qtype: dns.TypeSRV, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
		{Qname: name("unnamed"), Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV(name("unnamed") + " 5 IN SRV 0 100 8080 " + name("unnamed"))},
			Extra:  []dns.RR{test.A(name("unnamed") + " 5 IN A " + unnamed.Spec.ClusterIP)}},
		// PTR for ClusterIPs (both families) and endpoint IPs
		{Qname: reverse(v4), Qtype: dns.TypePTR, Answer: []dns.RR{test.PTR(reverse(v4) + " 5 IN PTR " + name("svc1"))}},
		{Qname: reverse(v6), Qtype: dns.TypePTR, Answer: []dns.RR{test.PTR(reverse(v6) + " 5 IN PTR " + name("svc1"))}},
		{Qname: reverse("198.51.100.1"), Qtype: dns.TypePTR, Answer: []dns.RR{test.PTR(reverse("198.51.100.1") + " 5 IN PTR db-0." + name("hdls"))}},
		{Qname: reverse("2001:db8::5"), Qtype: dns.TypePTR, Answer: []dns.RR{test.PTR(reverse("2001:db8::5") + " 5 IN PTR 2001-db8--5." + name("hdls"))}},
		{Qname: reverse("198.51.100.3"), Qtype: dns.TypePTR, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("in-addr.arpa.")}},
		// ExternalName: in-zone target, a chain, and a target outside the zone
		{Qname: name("ext"), Qtype: dns.TypeA, Answer: []dns.RR{
			test.CNAME(name("ext") + " 5 IN CNAME " + name("svc1")),
			test.A(name("svc1") + " 5 IN A " + v4),
		}},
		{Qname: name("extchain"), Qtype: dns.TypeAAAA, Answer: []dns.RR{
			test.CNAME(name("extchain") + " 5 IN CNAME " + name("ext")),
			test.CNAME(name("ext") + " 5 IN CNAME " + name("svc1")),
			test.AAAA(name("svc1") + " 5 IN AAAA " + v6),
		}},
		{Qname: name("extout"), Qtype: dns.TypeA, Answer: []dns.RR{
			test.CNAME(name("extout") + " 5 IN CNAME api.partner.example."),
			test.A("api.partner.example. 60 IN A 203.0.113.7"),
		}},
		{Qname: name("extout"), Qtype: dns.TypeCNAME, Answer: []dns.RR{test.CNAME(name("extout") + " 5 IN CNAME api.partner.example.")}},
		// apex
		{Qname: "cluster.local.", Qtype: dns.TypeSOA, Answer: []dns.RR{soa("cluster.local.")}},
		{Qname: "cluster.local.", Qtype: dns.TypeNS, Ns: []dns.RR{soa("cluster.local.")}}, // bound to loopback only: no NS address
		{Qname: "cluster.local.", Qtype: dns.TypeA, Ns: []dns.RR{soa("cluster.local.")}},
		{Qname: "cluster.local.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}},
	}
	for _, proto := range []string{"udp", "tcp"} {
		for _, tc := range cases {
			checkCase(t, proto, p, tc)
		}
	}

	t.Run("truncation", func(t *testing.T) {
		udp := query(t, "udp", p, name("big"), dns.TypeA)
		if !udp.Truncated || len(udp.Answer) >= 60 {
			t.Errorf("60 A records over UDP without EDNS: truncated=%v with %d answers, want TC and fewer", udp.Truncated, len(udp.Answer))
		}
		tcp := query(t, "tcp", p, name("big"), dns.TypeA)
		if tcp.Truncated || len(tcp.Answer) != 60 {
			t.Errorf("over TCP: truncated=%v with %d answers, want all 60", tcp.Truncated, len(tcp.Answer))
		}
		seen := map[string]bool{}
		for _, rr := range tcp.Answer {
			seen[rr.(*dns.A).A.String()] = true
		}
		for _, e := range many {
			if !seen[net.ParseIP(e.ip).String()] {
				t.Errorf("TCP answer misses %s", e.ip)
			}
		}
	})
}
