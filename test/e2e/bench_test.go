package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/poll"
)

// benchBackends is how many backends one round applies, one after another.
const benchBackends = 100

// The bench backends all stand for story 5's database machine.
const (
	benchIP   = "203.0.113.10"
	benchPort = 3306
)

// BenchmarkApplyToTraffic measures, for 100 backends applied one after the
// other, the time from the create call to (a) a DNS answer from CoreDNS
// and (b) a TCP connection through that answer's ClusterIP reaching the
// real server, through the whole chain: API server, operator, plugin,
// syncer, iptables in the node namespace. The reference beside it writes
// the Service and EndpointSlice directly (what the operator would write),
// so the difference is the operator's share.
//
// Run it with `make bench-e2e`. The syncer runs with --min-sync-period
// 100ms.
func BenchmarkApplyToTraffic(b *testing.B) {
	w := newWorld(b, map[string][]int{benchIP: {benchPort}})
	server := net.JoinHostPort(benchIP, fmt.Sprint(benchPort))
	applyExternalBackend := func(name string) error {
		return w.client.Create(ctx(), &v1alpha1.ExternalBackend{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: v1alpha1.ExternalBackendSpec{
				Addresses: []string{benchIP},
				Ports:     []v1alpha1.BackendPort{{Port: benchPort}},
			},
		})
	}
	// The parts start concurrently: one backend working end to end, not
	// measured, says every informer has synced and the figures are those
	// of a running system rather than of its start-up.
	if err := applyExternalBackend("warm-up"); err != nil {
		b.Fatal(err)
	}
	w.pollConnect(b, net.JoinHostPort(w.pollDNS(b, "warm-up"), fmt.Sprint(benchPort)), server)

	b.Run("ExternalBackend", func(b *testing.B) {
		w.measure(b, "xb", server, applyExternalBackend)
	})
	b.Run("reference=Service+EndpointSlice", func(b *testing.B) {
		w.measure(b, "ref", server, func(name string) error {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: benchPort}}},
			}
			if _, err := w.kube.CoreV1().Services("default").Create(ctx(), svc, metav1.CreateOptions{}); err != nil {
				return err
			}
			slice := &discovery.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
					Labels: map[string]string{discovery.LabelServiceName: name, discovery.LabelManagedBy: "e2e-bench"}},
				AddressType: discovery.AddressTypeIPv4,
				Ports:       []discovery.EndpointPort{{Name: ptr.To(""), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](benchPort)}},
				Endpoints:   []discovery.Endpoint{{Addresses: []string{benchIP}, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}}},
			}
			_, err := w.kube.DiscoveryV1().EndpointSlices("default").Create(ctx(), slice, metav1.CreateOptions{})
			return err
		})
	})
}

// measure applies benchBackends backends per b.N round with apply and
// reports the percentiles of apply-to-DNS and apply-to-connection times.
func (w *world) measure(b *testing.B, prefix, server string, apply func(name string) error) {
	var toDNS, toConn []time.Duration
	slowest, slowestName := time.Duration(0), ""
	for round := range b.N {
		for i := range benchBackends {
			name := fmt.Sprintf("%s-%d-%d", prefix, round, i)
			start := time.Now()
			if err := apply(name); err != nil {
				b.Fatalf("apply %s: %v", name, err)
			}
			ip := w.pollDNS(b, name)
			toDNS = append(toDNS, time.Since(start))
			w.pollConnect(b, net.JoinHostPort(ip, fmt.Sprint(benchPort)), server)
			toConn = append(toConn, time.Since(start))
			if d := toConn[len(toConn)-1]; d > slowest {
				slowest, slowestName = d, name
			}
		}
	}
	slices.Sort(toDNS)
	slices.Sort(toConn)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(toDNS, 50)), "p50-dns-ms")
	b.ReportMetric(ms(percentile(toDNS, 99)), "p99-dns-ms")
	b.ReportMetric(ms(percentile(toConn, 50)), "p50-conn-ms")
	b.ReportMetric(ms(percentile(toConn, 99)), "p99-conn-ms")
	b.ReportMetric(ms(toConn[len(toConn)-1]), "max-conn-ms")
	b.ReportMetric(0, "ns/op") // one op is a whole round: its time says nothing
	b.Logf("%d backends: apply->DNS p50 %v p99 %v; apply->connection p50 %v p99 %v max %v",
		len(toConn), percentile(toDNS, 50), percentile(toDNS, 99), percentile(toConn, 50), percentile(toConn, 99), toConn[len(toConn)-1])
	b.Logf("slowest: %s (%v)", slowestName, slowest)
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100
	return sorted[max(rank, 1)-1]
}

// benchPollInterval is a millisecond: the figures are latencies, and a
// coarser poll would add to them.
const benchPollInterval = time.Millisecond

// pollDNS asks CoreDNS for name's A record until it answers; the answer is
// the ClusterIP a client would connect to.
func (w *world) pollDNS(b testing.TB, name string) string {
	var addr string
	if err := poll.Until(context.Background(), benchPollInterval, 30*time.Second, name+": a DNS answer", func() error {
		addrs, err := w.addresses(serviceName(name))
		if err == nil {
			addr = addrs[0]
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return addr
}

// pollConnect connects from the client until the server answers. Before
// the syncer knows the Service its packets are dropped (the short dial
// timeout bounds that wait); before it knows the endpoints they are
// rejected.
func (w *world) pollConnect(b testing.TB, addr, server string) {
	var reached string
	if err := poll.Until(context.Background(), benchPollInterval, 30*time.Second, addr+": a connection", func() error {
		r, err := w.connect(addr, 25*time.Millisecond)
		reached = r.server
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if reached != server {
		b.Fatalf("%s reached %s, want %s", addr, reached, server)
	}
}
