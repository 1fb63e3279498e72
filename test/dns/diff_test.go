package dns

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// TestDifferential serves the same API objects with the kubernetes plugin on
// one port and outpost on another, in the same bin/coredns, and checks that a
// generated corpus of queries over every name shape gets the same rcode,
// flags and RRsets from both. Each configuration pair runs the whole corpus.
func TestDifferential(t *testing.T) {
	names := diffFixture(t)
	upstream := startUpstream(t)
	kc := testenv.AdminKubeconfigFile(t, env, "coredns-test", "")

	configs := []struct{ name, block string }{
		{"defaults", ""},
		{"options", "endpoint_pod_names\n        ignore empty_service\n        namespaces diff-a\n        ttl 17"},
		{"noendpoints", "noendpoints"},
	}
	var corefile strings.Builder
	type pair struct {
		name         string
		k8s, outpost int
	}
	var pairs []pair
	for _, c := range configs {
		pr := pair{c.name, loopback.FreePort(t), loopback.FreePort(t)}
		pairs = append(pairs, pr)
		for _, side := range []struct {
			plugin string
			port   int
		}{{"kubernetes", pr.k8s}, {"outpost", pr.outpost}} {
			fmt.Fprintf(&corefile, `.:%d {
    bind 127.0.0.1
    %s cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        %s
    }
    forward . 127.0.0.1:%d
}
`, side.port, side.plugin, kc, c.block, upstream)
		}
	}
	startCoreDNS(t, corefile.String(), pairs[0].outpost)

	corpus := generateCorpus(names)
	if len(corpus) < 2000 {
		t.Fatalf("corpus has %d queries, want at least 2000", len(corpus))
	}
	t.Logf("corpus: %d queries per configuration", len(corpus))
	for _, pr := range pairs {
		t.Run(pr.name, func(t *testing.T) {
			var same, differ, documented int
			for i, q := range corpus {
				proto := "udp"
				if i%5 == 0 {
					proto = "tcp"
				}
				k := canonical(query(t, proto, pr.k8s, q.name, q.qtype))
				o := canonical(query(t, proto, pr.outpost, q.name, q.qtype))
				switch {
				case k == o:
					same++
				case isDocumentedDifference(q.name, q.qtype, k, o):
					documented++
				default:
					differ++
					if differ <= 20 {
						t.Errorf("%s %s over %s differs:\nkubernetes:\n%s\noutpost:\n%s", q.name, dns.TypeToString[q.qtype], proto, k, o)
					}
				}
			}
			t.Logf("%s: %d same, %d documented differences, %d unexpected differences", pr.name, same, documented, differ)
			if differ > 0 {
				t.Errorf("%d of %d queries answered differently", differ, len(corpus))
			}
		})
	}
}

// isDocumentedDifference is the README's "Deliberate differences" list:
// outpost compares the zone case-insensitively in ns.dns.<zone>, where the
// kubernetes plugin answers NXDOMAIN unless the zone is written in lower case.
func isDocumentedDifference(name string, qtype uint16, k8s, outpost string) bool {
	lower := strings.ToLower(name)
	if !strings.HasPrefix(lower, "ns.dns.") || name[len("ns.dns."):] == lower[len("ns.dns."):] {
		return false
	}
	return strings.HasPrefix(k8s, "rcode=NXDOMAIN") && strings.HasPrefix(outpost, "rcode=NOERROR")
}

// canonical renders what a client sees of a response, with each section
// sorted and the SOA serial (a timestamp) blanked.
//
// A truncated UDP answer holds the first records that fit; neither plugin
// defines the order of a headless Service's records, so for those only the
// header and the number of records are compared.
func canonical(m *dns.Msg) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rcode=%s aa=%v tc=%v\n", dns.RcodeToString[m.Rcode], m.Authoritative, m.Truncated)
	if m.Truncated {
		fmt.Fprintf(&b, "records: %d/%d/%d\n", len(m.Answer), len(m.Ns), len(m.Extra))
		return b.String()
	}
	for i, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		var lines []string
		for _, rr := range section {
			if soa, ok := rr.(*dns.SOA); ok {
				c := *soa
				c.Serial = 0
				rr = &c
			}
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			lines = append(lines, rr.String())
		}
		sort.Strings(lines)
		fmt.Fprintf(&b, "%s: %s\n", []string{"answer", "authority", "additional"}[i], strings.Join(lines, " | "))
	}
	return b.String()
}

// fixtureNames is what the corpus generator builds names from.
type fixtureNames struct {
	namespaces []string
	services   map[string][]string // namespace -> services
	endpoints  map[string][]string // "svc.ns" -> endpoint labels to try
	ports      []string
	ips        []string
}

// diffFixture creates Services of every kind in two namespaces.
func diffFixture(t *testing.T) fixtureNames {
	f := fixtureNames{services: map[string][]string{}, endpoints: map[string][]string{}}
	udp := corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}
	for _, ns := range []string{"diff-a", "diff-b"} {
		namespace(t, ns, nil)
		f.namespaces = append(f.namespaces, ns)
		add := func(svc *corev1.Service) {
			out := createService(t, svc)
			f.services[ns] = append(f.services[ns], svc.Name)
			f.ips = append(f.ips, out.Spec.ClusterIPs...)
		}
		add(clusterIPService(ns, "single", false, port("http", 80)))
		add(clusterIPService(ns, "dual", true, port("http", 80), port("https", 443), udp))
		add(clusterIPService(ns, "unnamed", false, port("", 8080)))
		add(clusterIPService(ns, "empty", true, port("http", 80)))
		add(clusterIPService(ns, "withpods", false, port("http", 80)))
		add(headlessService(ns, "hdls", port("http", 80), udp))
		add(headlessService(ns, "noports"))
		add(headlessService(ns, "notready", port("http", 80)))
		add(headlessService(ns, "noslices", port("http", 80)))
		add(externalService(ns, "ext-in", "dual."+ns+".svc.cluster.local"))
		add(externalService(ns, "ext-hdls", "hdls."+ns+".svc.cluster.local"))
		add(externalService(ns, "ext-missing", "nosuch."+ns+".svc.cluster.local"))
		add(externalService(ns, "ext-out", "api.partner.example"))
		add(externalService(ns, "ext-outnx", "nowhere.invalid"))
		add(externalService(ns, "ext-chain", "ext-in."+ns+".svc.cluster.local"))
		add(externalService(ns, "ext-loop1", "ext-loop2."+ns+".svc.cluster.local"))
		add(externalService(ns, "ext-loop2", "ext-loop1."+ns+".svc.cluster.local."))
		add(externalService(ns, "ext-self", "ext-self."+ns+".svc.cluster.local"))
		add(externalService(ns, "ext-other", "single.diff-a.svc.cluster.local"))
		f.services[ns] = append(f.services[ns], "nosuch")

		octet := map[string]int{"diff-a": 1, "diff-b": 2}[ns]
		v4 := func(i int) string { return fmt.Sprintf("198.51.100.%d", octet*50+i) }
		v6 := func(i int) string { return fmt.Sprintf("2001:db8::%d:%d", octet, i) }
		hp := []discovery.EndpointPort{slicePort("http", 80), {Name: ptr("dns"), Port: ptr(int32(53)), Protocol: ptr(corev1.ProtocolUDP)}}
		createSlice(t, ns, "hdls", "hdls-v4", discovery.AddressTypeIPv4, hp,
			endpoint{ip: v4(1), hostname: "db-0"}, endpoint{ip: v4(2), pod: "hdls-pod-2"}, endpoint{ip: v4(3), notReady: true},
			endpoint{ip: v4(4), hostname: "db-0"})
		createSlice(t, ns, "hdls", "hdls-v6", discovery.AddressTypeIPv6, hp, endpoint{ip: v6(1)}, endpoint{ip: v6(2), hostname: "db-1", pod: "hdls-pod-6"})
		createSlice(t, ns, "noports", "noports-a", discovery.AddressTypeIPv4, nil, endpoint{ip: v4(5)})
		createSlice(t, ns, "notready", "notready-a", discovery.AddressTypeIPv4, []discovery.EndpointPort{slicePort("http", 80)}, endpoint{ip: v4(6), notReady: true})
		createSlice(t, ns, "withpods", "withpods-a", discovery.AddressTypeIPv4, []discovery.EndpointPort{slicePort("http", 8080)}, endpoint{ip: v4(7), pod: "web-0"}, endpoint{ip: v4(1)})
		createSlice(t, ns, "orphan", "orphan-a", discovery.AddressTypeIPv4, []discovery.EndpointPort{slicePort("http", 80)}, endpoint{ip: v4(8), hostname: "lost"})
		f.endpoints["hdls."+ns] = []string{"db-0", "db-1", dashed(v4(2)), dashed(v4(3)), dashed(v6(1)), "hdls-pod-2", "hdls-pod-6", "nosuch"}
		f.endpoints["withpods."+ns] = []string{dashed(v4(7)), "web-0", dashed(v4(1))}
		f.endpoints["noports."+ns] = []string{dashed(v4(5))}
		f.endpoints["orphan."+ns] = []string{"lost"}
		for i := 1; i <= 9; i++ {
			f.ips = append(f.ips, v4(i))
		}
		f.ips = append(f.ips, v6(1), v6(2), v6(9))
	}
	f.ports = []string{"_http._tcp", "_http._udp", "_dns._udp", "_dns._tcp", "_https._tcp", "http.tcp", "_nope._tcp", "_http", "_tcp._http"}
	f.ips = append(f.ips, "10.96.255.254", "203.0.113.7")
	return f
}

func dashed(ip string) string {
	h := strings.NewReplacer(".", "-", ":", "-").Replace(ip)
	if strings.HasSuffix(h, "-") {
		h += "0"
	}
	return h
}

func ptr[T any](v T) *T { return &v }

type corpusQuery struct {
	name  string
	qtype uint16
}

// generateCorpus builds every name shape from the fixture and asks for it
// with every query type; a seeded random share is repeated in mixed case.
func generateCorpus(f fixtureNames) []corpusQuery {
	zone := "cluster.local."
	names := []string{
		zone, "svc." + zone, "pod." + zone, "dns-version." + zone, "ns.dns." + zone, "apex.dns." + zone,
		"nosuchns.svc." + zone, "x.nosuchns.svc." + zone, "a.b.c.d.e." + zone, "x.y." + zone,
		"1-2-3-4.diff-a.pod." + zone, "diff-a.pod." + zone, "ns.dns.cluster.local.cluster.local.",
		"in-addr.arpa.", "ip6.arpa.", "100.51.198.in-addr.arpa.", "svc.in-addr.arpa.", "x.svc.in-addr.arpa.",
		"dns-version.in-addr.arpa.", "1.0.0.0.in-addr.arpa.foo.", "999.1.1.1.in-addr.arpa.",
	}
	for _, ns := range f.namespaces {
		names = append(names, ns+".svc."+zone, "x."+ns+".svc."+zone)
		for _, s := range f.services[ns] {
			base := s + "." + ns + ".svc." + zone
			names = append(names, base, "a.b.c."+base)
			for _, p := range f.ports {
				names = append(names, p+"."+base)
			}
			for _, e := range f.endpoints[s+"."+ns] {
				names = append(names, e+"."+base)
			}
			names = append(names, "nosuch."+base)
		}
	}
	for _, ip := range f.ips {
		r, _ := dns.ReverseAddr(ip)
		names = append(names, r)
	}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeTXT, dns.TypeCNAME, dns.TypeMX,
		dns.TypeNS, dns.TypeSOA, dns.TypeANY, dns.TypeHINFO, dns.TypeHTTPS}
	rng := rand.New(rand.NewPCG(1, 2))
	var corpus []corpusQuery
	for _, n := range names {
		for _, qt := range qtypes {
			corpus = append(corpus, corpusQuery{n, qt})
			if rng.IntN(4) == 0 {
				corpus = append(corpus, corpusQuery{mixCase(rng, n), qt})
			}
		}
	}
	return corpus
}

func mixCase(rng *rand.Rand, s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && rng.IntN(2) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
