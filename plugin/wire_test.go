package outpost

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// captureWriter keeps what the plugin writes, as a message or as bytes.
type captureWriter struct {
	test.ResponseWriter
	msg  *dns.Msg
	wire []byte
}

func (c *captureWriter) WriteMsg(m *dns.Msg) error { c.msg = m; return nil }
func (c *captureWriter) Write(b []byte) (int, error) {
	c.wire = append([]byte(nil), b...)
	return len(b), nil
}

// TestWireMatchesMsg checks that the pre-packed responses decode to exactly
// what the dns.Msg path writes, for every shape the fast path takes.
func TestWireMatchesMsg(t *testing.T) {
	o := newTestOutpost(t)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"svc1.testns.svc.cluster.local.", dns.TypeA},
		{"SVC1.testNS.svc.Cluster.LOCAL.", dns.TypeAAAA},
		{"hdls1.testns.svc.cluster.local.", dns.TypeA},
		{"nosuch.testns.svc.cluster.local.", dns.TypeA},
		{"Nosuch.testns.svc.Cluster.local.", dns.TypeAAAA},
		{"nopods.testns.svc.cluster.local.", dns.TypeAAAA},
		{"cluster.local.", dns.TypeA},
		{"testns.svc.cluster.local.", dns.TypeMX},
		{"99.100.51.198.in-addr.arpa.", dns.TypePTR},
	} {
		req := new(dns.Msg)
		req.SetQuestion(q.name, q.qtype)
		req.Id = 4242
		req.CheckingDisabled = true

		slow := &captureWriter{}
		o.ServeDNS(context.Background(), slow, req)
		fast := &captureWriter{}
		o.ServeDNS(context.Background(), request.NewScrubWriter(req, fast), req)
		if fast.wire == nil {
			t.Errorf("%s %s: fast path not taken", q.name, dns.TypeToString[q.qtype])
			continue
		}
		got := new(dns.Msg)
		if err := got.Unpack(fast.wire); err != nil {
			t.Fatalf("%s: unpack: %v", q.name, err)
		}
		if got.String() != slow.msg.String() {
			t.Errorf("%s %s:\nwire:\n%s\nmsg:\n%s", q.name, dns.TypeToString[q.qtype], got, slow.msg)
		}
	}
}

// TestWireFallsBack checks the cases the fast path must leave to WriteMsg.
func TestWireFallsBack(t *testing.T) {
	o := newTestOutpost(t)
	edns := new(dns.Msg)
	edns.SetQuestion("svc1.testns.svc.cluster.local.", dns.TypeA)
	edns.SetEdns0(1232, true)
	srv := new(dns.Msg)
	srv.SetQuestion("_http._tcp.svc1.testns.svc.cluster.local.", dns.TypeSRV)
	cname := new(dns.Msg)
	cname.SetQuestion("ext.testns.svc.cluster.local.", dns.TypeA)
	for _, req := range []*dns.Msg{edns, srv, cname} {
		w := &captureWriter{}
		o.ServeDNS(context.Background(), request.NewScrubWriter(req, w), req)
		if w.wire != nil || w.msg == nil {
			t.Errorf("%s %s: want the dns.Msg path", req.Question[0].Name, dns.TypeToString[req.Question[0].Qtype])
		}
	}
}
