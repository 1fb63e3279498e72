package outpost

import (
	"context"
	"encoding/json"
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

// FuzzDecodeSnapshot feeds arbitrary files to the snapshot decoder: it must
// never panic, and what it keeps must load into an index, answer queries
// and survive being written and read back. The seeds are the damage a
// snapshot meets: truncation, nulls, wrong types, huge values.
func FuzzDecodeSnapshot(f *testing.F) {
	for _, seed := range []string{
		validSnapshot,
		validSnapshot[:len(validSnapshot)/2],
		"",
		"null",
		`{"version":1,"services":[null],"endpointSlices":[null],"namespaces":[null]}`,
		`{"version":1,"services":{},"endpointSlices":"x","namespaces":7}`,
		`{"version":1,"services":[{"name":5}],"endpointSlices":[{"endpoints":"x"}]}`,
		`{"version":1e300,"written":"9999-12-31T23:59:59Z"}`,
		snapshotJSON(`{"name":"web","namespace":"ns","clusterIPs":["10.96.0.1","fd00::1"],"ports":[{"port":2147483647}]}`, `{"name":"s","namespace":"ns","service":"web","endpoints":[{"ip":"::ffff:1.2.3.4","hostname":"h"}]}`, `"ns"`),
		snapshotJSON(validService+","+validService, validSlice+","+validSlice, validNamespace+","+validNamespace),
		snapshotJSON(`{"name":"web","namespace":"ns","isExternal":true,"externalName":"a.example."}`, "", `"ns"`),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeSnapshot(data, snapshotTime, 0)
		if err != nil {
			return
		}
		o := New([]string{"cluster.local.", "in-addr.arpa."})
		o.upstream = testUpstream{}
		o.idx.replace(s.services, s.slices, s.namespaces)
		o.fromSnapshot.Store(true)
		for _, v := range s.services {
			answer(t, o, v.Name+"."+v.Namespace+".svc.cluster.local.", dns.TypeA)
			answer(t, o, v.Name+"."+v.Namespace+".svc.cluster.local.", dns.TypeSRV)
		}
		for _, e := range s.slices {
			for i := range e.Endpoints {
				if r, err := dns.ReverseAddr(e.Endpoints[i].Addr.String()); err == nil {
					answer(t, o, r, dns.TypePTR)
				}
			}
		}
		services, slices, namespaces, _ := o.idx.contents()
		again, err := json.Marshal(snapshotFile{Version: snapshotVersion, Services: services, Slices: slices, Namespaces: namespaces})
		if err != nil {
			t.Fatalf("encode what was decoded: %v", err)
		}
		back, err := decodeSnapshot(again, snapshotTime, 0)
		if err != nil || len(back.skipped) > 0 {
			t.Fatalf("what was kept does not read back: %v, skipped %q\n%s", err, back.skipped, again)
		}
	})
}
