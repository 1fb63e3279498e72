package outpost

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary query names and types to the handler: it must
// never panic, and always answer (or pass the query on). The seed corpus runs
// with every `go test`.
func FuzzServeDNS(f *testing.F) {
	long := ""
	for range 70 {
		long += "a"
	}
	for _, seed := range []struct {
		name  string
		qtype uint16
	}{
		{"svc1.testns.svc.cluster.local.", dns.TypeA},
		{"_http._tcp.hdls1.testns.svc.cluster.local.", dns.TypeSRV},
		{"10.0.96.10.in-addr.arpa.", dns.TypePTR},
		{"a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR},
		{"ext.testns.svc.cluster.local.", dns.TypeTXT},
		{"cluster.local.", dns.TypeNS},
		{"ns.dns.cluster.local.", dns.TypeAAAA},
		{".", dns.TypeA},
		{"", dns.TypeA},
		{"..cluster.local.", dns.TypeA},
		{"a\\.b.testns.svc.cluster.local.", dns.TypeA},
		{"\\000.\\255.svc.cluster.local.", dns.TypeSRV},
		{long + "." + long + ".svc.cluster.local.", dns.TypeA},
		{"_._.svc1.testns.svc.cluster.local.", dns.TypeSRV},
		{"999.999.999.999.in-addr.arpa.", dns.TypePTR},
		{"x.in-addr.arpa.", dns.TypeANY},
		{"svc1.testns.svc.cluster.local", dns.TypeA}, // not fully qualified
		{"cluster.local", dns.TypeSOA},
		{"svc1.testns.svc.cluster.local.", dns.TypeAXFR},
		{"svc1.testns.svc.cluster.local.", 65535},
	} {
		f.Add(seed.name, seed.qtype)
	}
	o := newTestOutpost(f)
	o.Next = test.NextHandler(dns.RcodeSuccess, nil)
	f.Fuzz(func(t *testing.T, name string, qtype uint16) {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		rcode, _ := o.ServeDNS(context.Background(), rec, m)
		if rec.Msg == nil && rcode == dns.RcodeSuccess && inZones(o, name) {
			t.Errorf("%q %d: success without a response", name, qtype)
		}
	})
}

// inZones reports whether name is in one of o's zones.
func inZones(o *Outpost, name string) bool {
	for _, z := range o.Zones {
		if dns.IsSubDomain(z, name) {
			return true
		}
	}
	return false
}
