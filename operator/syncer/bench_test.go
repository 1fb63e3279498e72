package syncer

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/restore"
)

// BenchmarkFullSync measures a first (full) sync of 10k services with 10
// endpoints each, rendering only (the restore input goes to a fake that
// keeps nothing). kube-proxy's side of this comparison is in
// hack/bench-syncer (make bench-syncer).
func BenchmarkFullSync(b *testing.B) {
	tr, _ := benchTracker()
	b.ResetTimer()
	for range b.N {
		s, err := New(tr, discard{restore.NewFake()}, Options{Log: logr.Discard(), Families: []render.Config{{Prefix: "OUTPOST", NodeName: "node0",
			ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Sync(context.Background(), true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOneEndpointChange measures a partial sync after one endpoint of
// one of 10k services went away.
func BenchmarkOneEndpointChange(b *testing.B) {
	tr, slices := benchTracker()
	s, err := New(tr, discard{restore.NewFake()}, Options{Log: logr.Discard(), Families: []render.Config{{Prefix: "OUTPOST", NodeName: "node0",
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Sync(context.Background(), true); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		sl := slices[5000].DeepCopy()
		sl.Endpoints = sl.Endpoints[:9-i%2]
		tr.SetSlice(sl)
		if err := s.Sync(context.Background(), false); err != nil {
			b.Fatal(err)
		}
	}
}

func benchTracker() (*Tracker, []*discovery.EndpointSlice) {
	tr := NewTracker()
	var slices []*discovery.EndpointSlice
	ip := netip.MustParseAddr("10.128.0.0")
	for i := 0; i < 10000; i++ {
		name := fmt.Sprintf("svc%05d", i)
		cip := fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)
		tr.SetService(&v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
			Spec: v1.ServiceSpec{ClusterIP: cip, ClusterIPs: []string{cip}, Ports: []v1.ServicePort{{Name: "p80", Port: 80, Protocol: v1.ProtocolTCP}}}})
		s := &discovery.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name, Labels: map[string]string{discovery.LabelServiceName: name}},
			AddressType: discovery.AddressTypeIPv4,
			Ports:       []discovery.EndpointPort{{Name: ptr.To("p80"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}}}
		for j := 0; j < 10; j++ {
			ip = ip.Next()
			s.Endpoints = append(s.Endpoints, discovery.Endpoint{Addresses: []string{ip.String()}, NodeName: ptr.To(fmt.Sprintf("node%d", j))})
		}
		tr.SetSlice(s)
		slices = append(slices, s)
	}
	return tr, slices
}

type discard struct{ *restore.Fake }

func (discard) Restore(context.Context, bool, []byte) error { return nil }
