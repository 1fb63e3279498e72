package outpost

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"sort"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

const testSerial = 1700000000

// testUpstream answers for names outside the cluster zone, standing in for
// the rest of the server's plugin chain.
type testUpstream struct{}

func (testUpstream) Lookup(_ context.Context, state request.Request, name string, typ uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, typ)
	if name == "api.partner.example." && typ == dns.TypeA {
		m.Answer = []dns.RR{test.A("api.partner.example. 60 IN A 203.0.113.7")}
	}
	return m, nil
}

func svc(name, ns string, clusterIPs []string, ports ...Port) *Service {
	s := &Service{Name: name, Namespace: ns, ClusterIPs: clusterIPs, Ports: ports}
	s.finish()
	return s
}

func slice(name, ns, service string, ports []Port, eps ...Endpoint) *EndpointSlice {
	e := &EndpointSlice{Name: name, Namespace: ns, Service: service, Ports: ports, Endpoints: eps}
	e.finish()
	return e
}

var (
	httpPort  = Port{Name: "http", Protocol: "TCP", Port: 80}
	httpsPort = Port{Name: "https", Protocol: "TCP", Port: 443}
)

// newTestOutpost returns a synced plugin for cluster.local and the reverse
// zones, holding a small cluster: dual-stack, headless, ExternalName,
// endpoint-less and unnamed-port Services.
func newTestOutpost(t testing.TB) *Outpost {
	t.Helper()
	o := New([]string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."})
	o.upstream = testUpstream{}
	ext := svc("ext", "testns", nil)
	ext.IsExternal, ext.ExternalName, ext.ClusterIPs = true, "svc1.testns.svc.cluster.local", []string{""}
	ext.finish()
	extOut := svc("extout", "testns", nil)
	extOut.IsExternal, extOut.ExternalName, extOut.ClusterIPs = true, "api.partner.example", []string{""}
	extOut.finish()
	o.idx.replace(
		[]*Service{
			svc("svc1", "testns", []string{"10.96.0.10", "fd00:10:96::a"}, httpPort, httpsPort),
			svc("hdls1", "testns", []string{"None"}, httpPort),
			svc("empty", "testns", []string{"None"}, httpPort),
			svc("nopods", "testns", []string{"10.96.0.11"}, httpPort),
			svc("unnamed", "testns", []string{"10.96.0.12"}, Port{Protocol: "TCP", Port: 8080}),
			ext, extOut,
		},
		[]*EndpointSlice{
			slice("hdls1-v4", "testns", "hdls1", []Port{httpPort},
				Endpoint{Addr: parseAddress("198.51.100.1"), Hostname: "db-0"},
				Endpoint{Addr: parseAddress("198.51.100.2"), TargetRefName: "pod-2"}),
			slice("hdls1-v6", "testns", "hdls1", []Port{httpPort}, Endpoint{Addr: parseAddress("2001:db8::5")}),
			slice("svc1-abc", "testns", "svc1", []Port{httpPort}, Endpoint{Addr: parseAddress("198.51.100.10")}),
		},
		[]string{"testns", "default"},
	)
	o.idx.modified.Store(testSerial)
	o.informersSynced.Store(true)
	return o
}

func soa(zone string) dns.RR {
	return test.SOA(zone + "\t5\tIN\tSOA\tns.dns." + zone + " hostmaster." + zone + " 1700000000 7200 1800 86400 5")
}

var handlerCases = []test.Case{
	// dns-version
	{Qname: "dns-version.cluster.local.", Qtype: dns.TypeTXT, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.TXT(`dns-version.cluster.local. 28800 IN TXT "1.1.0"`)}},
	// ClusterIP, dual stack
	{Qname: "svc1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.A("svc1.testns.svc.cluster.local. 5 IN A 10.96.0.10")}},
	{Qname: "svc1.testns.svc.cluster.local.", Qtype: dns.TypeAAAA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.AAAA("svc1.testns.svc.cluster.local. 5 IN AAAA fd00:10:96::a")}},
	// mixed case: the answer keeps the query's case
	{Qname: "SVC1.TestNS.svc.Cluster.Local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.A("SVC1.TestNS.svc.Cluster.Local. 5 IN A 10.96.0.10")}},
	// a ClusterIP Service without endpoints still answers
	{Qname: "nopods.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.A("nopods.testns.svc.cluster.local. 5 IN A 10.96.0.11")}},
	// wrong type on an existing name: NODATA
	{Qname: "nopods.testns.svc.cluster.local.", Qtype: dns.TypeAAAA, Rcode: dns.RcodeSuccess,
		Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "svc1.testns.svc.cluster.local.", Qtype: dns.TypeMX, Rcode: dns.RcodeSuccess,
		Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "svc1.testns.svc.cluster.local.", Qtype: dns.TypeTXT, Rcode: dns.RcodeSuccess,
		Ns: []dns.RR{soa("cluster.local.")}},
	// missing names: NXDOMAIN
	{Qname: "nosuch.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "svc1.nosuchns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "a.b.c.svc1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "svc1.testns.nosvc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("cluster.local.")}},
	// namespaces and the svc subtree exist without data
	{Qname: "testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Ns: []dns.RR{soa("cluster.local.")}},
	// headless: ready endpoints only
	{Qname: "hdls1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{
			test.A("hdls1.testns.svc.cluster.local. 5 IN A 198.51.100.1"),
			test.A("hdls1.testns.svc.cluster.local. 5 IN A 198.51.100.2"),
		}},
	{Qname: "hdls1.testns.svc.cluster.local.", Qtype: dns.TypeAAAA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.AAAA("hdls1.testns.svc.cluster.local. 5 IN AAAA 2001:db8::5")}},
	{Qname: "empty.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("cluster.local.")}},
	// endpoint names: hostname, else dashed IP
	{Qname: "db-0.hdls1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.A("db-0.hdls1.testns.svc.cluster.local. 5 IN A 198.51.100.1")}},
	{Qname: "198-51-100-2.hdls1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.A("198-51-100-2.hdls1.testns.svc.cluster.local. 5 IN A 198.51.100.2")}},
	{Qname: "2001-db8--5.hdls1.testns.svc.cluster.local.", Qtype: dns.TypeAAAA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.AAAA("2001-db8--5.hdls1.testns.svc.cluster.local. 5 IN AAAA 2001:db8::5")}},
	{Qname: "pod-2.hdls1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("cluster.local.")}},
	// endpoint names of a ClusterIP Service resolve too
	{Qname: "198-51-100-10.svc1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.A("198-51-100-10.svc1.testns.svc.cluster.local. 5 IN A 198.51.100.10")}},
	// SRV: named port of a ClusterIP Service, with glue for both families
	{Qname: "_http._tcp.svc1.testns.svc.cluster.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.SRV("_http._tcp.svc1.testns.svc.cluster.local. 5 IN SRV 0 50 80 svc1.testns.svc.cluster.local.")},
		Extra: []dns.RR{
			test.A("svc1.testns.svc.cluster.local. 5 IN A 10.96.0.10"),
			test.AAAA("svc1.testns.svc.cluster.local. 5 IN AAAA fd00:10:96::a"),
		}},
	// bare-service SRV: every port
	{Qname: "svc1.testns.svc.cluster.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{
			test.SRV("svc1.testns.svc.cluster.local. 5 IN SRV 0 25 80 svc1.testns.svc.cluster.local."),
			test.SRV("svc1.testns.svc.cluster.local. 5 IN SRV 0 25 443 svc1.testns.svc.cluster.local."),
		},
		Extra: []dns.RR{
			test.A("svc1.testns.svc.cluster.local. 5 IN A 10.96.0.10"),
			test.AAAA("svc1.testns.svc.cluster.local. 5 IN AAAA fd00:10:96::a"),
		}},
	// SRV of a headless Service: one target per endpoint
	{Qname: "_http._tcp.hdls1.testns.svc.cluster.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{
			test.SRV("_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 33 80 db-0.hdls1.testns.svc.cluster.local."),
			test.SRV("_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 33 80 198-51-100-2.hdls1.testns.svc.cluster.local."),
			test.SRV("_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 33 80 2001-db8--5.hdls1.testns.svc.cluster.local."),
		},
		Extra: []dns.RR{
			test.A("db-0.hdls1.testns.svc.cluster.local. 5 IN A 198.51.100.1"),
			test.A("198-51-100-2.hdls1.testns.svc.cluster.local. 5 IN A 198.51.100.2"),
			test.AAAA("2001-db8--5.hdls1.testns.svc.cluster.local. 5 IN AAAA 2001:db8::5"),
		}},
	// no SRV for an unnamed port, or an unknown one
	{Qname: "_http._tcp.unnamed.testns.svc.cluster.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "unnamed.testns.svc.cluster.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.SRV("unnamed.testns.svc.cluster.local. 5 IN SRV 0 100 8080 unnamed.testns.svc.cluster.local.")},
		Extra:  []dns.RR{test.A("unnamed.testns.svc.cluster.local. 5 IN A 10.96.0.12")}},
	{Qname: "_nope._tcp.svc1.testns.svc.cluster.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("cluster.local.")}},
	// SRV targets carry the zone in the query's case
	{Qname: "_HTTP._TCP.svc1.testns.svc.CLUSTER.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.SRV("_HTTP._TCP.svc1.testns.svc.CLUSTER.local. 5 IN SRV 0 50 80 svc1.testns.svc.CLUSTER.local.")},
		Extra: []dns.RR{
			test.A("svc1.testns.svc.CLUSTER.local. 5 IN A 10.96.0.10"),
			test.AAAA("svc1.testns.svc.CLUSTER.local. 5 IN AAAA fd00:10:96::a"),
		}},
	// ExternalName: CNAME chased in the zone and outside it
	{Qname: "ext.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{
			test.CNAME("ext.testns.svc.cluster.local. 5 IN CNAME svc1.testns.svc.cluster.local."),
			test.A("svc1.testns.svc.cluster.local. 5 IN A 10.96.0.10"),
		}},
	{Qname: "extout.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{
			test.CNAME("extout.testns.svc.cluster.local. 5 IN CNAME api.partner.example."),
			test.A("api.partner.example. 60 IN A 203.0.113.7"),
		}},
	{Qname: "extout.testns.svc.cluster.local.", Qtype: dns.TypeCNAME, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.CNAME("extout.testns.svc.cluster.local. 5 IN CNAME api.partner.example.")}},
	{Qname: "extout.testns.svc.cluster.local.", Qtype: dns.TypeSRV, Rcode: dns.RcodeSuccess,
		Ns: []dns.RR{soa("cluster.local.")}},
	// PTR: ClusterIPs and endpoint IPs
	{Qname: "10.0.96.10.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.PTR("10.0.96.10.in-addr.arpa. 5 IN PTR svc1.testns.svc.cluster.local.")}},
	{Qname: "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.PTR("a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 5 IN PTR svc1.testns.svc.cluster.local.")}},
	{Qname: "1.100.51.198.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{test.PTR("1.100.51.198.in-addr.arpa. 5 IN PTR db-0.hdls1.testns.svc.cluster.local.")}},
	{Qname: "99.100.51.198.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("in-addr.arpa.")}},
	// apex
	{Qname: "cluster.local.", Qtype: dns.TypeSOA, Rcode: dns.RcodeSuccess,
		Answer: []dns.RR{soa("cluster.local.")}},
	{Qname: "cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
		Ns: []dns.RR{soa("cluster.local.")}},
	{Qname: "cluster.local.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("cluster.local.")}},
	// SOA below the apex is NODATA, as in the kubernetes plugin
	{Qname: "nosuch.testns.svc.cluster.local.", Qtype: dns.TypeSOA, Rcode: dns.RcodeSuccess,
		Ns: []dns.RR{soa("cluster.local.")}},
	// pod records are not served
	{Qname: "198-51-100-1.testns.pod.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{soa("cluster.local.")}},
}

func TestServeDNS(t *testing.T) {
	o := newTestOutpost(t)
	for _, tc := range handlerCases {
		t.Run(dns.TypeToString[tc.Qtype]+" "+tc.Qname, func(t *testing.T) {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			if _, err := o.ServeDNS(context.Background(), rec, tc.Msg()); err != nil {
				t.Fatalf("ServeDNS: %v", err)
			}
			if rec.Msg == nil {
				t.Fatal("no response written")
			}
			if err := sortAndCheck(rec.Msg, tc); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestNXDOMAINIsSERVFAILBeforeSync(t *testing.T) {
	o := newTestOutpost(t)
	o.informersSynced.Store(false)
	cases := []test.Case{
		{Qname: "nosuch.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeServerFailure, Ns: []dns.RR{soa("cluster.local.")}},
		// what is known is still answered
		{Qname: "svc1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
			Answer: []dns.RR{test.A("svc1.testns.svc.cluster.local. 5 IN A 10.96.0.10")}},
	}
	for _, tc := range cases {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		o.ServeDNS(context.Background(), rec, tc.Msg())
		if err := sortAndCheck(rec.Msg, tc); err != nil {
			t.Errorf("%s: %v", tc.Qname, err)
		}
	}
}

func TestFallthrough(t *testing.T) {
	o := newTestOutpost(t)
	o.Fall = fall.Root
	o.Next = test.NextHandler(dns.RcodeRefused, nil)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rcode, _ := o.ServeDNS(context.Background(), rec, test.Case{Qname: "nosuch.testns.svc.cluster.local.", Qtype: dns.TypeA}.Msg())
	if rcode != dns.RcodeRefused {
		t.Errorf("NXDOMAIN with fallthrough: rcode %s, want the next plugin's REFUSED", dns.RcodeToString[rcode])
	}
	rec = dnstest.NewRecorder(&test.ResponseWriter{})
	rcode, _ = o.ServeDNS(context.Background(), rec, test.Case{Qname: "svc1.testns.svc.cluster.local.", Qtype: dns.TypeA}.Msg())
	if rcode != dns.RcodeSuccess || rec.Msg == nil || len(rec.Msg.Answer) != 1 {
		t.Errorf("existing name with fallthrough: rcode %s, answer %v", dns.RcodeToString[rcode], rec.Msg)
	}
}

func TestOptions(t *testing.T) {
	t.Run("ignore empty_service", func(t *testing.T) {
		o := newTestOutpost(t)
		o.ignoreEmptyService = true
		check(t, o, test.Case{Qname: "nopods.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}})
		check(t, o, test.Case{Qname: "svc1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
			Answer: []dns.RR{test.A("svc1.testns.svc.cluster.local. 5 IN A 10.96.0.10")}})
	})
	t.Run("namespaces", func(t *testing.T) {
		o := newTestOutpost(t)
		o.namespaces = map[string]struct{}{"default": {}}
		check(t, o, test.Case{Qname: "svc1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}})
		check(t, o, test.Case{Qname: "10.0.96.10.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("in-addr.arpa.")}})
	})
	t.Run("ttl", func(t *testing.T) {
		o := newTestOutpost(t)
		o.ttl = 30
		check(t, o, test.Case{Qname: "svc1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
			Answer: []dns.RR{test.A("svc1.testns.svc.cluster.local. 30 IN A 10.96.0.10")}})
	})
	t.Run("endpoint_pod_names", func(t *testing.T) {
		o := newTestOutpost(t)
		o.podNames = true
		check(t, o, test.Case{Qname: "pod-2.hdls1.testns.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
			Answer: []dns.RR{test.A("pod-2.hdls1.testns.svc.cluster.local. 5 IN A 198.51.100.2")}})
	})
	t.Run("apex NS with bound addresses", func(t *testing.T) {
		o := newTestOutpost(t)
		o.localIPs = []net.IP{net.ParseIP("198.51.100.53").To4()}
		check(t, o, test.Case{Qname: "cluster.local.", Qtype: dns.TypeNS, Rcode: dns.RcodeSuccess,
			Answer: []dns.RR{test.NS("cluster.local. 5 IN NS ns.dns.cluster.local.")},
			Extra:  []dns.RR{test.A("ns.dns.cluster.local. 5 IN A 198.51.100.53")}})
		check(t, o, test.Case{Qname: "ns.dns.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeSuccess,
			Answer: []dns.RR{test.A("ns.dns.cluster.local. 5 IN A 198.51.100.53")}})
		// When the address is an endpoint of a Service (kube-dns), the NS is that Service.
		o.idx.setService(svc("kube-dns", "testns", []string{"10.96.0.53"}, Port{Name: "dns", Protocol: "UDP", Port: 53}))
		o.idx.setSlice(slice("kube-dns-x", "testns", "kube-dns", []Port{{Name: "dns", Protocol: "UDP", Port: 53}}, Endpoint{Addr: parseAddress("198.51.100.53")}))
		o.idx.modified.Store(testSerial)
		check(t, o, test.Case{Qname: "cluster.local.", Qtype: dns.TypeNS, Rcode: dns.RcodeSuccess,
			Answer: []dns.RR{test.NS("cluster.local. 5 IN NS kube-dns.testns.svc.cluster.local.")},
			Extra:  []dns.RR{test.A("kube-dns.testns.svc.cluster.local. 5 IN A 10.96.0.53")}})
	})
}

func check(t *testing.T, o *Outpost, tc test.Case) {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := o.ServeDNS(context.Background(), rec, tc.Msg()); err != nil {
		t.Fatalf("%s: %v", tc.Qname, err)
	}
	if err := sortAndCheck(rec.Msg, tc); err != nil {
		t.Errorf("%s %s: %v", dns.TypeToString[tc.Qtype], tc.Qname, err)
	}
}

// sortAndCheck is test.SortAndCheck with the expected sections sorted the
// same way as the response, so that cases list records in reading order.
func sortAndCheck(resp *dns.Msg, tc test.Case) error {
	if resp == nil {
		return fmt.Errorf("no response written for %s", tc.Qname)
	}
	for _, rrs := range [][]dns.RR{tc.Answer, tc.Ns, tc.Extra} {
		sort.Sort(test.RRSet(rrs))
	}
	return test.SortAndCheck(resp, tc)
}

// newReply must build the message new(dns.Msg).SetRcode does, made
// authoritative, whatever the request's header.
func TestNewReplyIsSetRcode(t *testing.T) {
	for _, opcode := range []int{dns.OpcodeQuery, dns.OpcodeNotify} {
		for _, flags := range []struct{ rd, cd bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
			r := new(dns.Msg)
			r.SetQuestion("svc1.testns.svc.cluster.local.", dns.TypeA)
			r.Opcode, r.RecursionDesired, r.CheckingDisabled = opcode, flags.rd, flags.cd
			r.AuthenticatedData = true
			for _, rcode := range []int{dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeServerFailure} {
				want := new(dns.Msg).SetRcode(r, rcode)
				want.Authoritative = true
				if got := newReply(r, rcode); !reflect.DeepEqual(got, want) {
					t.Errorf("opcode %d rd=%v cd=%v rcode %d:\ngot  %v\nwant %v", opcode, flags.rd, flags.cd, rcode, got, want)
				}
			}
		}
	}
}
