package dns

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// TestDifferential serves the same API objects with the kubernetes plugin on
// one port and outpost on another, in the same bin/coredns, and checks that a
// generated corpus of queries over every name shape gets the same whole
// message from both (compare): header flags, rcode, every section, TTLs and
// the OPT record. Each configuration pair runs the whole corpus, every query
// once without EDNS and once with it (variantsOf); the last configuration is
// Corefile.example itself, cache and loadbalance included, with only the
// plugin line changed.
func TestDifferential(t *testing.T) {
	names := diffFixture(t)
	upstream := startUpstream(t)
	kc := testenv.AdminKubeconfigFile(t, env, "coredns-test", "")

	bare := []struct{ name, block string }{
		{"defaults", ""},
		{"options", "endpoint_pod_names\n        ignore empty_service\n        namespaces diff-a\n        ttl 17"},
		{"noendpoints", "noendpoints"},
	}
	var corefile strings.Builder
	type pair struct {
		name         string
		k8s, outpost int
		// ttlSlack is how far the TTLs may differ: the cache plugin counts
		// them down from when each server stored the answer, and the two
		// servers store it a moment apart.
		ttlSlack uint32
	}
	var pairs []pair
	for _, c := range bare {
		pr := pair{name: c.name, k8s: loopback.FreePort(t), outpost: loopback.FreePort(t)}
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
	k8sExample, outpostExample := exampleCorefile(t, "kubernetes", true), exampleCorefile(t, "outpost", true)
	corefile.WriteString(k8sExample.corefile + "\n" + outpostExample.corefile)
	pairs = append(pairs, pair{name: "Corefile.example", k8s: k8sExample.dns, outpost: outpostExample.dns, ttlSlack: 1})
	server := startCoreDNS(t, corefile.String(), pairs[0].outpost)
	for _, pr := range pairs[1:] {
		waitForAnswers(t, pr.k8s)
		waitForAnswers(t, pr.outpost)
	}

	corpus := generateCorpus(names)
	if len(corpus) < 2000 {
		t.Fatalf("corpus has %d questions, want at least 2000", len(corpus))
	}
	t.Logf("corpus: %d questions per configuration", len(corpus))
	for _, pr := range pairs {
		t.Run(pr.name, func(t *testing.T) {
			stats, differences, err := runCorpus(corpus, pr.k8s, pr.outpost, pr.ttlSlack)
			if err != nil {
				t.Fatalf("%v\nCoreDNS goroutines serving queries:\n%s", err, servingStacks(server.Stacks()))
			}
			var queries, withRecords, unexpected int
			for _, v := range variants {
				s := stats[v.name]
				queries += s.queries
				withRecords += s.withRecords
				unexpected += s.unexpected
				t.Logf("%-16s %-16s %5d queries, %4d with records, %5d agree, %3d documented%s, %d unexpected",
					pr.name, v.name, s.queries, s.withRecords, s.agree, s.documentedTotal(), s.documentedByName(), s.unexpected)
				if s.withRecords < 10 {
					t.Errorf("%s: only %d answers carry records; the variant no longer exercises the plugins", v.name, s.withRecords)
				}
			}
			// A corpus whose answers were all empty would agree trivially.
			// The configuration that serves least, noendpoints (no headless
			// Service answers), has 5% of answers with records.
			if withRecords*30 < queries {
				t.Errorf("only %d of %d answers carry records; the corpus no longer exercises the plugins", withRecords, queries)
			}
			for i, d := range differences {
				if i == 20 {
					t.Errorf("... and %d more", len(differences)-i)
					break
				}
				t.Error(d)
			}
			if unexpected > 0 {
				t.Errorf("%d queries answered differently", unexpected)
			}
		})
	}
}

// waitForAnswers waits until a CoreDNS server block answers on port.
func waitForAnswers(t testing.TB, port int) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("dns-version.cluster.local.", dns.TypeTXT)
	poll.Eventually(t, 30*time.Second, fmt.Sprintf("coredns answering on 127.0.0.1:%d", port), func() error {
		_, err := tryExchange("udp", port, m)
		return err
	})
}

// variant is how a question is sent: the transport, and EDNS (an OPT record
// with this UDP size, DO bit and a client cookie) when size is not zero.
type variant struct {
	name   string
	proto  string
	size   uint16
	do     bool
	cookie bool
}

// variants: without EDNS the server falls back to 512 bytes over UDP; 1232 is
// the DNS flag day's size, 4096 the traditional one; the cookie checks that
// both echo the same OPT options.
var variants = []variant{
	{name: "udp", proto: "udp"},
	{name: "tcp", proto: "tcp"},
	{name: "udp edns512", proto: "udp", size: 512},
	{name: "udp edns1232", proto: "udp", size: 1232},
	{name: "udp edns1232 do", proto: "udp", size: 1232, do: true, cookie: true},
	{name: "udp edns4096 do", proto: "udp", size: 4096, do: true},
	{name: "tcp edns512", proto: "tcp", size: 512},
	{name: "tcp edns1232", proto: "tcp", size: 1232},
	{name: "tcp edns1232 do", proto: "tcp", size: 1232, do: true, cookie: true},
	{name: "tcp edns4096 do", proto: "tcp", size: 4096, do: true},
}

const plainVariants = 2 // variants[:2] carry no EDNS

func (v variant) message(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if v.size != 0 {
		m.SetEdns0(v.size, v.do)
		if v.cookie {
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
		}
	}
	return m
}

// variantsOf is what the i-th question of the corpus is sent with: once
// without EDNS (answered by the plugin's own wire writer) and once with it
// (answered through dns.Msg), the variants taken in turn, so that each sees
// every name shape. Questions whose answers do not fit in 512 bytes go out in
// every variant: they are the ones truncation and buffer sizes change.
func variantsOf(i int, q corpusQuery) []variant {
	if q.large {
		return variants
	}
	withEDNS := variants[plainVariants:]
	return []variant{variants[i%plainVariants], withEDNS[i%len(withEDNS)]}
}

// variantStats counts one configuration's results in one variant.
type variantStats struct {
	queries, withRecords, agree, unexpected int
	documented                              map[string]int // by documentedDifference.name
}

// documentedByName is " (name: count, ...)", or nothing when there are none.
func (s variantStats) documentedByName() string {
	var parts []string
	for _, d := range slices.Sorted(maps.Keys(s.documented)) {
		parts = append(parts, fmt.Sprintf("%s: %d", d, s.documented[d]))
	}
	if parts == nil {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func (s variantStats) documentedTotal() int {
	n := 0
	for _, c := range s.documented {
		n += c
	}
	return n
}

// runCorpus asks both ports every question of the corpus in its variants
// and compares the answers. Questions are spread over a few workers by their
// lower-cased name, so that both servers see the questions for one name (and
// so fill their caches) in the same order. A question one server leaves
// unanswered (tryExchange's tries all timed out) stops every worker, and so
// does running past corpusBudget: a server that stopped answering, or
// answers each question only just in time, would otherwise take hours over
// the corpus, and the test binary's timeout ends it without a word on why.
func runCorpus(corpus []corpusQuery, k8s, outpost int, ttlSlack uint32) (map[string]variantStats, []string, error) {
	const workers = 4
	byWorker := make([][]int, workers)
	for i, q := range corpus {
		h := fnv.New32a()
		h.Write([]byte(strings.ToLower(q.name)))
		w := h.Sum32() % workers
		byWorker[w] = append(byWorker[w], i)
	}
	var (
		mu          sync.Mutex
		stats       = map[string]variantStats{}
		differences []string
		unanswered  error
		wg          sync.WaitGroup
	)
	record := func(v variant, withRecords bool, documented, difference string) {
		mu.Lock()
		defer mu.Unlock()
		s := stats[v.name]
		if s.documented == nil {
			s.documented = map[string]int{}
		}
		s.queries++
		if withRecords {
			s.withRecords++
		}
		switch {
		case difference != "":
			s.unexpected++
			differences = append(differences, difference)
		case documented != "":
			s.documented[documented]++
		default:
			s.agree++
		}
		stats[v.name] = s
	}
	stop := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if unanswered == nil {
			unanswered = err
		}
	}
	deadline := time.Now().Add(corpusBudget)
	asked := 0
	// mayAsk reports whether a worker may ask its next question, and
	// counts the questions asked.
	mayAsk := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if unanswered == nil && time.Now().After(deadline) {
			unanswered = fmt.Errorf("the corpus took longer than %v (%d questions asked)", corpusBudget, asked)
		}
		if unanswered != nil {
			return false
		}
		asked++
		return true
	}
	exchange := func(proto, server string, port int, m *dns.Msg) (*dns.Msg, error) {
		r, err := tryExchange(proto, port, m)
		if err != nil {
			err = fmt.Errorf("%s (127.0.0.1:%d) stopped answering: %w", server, port, err)
			stop(err)
		}
		return r, err
	}
	for _, indexes := range byWorker {
		wg.Go(func() {
			for _, i := range indexes {
				q := corpus[i]
				for _, v := range variantsOf(i, q) {
					if !mayAsk() {
						return
					}
					m := v.message(q.name, q.qtype)
					k, err := exchange(v.proto, "kubernetes", k8s, m)
					if err != nil {
						return
					}
					o, err := exchange(v.proto, "outpost", outpost, m)
					if err != nil {
						return
					}
					documented, difference := compare(q, v, k, o, ttlSlack, func() (*dns.Msg, *dns.Msg, error) {
						k, err := exchange("tcp", "kubernetes", k8s, m)
						if err != nil {
							return nil, nil, err
						}
						o, err := exchange("tcp", "outpost", outpost, m)
						return k, o, err
					})
					record(v, len(k.Answer) > 0, documented, difference)
				}
			}
		})
	}
	wg.Wait()
	return stats, differences, unanswered
}

// corpusBudget is how long one configuration may take over the corpus; it
// takes seconds on a busy two-core machine.
const corpusBudget = 3 * time.Minute

// servingStacks keeps, of a Go goroutine dump, the goroutines that are
// answering a query, the ones to read when a server stopped answering; if
// none is, how many goroutines wait in each state.
func servingStacks(dump string) string {
	var serving []string
	states := map[string]int{}
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.Contains(g, "ServeDNS") {
			serving = append(serving, g)
		}
		if header, _, _ := strings.Cut(g, "\n"); strings.HasPrefix(header, "goroutine ") {
			if i, j := strings.Index(header, "["), strings.LastIndex(header, "]"); 0 <= i && i < j {
				states[header[i:j+1]]++
			}
		}
	}
	if serving != nil {
		return strings.Join(serving, "\n\n")
	}
	var counts []string
	for _, state := range slices.Sorted(maps.Keys(states)) {
		counts = append(counts, fmt.Sprintf("%4d %s", states[state], state))
	}
	return "(none; goroutines by state:)\n" + strings.Join(counts, "\n")
}

// compare compares the answers of the kubernetes plugin (k) and outpost (o)
// to q sent in v. It returns the name of the documented difference that
// explains a mismatch, or a description of an unexpected one. overTCP asks
// both the same question over TCP, for the whole answers of which truncated
// ones hold a part.
func compare(q corpusQuery, v variant, k, o *dns.Msg, ttlSlack uint32, overTCP func() (k, o *dns.Msg, err error)) (documented, difference string) {
	rk, ro := render(k), render(o)
	if rk.text == ro.text && ttlsClose(rk.ttls, ro.ttls, ttlSlack) {
		return "", ""
	}
	for _, d := range documentedDifferences {
		if d.explains(q, k, o) {
			return d.name, ""
		}
	}
	if k.Truncated && o.Truncated && rk.text != ro.text {
		fullK, fullO, err := overTCP()
		if err == nil && truncatedAlike(k, o, fullK, fullO) {
			return "truncated subset", ""
		}
	}
	return "", fmt.Sprintf("%s %s in %s differs:\nkubernetes:\n%s\noutpost:\n%s", q.name, dns.TypeToString[q.qtype], v.name, rk, ro)
}

// documentedDifference is one entry of plugin/README.md's "Deliberate
// differences" list.
type documentedDifference struct {
	name     string
	explains func(q corpusQuery, k8s, outpost *dns.Msg) bool
}

var documentedDifferences = []documentedDifference{
	// outpost compares the zone case-insensitively in ns.dns.<zone>, where
	// the kubernetes plugin answers NXDOMAIN unless the zone is written in
	// lower case.
	{"ns.dns.<Zone>", func(q corpusQuery, k8s, outpost *dns.Msg) bool {
		lower := strings.ToLower(q.name)
		if !strings.HasPrefix(lower, "ns.dns.") || q.name[len("ns.dns."):] == lower[len("ns.dns."):] {
			return false
		}
		return k8s.Rcode == dns.RcodeNameError && outpost.Rcode == dns.RcodeSuccess
	}},
}

// truncatedAlike is the documented difference "truncated subset": a
// truncated answer holds the records that come first, and the order of an
// RRset is not defined - the kubernetes plugin takes a headless Service's
// EndpointSlices in its informer's (map) order, and loadbalance shuffles
// addresses before the server truncates. So two truncated answers agree when
// everything but the kept records is the same and each kept record is one
// of its plugin's whole (TCP) answer, which must agree in full. How many
// records fit depends on which: an endpoint named after its IPv6 address
// makes a longer SRV target than one named after its IPv4 address.
func truncatedAlike(k, o, fullK, fullO *dns.Msg) bool {
	if render(fullK).text != render(fullO).text {
		return false
	}
	strip := func(m *dns.Msg) *dns.Msg {
		c := m.Copy()
		c.Answer, c.Ns = nil, nil
		c.Extra = slices.DeleteFunc(c.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype != dns.TypeOPT })
		return c
	}
	if render(strip(k)).text != render(strip(o)).text {
		return false
	}
	for _, s := range []struct{ k, o, full []dns.RR }{{k.Answer, o.Answer, fullK.Answer}, {k.Ns, o.Ns, fullK.Ns}, {withoutOPT(k.Extra), withoutOPT(o.Extra), withoutOPT(fullK.Extra)}} {
		if !subset(s.k, s.full) || !subset(s.o, s.full) {
			return false
		}
	}
	return true
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	return slices.DeleteFunc(slices.Clone(rrs), func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
}

// subset reports whether every record of part is in whole, TTLs aside.
func subset(part, whole []dns.RR) bool {
	in := map[string]bool{}
	for _, rr := range whole {
		in[withoutTTL(rr).String()] = true
	}
	for _, rr := range part {
		if !in[withoutTTL(rr).String()] {
			return false
		}
	}
	return true
}

func ttlsClose(a, b []uint32, slack uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if max(a[i], b[i])-min(a[i], b[i]) > slack {
			return false
		}
	}
	return true
}

// rendered is what a client sees of a response, in a form to compare: text
// holds everything but the TTLs, which ttls lists in the order text shows
// the records.
type rendered struct {
	text string
	ttls []uint32
}

func (r rendered) String() string { return fmt.Sprintf("%s ttls: %v", r.text, r.ttls) }

// render writes the header (ID aside), the question, the OPT record and the
// sections. In the answer and authority sections the RRsets keep their order
// (a CNAME comes before what it points to), and the records of one RRset are
// sorted: neither plugin defines their order (a headless Service's
// addresses) and loadbalance shuffles them. The additional section is glue
// for the answer, so its RRsets are sorted too. SOA serials are blanked: each
// plugin's is its own time of last change.
func render(m *dns.Msg) rendered {
	var b strings.Builder
	var ttls []uint32
	h := m.MsgHdr
	fmt.Fprintf(&b, "opcode=%s rcode=%s qr=%v aa=%v tc=%v rd=%v ra=%v z=%v ad=%v cd=%v\n",
		dns.OpcodeToString[h.Opcode], dns.RcodeToString[h.Rcode], h.Response, h.Authoritative, h.Truncated,
		h.RecursionDesired, h.RecursionAvailable, h.Zero, h.AuthenticatedData, h.CheckingDisabled)
	for _, q := range m.Question {
		fmt.Fprintf(&b, "question: %s\n", q.String())
	}
	if opt := m.IsEdns0(); opt != nil {
		fmt.Fprintf(&b, "opt: version=%d udp=%d do=%v z=%#x extrcode=%d", opt.Version(), opt.UDPSize(), opt.Do(), opt.Z(), opt.ExtendedRcode())
		for _, o := range opt.Option {
			fmt.Fprintf(&b, " option%d=%s", o.Option(), o.String())
		}
		b.WriteString("\n")
	}
	for i, section := range [][]dns.RR{m.Answer, m.Ns, withoutOPT(m.Extra)} {
		sets := rrsets(section)
		if i == 2 {
			slices.SortFunc(sets, func(a, b rrset) int { return strings.Compare(a.key, b.key) })
		}
		fmt.Fprintf(&b, "%s:", []string{"answer", "authority", "additional"}[i])
		for _, set := range sets {
			for _, r := range set.records {
				fmt.Fprintf(&b, "\n  %s", r.text)
				ttls = append(ttls, r.ttl)
			}
		}
		b.WriteString("\n")
	}
	return rendered{b.String(), ttls}
}

type rrset struct {
	key     string // owner name, class and type
	records []renderedRR
}

type renderedRR struct {
	text string // without the TTL
	ttl  uint32
}

// rrsets groups a section's records into RRsets in the order each first
// appears, the records of one sorted.
func rrsets(section []dns.RR) []rrset {
	var sets []rrset
	index := map[string]int{}
	for _, rr := range section {
		h := rr.Header()
		key := fmt.Sprintf("%s %s %s", h.Name, dns.ClassToString[h.Class], dns.TypeToString[h.Rrtype])
		i, ok := index[key]
		if !ok {
			i = len(sets)
			index[key] = i
			sets = append(sets, rrset{key: key})
		}
		sets[i].records = append(sets[i].records, renderedRR{withoutTTL(rr).String(), h.Ttl})
	}
	for _, s := range sets {
		slices.SortFunc(s.records, func(a, b renderedRR) int { return strings.Compare(a.text, b.text) })
	}
	return sets
}

// withoutTTL is a copy of rr with TTL 0 and, for an SOA, serial 0.
func withoutTTL(rr dns.RR) dns.RR {
	c := dns.Copy(rr)
	c.Header().Ttl = 0
	if soa, ok := c.(*dns.SOA); ok {
		soa.Serial = 0
	}
	return c
}

// fixtureNames is what the corpus generator builds names from.
type fixtureNames struct {
	namespaces []string
	services   map[string][]string // namespace -> services
	endpoints  map[string][]string // "svc.ns" -> endpoint labels to try
	ports      []string            // port and protocol labels to try, the first the usual one
	ported     map[string]bool     // "svc.ns" -> the Service has ports
	ips        []string
	large      []string // names below which answers do not fit in 512 bytes
}

// diffFixture creates Services of every kind in two namespaces.
func diffFixture(t *testing.T) fixtureNames {
	f := fixtureNames{services: map[string][]string{}, endpoints: map[string][]string{}, ported: map[string]bool{}}
	udp := corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}
	for _, ns := range []string{"diff-a", "diff-b"} {
		namespace(t, ns, nil)
		f.namespaces = append(f.namespaces, ns)
		add := func(svc *corev1.Service) {
			out := createService(t, svc)
			f.services[ns] = append(f.services[ns], svc.Name)
			if out.Spec.ClusterIP != corev1.ClusterIPNone {
				f.ips = append(f.ips, out.Spec.ClusterIPs...)
			}
			if len(svc.Spec.Ports) > 0 {
				f.ported[svc.Name+"."+ns] = true
			}
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
		add(headlessService(ns, "big", port("http", 80), udp))
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
		// big's answers do not fit in 512 bytes: 40 IPv4 addresses in one
		// slice (a quarter named), 12 IPv6 ones in another.
		var bigV4, bigV6 []endpoint
		for i := range 40 {
			e := endpoint{ip: fmt.Sprintf("192.0.2.%d", octet*100+i)}
			if i%4 == 0 {
				e.hostname = fmt.Sprintf("big-%d", i)
			}
			bigV4 = append(bigV4, e)
		}
		for i := range 12 {
			bigV6 = append(bigV6, endpoint{ip: fmt.Sprintf("2001:db8::b:%d:%d", octet, i)})
		}
		createSlice(t, ns, "big", "big-v4", discovery.AddressTypeIPv4, hp, bigV4...)
		createSlice(t, ns, "big", "big-v6", discovery.AddressTypeIPv6, hp, bigV6...)
		f.large = append(f.large, "big."+ns+".svc.cluster.local.")
		f.endpoints["big."+ns] = []string{"big-0", dashed(bigV4[1].ip), dashed(bigV6[0].ip)}
		f.ips = append(f.ips, bigV4[0].ip, bigV4[1].ip, bigV6[0].ip)
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
	large bool // see fixtureNames.large
}

// generateCorpus builds every name shape from the fixture and asks for it
// with the types a name of that shape can have records of (A, AAAA, SRV,
// CNAME and TXT for Services and endpoints, SRV for ports, PTR for reverse
// names) and two more of allTypes in turn, so that every type meets every
// shape while most questions are ones a client asks. The names of the zones'
// special records and apexes get every type. A seeded random share is
// repeated in mixed case.
func generateCorpus(f fixtureNames) []corpusQuery {
	allTypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeTXT, dns.TypeCNAME, dns.TypeMX,
		dns.TypeNS, dns.TypeSOA, dns.TypeANY, dns.TypeHINFO, dns.TypeHTTPS}
	var (
		service = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeCNAME, dns.TypeTXT}
		missing = []uint16{dns.TypeA} // names built not to exist
		srv     = []uint16{dns.TypeSRV}
		ptr     = []uint16{dns.TypePTR}
	)
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		corpus []corpusQuery
		turn   int
	)
	add := func(own []uint16, names ...string) {
		for _, n := range names {
			qtypes := slices.Clone(own)
			for len(qtypes) < len(own)+2 && len(qtypes) < len(allTypes) {
				if qt := allTypes[turn%len(allTypes)]; !slices.Contains(qtypes, qt) {
					qtypes = append(qtypes, qt)
				}
				turn++
			}
			large := slices.ContainsFunc(f.large, func(l string) bool { return dns.IsSubDomain(l, n) })
			for _, qt := range qtypes {
				corpus = append(corpus, corpusQuery{n, qt, large})
				if rng.IntN(4) == 0 {
					corpus = append(corpus, corpusQuery{mixCase(rng, n), qt, large})
				}
			}
		}
	}

	zone := "cluster.local."
	add(allTypes, zone, "svc."+zone, "pod."+zone, "dns-version."+zone, "ns.dns."+zone, "apex.dns."+zone,
		"in-addr.arpa.", "ip6.arpa.", "100.51.198.in-addr.arpa.", "ns.dns.cluster.local.cluster.local.")
	add(missing, "nosuchns.svc."+zone, "x.nosuchns.svc."+zone, "a.b.c.d.e."+zone, "x.y."+zone,
		"1-2-3-4.diff-a.pod."+zone, "diff-a.pod."+zone, "svc.in-addr.arpa.", "x.svc.in-addr.arpa.",
		"dns-version.in-addr.arpa.", "1.0.0.0.in-addr.arpa.foo.", "999.1.1.1.in-addr.arpa.")
	for _, ns := range f.namespaces {
		add(service, ns+".svc."+zone)
		add(missing, "x."+ns+".svc."+zone)
		for _, s := range f.services[ns] {
			base := s + "." + ns + ".svc." + zone
			add(service, base)
			add(missing, "a.b.c."+base, "nosuch."+base)
			ports := f.ports
			if !f.ported[s+"."+ns] {
				ports = ports[:1] // all would be missing
			}
			for _, p := range ports {
				add(srv, p+"."+base)
			}
			for _, e := range f.endpoints[s+"."+ns] {
				add(service, e+"."+base)
			}
		}
	}
	for _, ip := range f.ips {
		add(ptr, reverse(ip))
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

// TestCompareSeesWholeMessages checks that compare, the differential test's
// judge, tells apart what a client would see differently and nothing else.
func TestCompareSeesWholeMessages(t *testing.T) {
	q := corpusQuery{name: "ext.a.svc.cluster.local.", qtype: dns.TypeA}
	base := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(1232, true)
		r := new(dns.Msg)
		r.SetReply(m)
		r.Authoritative = true
		r.Answer = []dns.RR{
			test.CNAME("ext.a.svc.cluster.local. 5 IN CNAME web.a.svc.cluster.local."),
			test.A("web.a.svc.cluster.local. 5 IN A 192.0.2.1"),
			test.A("web.a.svc.cluster.local. 5 IN A 192.0.2.2"),
		}
		r.Extra = []dns.RR{test.A("x.a.svc.cluster.local. 5 IN A 192.0.2.3"), test.A("y.a.svc.cluster.local. 5 IN A 192.0.2.4"), m.IsEdns0()}
		return r
	}
	noWholeAnswer := func() (*dns.Msg, *dns.Msg, error) { return nil, nil, fmt.Errorf("not truncated") }
	for _, c := range []struct {
		name   string
		change func(m *dns.Msg)
		slack  uint32
		differ bool
	}{
		{"same", func(*dns.Msg) {}, 0, false},
		{"RRset shuffled", func(m *dns.Msg) { m.Answer[1], m.Answer[2] = m.Answer[2], m.Answer[1] }, 0, false},
		{"glue reordered", func(m *dns.Msg) { m.Extra[0], m.Extra[1] = m.Extra[1], m.Extra[0] }, 0, false},
		{"CNAME after its target", func(m *dns.Msg) { m.Answer = append(m.Answer[1:], m.Answer[0]) }, 0, true},
		{"TTL", func(m *dns.Msg) { m.Answer[2].Header().Ttl = 4 }, 0, true},
		{"TTL within the cache's slack", func(m *dns.Msg) { m.Answer[2].Header().Ttl = 4 }, 1, false},
		{"AA", func(m *dns.Msg) { m.Authoritative = false }, 0, true},
		{"RA", func(m *dns.Msg) { m.RecursionAvailable = true }, 0, true},
		{"AD", func(m *dns.Msg) { m.AuthenticatedData = true }, 0, true},
		{"OPT size", func(m *dns.Msg) { m.IsEdns0().SetUDPSize(512) }, 0, true},
		{"DO", func(m *dns.Msg) { m.IsEdns0().SetDo(false) }, 0, true},
		{"OPT option", func(m *dns.Msg) {
			m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6f7574706f7374"}}
		}, 0, true},
		{"no OPT", func(m *dns.Msg) { m.Extra = m.Extra[:2] }, 0, true},
		{"extended rcode", func(m *dns.Msg) { m.Rcode = dns.RcodeBadCookie }, 0, true},
		{"authority", func(m *dns.Msg) { m.Ns = []dns.RR{soa("cluster.local.")} }, 0, true},
		{"truncated", func(m *dns.Msg) { m.Truncated, m.Answer = true, m.Answer[:2] }, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := base()
			c.change(o)
			_, difference := compare(q, variants[4], base(), o, c.slack, noWholeAnswer)
			if (difference != "") != c.differ {
				t.Errorf("difference reported: %v, want %v\n%s", difference != "", c.differ, difference)
			}
		})
	}
}
