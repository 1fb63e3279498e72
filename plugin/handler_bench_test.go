package outpost

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// BenchmarkServeDNS measures the handler alone over 10,000 Services (10%
// headless, 5 endpoints each) with the query mix of `make bench-dns`, under
// the writers a query meets in CoreDNS:
//   - bare: the server's ScrubWriter only, as in a server block with no
//     other plugin (the pre-packed path);
//   - wrapped: prometheus' recorder around it, as in the shipped
//     Corefile.example: outpost must hand over a *dns.Msg, which the
//     recorder reads and the server scrubs and packs. cache and loadbalance
//     wrap the same way and see the same message.
//
// The side-by-side comparison with the kubernetes plugin is `make bench-dns`
// (the kubernetes plugin cannot be fed without an API server).
func BenchmarkServeDNS(b *testing.B) {
	o, msgs := benchmarkIndex()
	conn := &packingWriter{}
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		writer func(r *dns.Msg) dns.ResponseWriter
	}{
		{"bare", func(r *dns.Msg) dns.ResponseWriter { return request.NewScrubWriter(r, conn) }},
		{"wrapped", func(r *dns.Msg) dns.ResponseWriter { return metrics.NewRecorder(request.NewScrubWriter(r, conn)) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r := msgs[i%len(msgs)]
				o.ServeDNS(ctx, bc.writer(r), r)
			}
		})
	}
}

// packingWriter packs what is written as the server's writer does before
// it sends a message, and discards the bytes. Its addresses are fixed:
// test.ResponseWriter parses them on every call, which would dwarf the
// handler.
type packingWriter struct{ test.ResponseWriter }

var (
	benchClient = &net.UDPAddr{IP: net.IPv4(10, 240, 0, 1), Port: 40212}
	benchServer = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
)

func (w *packingWriter) RemoteAddr() net.Addr { return benchClient }
func (w *packingWriter) LocalAddr() net.Addr  { return benchServer }

func (w *packingWriter) WriteMsg(m *dns.Msg) error {
	_, err := m.Pack()
	return err
}

// benchmarkIndex is `make bench-dns`'s cluster in an index, and 1,000
// queries of its mix.
func benchmarkIndex() (*Outpost, []*dns.Msg) {
	o := New([]string{"cluster.local.", "in-addr.arpa."})
	var (
		services []*Service
		slices   []*EndpointSlice
	)
	for i := range 10000 {
		name, ns := fmt.Sprintf("svc-%05d", i), fmt.Sprintf("bench-%d", i%10)
		ip := []string{fmt.Sprintf("10.96.%d.%d", i>>8, i&255)}
		if i%10 == 0 {
			ip = []string{"None"}
		}
		services = append(services, svc(name, ns, ip, httpPort))
		var eps []Endpoint
		for j := range 5 {
			k := i*5 + j
			eps = append(eps, Endpoint{Addr: parseAddress(fmt.Sprintf("192.168.%d.%d", (k>>8)&255, k&255))})
		}
		slices = append(slices, slice(name+"-x", ns, name, []Port{httpPort}, eps...))
	}
	var nss []string
	for i := range 10 {
		nss = append(nss, fmt.Sprintf("bench-%d", i))
	}
	o.idx.replace(services, slices, nss)
	o.informersSynced.Store(true)

	var msgs []*dns.Msg
	for i := range 1000 {
		m := new(dns.Msg)
		name := fmt.Sprintf("svc-%05d.bench-%d.svc.cluster.local.", i, i%10)
		switch i % 20 {
		case 16:
			m.SetQuestion("_http._tcp."+name, dns.TypeSRV)
		case 17:
			m.SetQuestion(name, dns.TypeAAAA)
		case 18, 19:
			m.SetQuestion("nosuch."+name[len("svc-00000."):], dns.TypeA)
		default: // A, every 10th name headless
			m.SetQuestion(name, dns.TypeA)
		}
		msgs = append(msgs, m)
	}
	return o, msgs
}
