package outpost

import (
	"context"
	"fmt"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// BenchmarkServeDNS measures the handler alone over 10,000 Services (10%
// headless, 5 endpoints each) with the query mix of `make bench-dns`. The
// side-by-side comparison with the kubernetes plugin is `make bench-dns`
// (the kubernetes plugin cannot be fed without an API server).
func BenchmarkServeDNS(b *testing.B) {
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
		switch i % 10 {
		case 0, 1, 2, 3, 4, 5, 6:
			m.SetQuestion(name, dns.TypeA)
		case 7:
			m.SetQuestion("_http._tcp."+name, dns.TypeSRV)
		case 8:
			m.SetQuestion(name, dns.TypeAAAA)
		default:
			m.SetQuestion("nosuch."+name[len("svc-00000."):], dns.TypeA)
		}
		msgs = append(msgs, m)
	}
	w := &test.ResponseWriter{}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rec := dnstest.NewRecorder(w)
		o.ServeDNS(ctx, rec, msgs[i%len(msgs)])
	}
}
