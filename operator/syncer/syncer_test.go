package syncer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/outpost-dev/outpost/operator/syncer/conntrack"
	"github.com/outpost-dev/outpost/operator/syncer/iptablestest"
	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/rules"
)

func service(name, clusterIP string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Ports: ports},
	}
}

func tcpPort(name string, port int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Port: port, Protocol: v1.ProtocolTCP}
}

func slice(svc, name string, port string, portNum int32, addrs ...string) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discovery.LabelServiceName: svc}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To(port), Port: ptr.To(portNum), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, a := range addrs {
		// Pods of another node: a chain per Service port, none per
		// endpoint (the compact layout gives one only to an endpoint that
		// can call itself through this node, see TestHairpin in render).
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{Addresses: []string{a}, NodeName: ptr.To("node2")})
	}
	return s
}

func newTestSyncer(t *testing.T) (*Syncer, *ChangeTracker, *iptablestest.Fake) {
	t.Helper()
	tr := NewChangeTracker()
	fake := iptablestest.NewFake()
	s, err := New(tr, fake, Options{
		Families: []render.Config{{Prefix: "OUTPOST", NodeName: "node1", ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}},
		Log:      testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, tr, fake
}

func endpointsOf(t *testing.T, fake *iptablestest.Fake, dst string, port int) []string {
	t.Helper()
	tr := &iptablestest.Tracer{Tables: fake.Tables(false), Prefix: "OUTPOST"}
	res := tr.Trace(iptablestest.Packet{Src: netip.MustParseAddr("10.244.9.9"), Dst: netip.MustParseAddr(dst), Proto: "tcp", DPort: port})
	if eps := res.Endpoints(); len(eps) > 0 {
		return eps
	}
	return res.Verdicts()
}

func TestSyncPartialFullStaleCanary(t *testing.T) {
	ctx := context.Background()
	s, tr, fake := newTestSyncer(t)
	// A chain left behind by an earlier run, and someone else's chain.
	if err := fake.Restore(ctx, false, []byte("*nat\n:OUTPOST-SVC-AAAAAAAAAAAAAAAA - [0:0]\n:OTHER - [0:0]\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	// User story 1: two named ports of a selectorless Service with
	// operator-written slices.
	tr.SetService(service("svc1", "10.96.0.100", tcpPort("a", 7064), tcpPort("b", 7164)))
	tr.SetSlice(slice("svc1", "svc1-a", "a", 31496, "192.168.1.2"))
	tr.SetSlice(slice("svc1", "svc1-b", "b", 31337, "192.168.1.2"))
	tr.SetService(service("web", "10.96.0.20", tcpPort("", 80)))
	tr.SetSlice(slice("web", "web-1", "", 8080, "10.244.1.1", "10.244.1.2"))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !s.LastSync.Full {
		t.Error("first sync must be full")
	}
	tables := fake.Tables(false)
	if _, ok := tables["nat"]["OUTPOST-SVC-AAAAAAAAAAAAAAAA"]; ok {
		t.Error("stale chain not deleted on full sync")
	}
	if _, ok := tables["nat"]["OTHER"]; !ok {
		t.Error("a chain that is not ours was deleted")
	}
	if len(fake.Jumps) == 0 {
		t.Error("full sync did not ensure the jumps from built-in chains")
	}
	if got := endpointsOf(t, fake, "10.96.0.100", 7064); !slices.Equal(got, []string{"192.168.1.2:31496"}) {
		t.Errorf("svc1:7064 -> %v", got)
	}
	if got := endpointsOf(t, fake, "10.96.0.100", 7164); !slices.Equal(got, []string{"192.168.1.2:31337"}) {
		t.Errorf("svc1:7164 -> %v", got)
	}

	// One endpoint removed: a partial sync rewriting one chain.
	tr.SetSlice(slice("web", "web-1", "", 8080, "10.244.1.1"))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if s.LastSync.Full || s.LastSync.ChainsWritten != 1 || s.LastSync.ChainsDeleted != 0 {
		t.Errorf("one-endpoint change: %+v, want a partial sync of one chain", s.LastSync)
	}
	if !strings.Contains(string(fake.Last()), "OUTPOST-SVC-") || strings.Contains(string(fake.Last()), ":OUTPOST-SERVICES") {
		t.Errorf("partial sync input:\n%s", fake.Last())
	}
	if got := endpointsOf(t, fake, "10.96.0.20", 80); !slices.Equal(got, []string{"10.244.1.1:8080"}) {
		t.Errorf("web -> %v", got)
	}

	// No endpoints left: REJECT, the service chain is deleted.
	tr.DeleteSlice(slice("web", "web-1", "", 8080))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := endpointsOf(t, fake, "10.96.0.20", 80); !slices.Equal(got, []string{"REJECT"}) {
		t.Errorf("web without endpoints -> %v", got)
	}
	if s.LastSync.ChainsDeleted != 1 {
		t.Errorf("service chain not deleted: %+v", s.LastSync)
	}

	// Nothing changed: no restore at all.
	n := len(fake.Inputs)
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if len(fake.Inputs) != n {
		t.Errorf("idle sync ran iptables-restore:\n%s", fake.Last())
	}

	// Someone flushes the nat table: the canary notices, a full sync heals.
	if !s.canaryOK(ctx) {
		t.Fatal("canary missing before flush")
	}
	fake.Flush(false, rules.NAT)
	if s.canaryOK(ctx) {
		t.Fatal("flushed table not detected")
	}
	if err := s.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := endpointsOf(t, fake, "10.96.0.100", 7064); !slices.Equal(got, []string{"192.168.1.2:31496"}) {
		t.Errorf("after flush and resync svc1 -> %v", got)
	}
}

func TestFailedRestoreKeepsRulesAndRetriesFull(t *testing.T) {
	ctx := context.Background()
	s, tr, fake := newTestSyncer(t)
	tr.SetService(service("web", "10.96.0.20", tcpPort("", 80)))
	tr.SetSlice(slice("web", "web-1", "", 8080, "10.244.1.1"))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	tr.SetSlice(slice("web", "web-1", "", 8080, "10.244.1.2"))
	fake.FailNext = errors.New("iptables-restore: line 3 failed")
	if err := s.Sync(ctx, false); err == nil {
		t.Fatal("failed restore not reported")
	}
	if got := endpointsOf(t, fake, "10.96.0.20", 80); !slices.Equal(got, []string{"10.244.1.1:8080"}) {
		t.Errorf("after failure the previous rules must stay: %v", got)
	}
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !s.LastSync.Full {
		t.Error("the retry after a failure must be a full sync")
	}
	if got := endpointsOf(t, fake, "10.96.0.20", 80); !slices.Equal(got, []string{"10.244.1.2:8080"}) {
		t.Errorf("after retry: %v", got)
	}
}

func TestInvalidServiceSkippedOthersApplied(t *testing.T) {
	ctx := context.Background()
	s, tr, fake := newTestSyncer(t)
	rec := record.NewFakeRecorder(10)
	s.opts.Recorder = rec
	bad := service("bad", "10.96.0.30", tcpPort("", 80))
	bad.Spec.ExternalIPs = []string{"198.51.100.300"}
	tr.SetService(bad)
	tr.SetSlice(slice("bad", "bad-1", "", 80, "10.244.1.3"))
	tr.SetService(service("web", "10.96.0.20", tcpPort("", 80)))
	tr.SetSlice(slice("web", "web-1", "", 8080, "10.244.1.1"))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatalf("one bad service broke the sync: %v", err)
	}
	if got := endpointsOf(t, fake, "10.96.0.20", 80); !slices.Equal(got, []string{"10.244.1.1:8080"}) {
		t.Errorf("good service -> %v", got)
	}
	if got := endpointsOf(t, fake, "10.96.0.30", 80); !slices.Equal(got, []string{"ACCEPT"}) {
		t.Errorf("bad service must have no rules, got %v", got)
	}
	select {
	case ev := <-rec.Events:
		if !strings.Contains(ev, "InvalidAddress") || !strings.Contains(ev, "spec.externalIPs[0]") {
			t.Errorf("event %q does not name the field", ev)
		}
	default:
		t.Error("no Event for the skipped Service")
	}
}

func TestServicePortsConversion(t *testing.T) {
	headless := service("h", "None", tcpPort("", 80))
	ext := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "d"}, Spec: v1.ServiceSpec{Type: v1.ServiceTypeExternalName, ExternalName: "db.example.org"}}
	for _, svc := range []*v1.Service{headless, ext} {
		if ports, err := ServicePorts(svc, false); err != nil || len(ports) != 0 {
			t.Errorf("%s: got %v, %v; headless and ExternalName services have no rules", svc.Name, ports, err)
		}
	}
	dual := service("dual", "10.96.0.5", tcpPort("http", 80), v1.ServicePort{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP})
	dual.Spec.ClusterIPs = []string{"10.96.0.5", "fd00:10:96::5"}
	dual.Spec.Type = v1.ServiceTypeLoadBalancer
	dual.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	dual.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	dual.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.5"}, {IP: "203.0.113.6", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)}}
	v4, err := ServicePorts(dual, false)
	if err != nil || len(v4) != 2 {
		t.Fatalf("v4: %v %v", v4, err)
	}
	if v4[0].ClusterIP.String() != "10.96.0.5" || v4[1].Protocol != "udp" || !v4[0].ExternalPolicyLocal || v4[0].AffinitySeconds != 10800 {
		t.Errorf("v4 port: %+v", v4[0])
	}
	if len(v4[0].LoadBalancerIPs) != 1 || v4[0].LoadBalancerIPs[0].String() != "203.0.113.5" {
		t.Errorf("LB IPs %v: proxy-mode ingress must be skipped", v4[0].LoadBalancerIPs)
	}
	v6, err := ServicePorts(dual, true)
	if err != nil || len(v6) != 2 || v6[0].ClusterIP.String() != "fd00:10:96::5" || len(v6[0].LoadBalancerIPs) != 0 {
		t.Errorf("v6: %+v %v", v6, err)
	}
}

func TestEndpointsFromSlices(t *testing.T) {
	sp := render.ServicePort{PortName: "a", Protocol: "tcp"}
	s1 := slice("svc1", "s1", "a", 80, "10.244.0.2", "10.244.0.1")
	s1.Endpoints[0].Conditions = discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
	s1.Endpoints[1].NodeName = ptr.To("node1")
	s2 := slice("svc1", "s2", "a", 80, "10.244.0.1") // duplicate across slices
	other := slice("svc1", "s3", "b", 81, "10.244.0.3")
	eps := Endpoints(&sp, []*discovery.EndpointSlice{s1, s2, other}, false)
	if len(eps) != 2 || eps[0].String() != "10.244.0.1:80" || eps[0].NodeName != "node1" || !eps[0].Ready {
		t.Fatalf("endpoints %+v", eps)
	}
	if eps[1].Ready || !eps[1].Serving || !eps[1].Terminating {
		t.Errorf("conditions lost: %+v", eps[1])
	}
}

// TestPartialSyncsConvergeToFullSync applies a series of changes with
// partial syncs and checks that the kernel (fake) ends up with exactly the
// rules a fresh full sync of the same state writes.
func TestPartialSyncsConvergeToFullSync(t *testing.T) {
	ctx := context.Background()
	s, tr, fake := newTestSyncer(t)
	for i := 0; i < 60; i++ {
		tr.SetService(service(fmt.Sprintf("s%d", i), fmt.Sprintf("10.96.1.%d", i+1), tcpPort("", 80)))
		tr.SetSlice(slice(fmt.Sprintf("s%d", i), fmt.Sprintf("s%d-1", i), "", 8080, fmt.Sprintf("10.244.1.%d", i+1), fmt.Sprintf("10.244.2.%d", i+1)))
	}
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	for step := 0; step < 30; step++ {
		i := (step * 7) % 60
		name := fmt.Sprintf("s%d", i)
		switch step % 4 {
		case 0: // endpoint removed
			tr.SetSlice(slice(name, name+"-1", "", 8080, fmt.Sprintf("10.244.1.%d", i+1)))
		case 1: // service removed
			tr.DeleteService("default", name)
		case 2: // new service
			tr.SetService(service(fmt.Sprintf("n%d", step), fmt.Sprintf("10.96.2.%d", step+1), tcpPort("", 81)))
			tr.SetSlice(slice(fmt.Sprintf("n%d", step), fmt.Sprintf("n%d-1", step), "", 9090, fmt.Sprintf("10.244.3.%d", step+1)))
		case 3: // all endpoints gone
			tr.DeleteSlice(slice(name, name+"-1", "", 8080))
		}
		if err := s.Sync(ctx, false); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if s.LastSync.Full {
			t.Fatalf("step %d was a full sync", step)
		}
		fresh := iptablestest.NewFake()
		s2, err := New(tr, fresh, Options{Families: s.opts.Families, Log: s.opts.Log})
		if err != nil {
			t.Fatal(err)
		}
		tr.mu.Lock()
		saved := tr.dirty
		tr.dirty = map[types.NamespacedName]bool{}
		tr.mu.Unlock()
		if err := s2.Sync(ctx, true); err != nil {
			t.Fatal(err)
		}
		tr.mu.Lock()
		tr.dirty = saved
		tr.mu.Unlock()
		if !reflect.DeepEqual(fake.Tables(false), fresh.Tables(false)) {
			t.Fatalf("step %d: partial syncs diverged from a full sync", step)
		}
	}
}

func TestRefusedServiceKeepsItsLastRulesAndTheRestIsApplied(t *testing.T) {
	ctx := context.Background()
	s, tr, fake := newTestSyncer(t)
	rec := record.NewFakeRecorder(10)
	s.opts.Recorder = rec
	tr.SetService(service("web", "10.96.0.20", tcpPort("", 80)))
	tr.SetSlice(slice("web", "web-1", "", 8080, "10.244.1.1"))
	tr.SetService(service("bad", "10.96.0.30", tcpPort("", 80)))
	tr.SetSlice(slice("bad", "bad-1", "", 8080, "10.244.2.1"))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	// The kernel now refuses any rule to bad's new endpoint.
	fake.Refuse = func(input []byte) error {
		if strings.Contains(string(input), "10.244.2.2:8080") {
			return errors.New("iptables-restore: line 7 failed")
		}
		return nil
	}
	tr.SetSlice(slice("bad", "bad-1", "", 8080, "10.244.2.2"))
	tr.SetSlice(slice("web", "web-1", "", 8080, "10.244.1.2"))
	if err := s.Sync(ctx, true); err != nil {
		t.Fatalf("a refused Service failed the sync of the others: %v", err)
	}
	if got := endpointsOf(t, fake, "10.96.0.20", 80); !slices.Equal(got, []string{"10.244.1.2:8080"}) {
		t.Errorf("web -> %v, want its new endpoint", got)
	}
	if got := endpointsOf(t, fake, "10.96.0.30", 80); !slices.Equal(got, []string{"10.244.2.1:8080"}) {
		t.Errorf("refused bad -> %v, want the endpoint last accepted", got)
	}
	select {
	case e := <-rec.Events:
		if !strings.Contains(e, "RulesRefused") {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no RulesRefused Event")
	}
	// Once the Service changes to something the kernel takes, it is applied.
	tr.SetSlice(slice("bad", "bad-1", "", 8080, "10.244.2.3"))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := endpointsOf(t, fake, "10.96.0.30", 80); !slices.Equal(got, []string{"10.244.2.3:8080"}) {
		t.Errorf("bad after its next change -> %v", got)
	}
}

func TestFailureOfEveryRestoreIsNotBlamedOnAService(t *testing.T) {
	ctx := context.Background()
	s, tr, fake := newTestSyncer(t)
	tr.SetService(service("web", "10.96.0.20", tcpPort("", 80)))
	tr.SetSlice(slice("web", "web-1", "", 8080, "10.244.1.1"))
	fake.Refuse = func([]byte) error { return errors.New("xtables lock held") }
	if err := s.Sync(ctx, false); err == nil {
		t.Fatal("sync succeeded with every restore failing")
	}
	fake.Refuse = nil
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := endpointsOf(t, fake, "10.96.0.20", 80); !slices.Equal(got, []string{"10.244.1.1:8080"}) {
		t.Errorf("web -> %v after the fault ended", got)
	}
}

func TestCanarySeesFlushedRules(t *testing.T) {
	ctx := context.Background()
	s, tr, fake := newTestSyncer(t)
	tr.SetService(service("web", "10.96.0.20", tcpPort("", 80)))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !s.canaryOK(ctx) {
		t.Fatal("canary alarm right after a sync")
	}
	fake.FlushRules(false, rules.NAT) // iptables -t nat -F: chains stay
	if s.canaryOK(ctx) {
		t.Error("canary missed iptables -t nat -F")
	}
}

func TestRetryBackoffDoublesUpToTheCap(t *testing.T) {
	s, _, _ := newTestSyncer(t)
	s.opts.MinSyncPeriod, s.opts.MaxRetryDelay = time.Second, 10*time.Second
	b := s.retryBackoff()
	var got []time.Duration
	for range 6 {
		got = append(got, b.Step().Round(time.Second))
	}
	// 10% jitter rounds away at these sizes only below the cap.
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if lo, hi := want[i]*time.Second, want[i]*time.Second*11/10+time.Second/2; got[i] < lo || got[i] > hi {
			t.Errorf("retry %d after %s, want %s (+10%%)", i+1, got[i], want[i]*time.Second)
		}
	}
}

// fakeConntrack records what the syncer asks to delete.
type fakeConntrack struct{ calls []conntrack.Targets }

func (f *fakeConntrack) DeleteStale(_ bool, t conntrack.Targets) (int, error) {
	f.calls = append(f.calls, maps.Clone(t))
	return len(t), nil
}

func TestConntrackCleanedAfterTheRulesAreApplied(t *testing.T) {
	ctx := context.Background()
	s, tr, fake := newTestSyncer(t)
	ct := &fakeConntrack{}
	s.opts.Conntrack = ct
	udp := v1.ServicePort{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP}
	udpSlice := func(addrs ...string) *discovery.EndpointSlice {
		sl := slice("dns", "dns-1", "dns", 5353, addrs...)
		sl.Ports[0].Protocol = ptr.To(v1.ProtocolUDP)
		return sl
	}
	tr.SetService(service("dns", "10.96.0.10", udp))
	tr.SetSlice(udpSlice("10.244.1.1", "10.244.1.2"))
	tr.SetService(service("web", "10.96.0.20", tcpPort("", 80)))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if len(ct.calls) != 1 || len(ct.calls[0]) != 1 {
		t.Fatalf("first sync (past unknown) cleaned %v, want the UDP cluster IP only", ct.calls)
	}
	// An endpoint added: nothing can be stale.
	tr.SetSlice(udpSlice("10.244.1.1", "10.244.1.2", "10.244.1.3"))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if len(ct.calls) != 1 {
		t.Errorf("adding an endpoint cleaned conntrack: %v", ct.calls[1:])
	}
	// An endpoint removed, but the restore fails: no cleanup until the
	// rules are in.
	tr.SetSlice(udpSlice("10.244.1.2", "10.244.1.3"))
	fake.FailNext = errors.New("restore failed")
	if err := s.Sync(ctx, false); err == nil {
		t.Fatal("sync succeeded")
	}
	if len(ct.calls) != 1 {
		t.Fatal("conntrack cleaned although the rules were not applied")
	}
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if len(ct.calls) != 2 {
		t.Fatalf("no cleanup after the removal was applied: %v", ct.calls)
	}
	removed := conntrack.Flow{Proto: 17, OrigDst: netip.MustParseAddrPort("10.96.0.10:53"), ReplySrc: netip.MustParseAddrPort("10.244.1.1:5353")}
	kept := conntrack.Flow{Proto: 17, OrigDst: netip.MustParseAddrPort("10.96.0.10:53"), ReplySrc: netip.MustParseAddrPort("10.244.1.2:5353")}
	if !ct.calls[1].Stale(removed) || ct.calls[1].Stale(kept) {
		t.Errorf("cleanup targets %v: want the removed endpoint's flows only", ct.calls[1])
	}
}

// A slice whose kubernetes.io/service-name label moves to another Service
// (or goes) leaves the old Service's rules in the same sync: nothing of it
// stays behind there.
func TestSliceRelabelledLeavesTheOldService(t *testing.T) {
	ctx := context.Background()
	s, tr, fake := newTestSyncer(t)
	tr.SetService(service("web", "10.96.0.20", tcpPort("", 80)))
	tr.SetService(service("api", "10.96.0.30", tcpPort("", 80)))
	tr.SetSlice(slice("web", "shared-1", "", 8080, "10.244.1.1"))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := endpointsOf(t, fake, "10.96.0.20", 80); !slices.Equal(got, []string{"10.244.1.1:8080"}) {
		t.Fatalf("web -> %v", got)
	}

	tr.SetSlice(slice("api", "shared-1", "", 8080, "10.244.1.1"))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := endpointsOf(t, fake, "10.96.0.20", 80); !slices.Equal(got, []string{"REJECT"}) {
		t.Errorf("web after its slice was relabelled to api -> %v, want REJECT", got)
	}
	if got := endpointsOf(t, fake, "10.96.0.30", 80); !slices.Equal(got, []string{"10.244.1.1:8080"}) {
		t.Errorf("api -> %v", got)
	}

	unlabelled := slice("api", "shared-1", "", 8080, "10.244.1.1")
	delete(unlabelled.Labels, discovery.LabelServiceName)
	tr.SetSlice(unlabelled)
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := endpointsOf(t, fake, "10.96.0.30", 80); !slices.Equal(got, []string{"REJECT"}) {
		t.Errorf("api after the label was removed -> %v, want REJECT", got)
	}
	// Deleted with a label the tracker never saw: still gone from where it was.
	tr.SetSlice(slice("web", "shared-1", "", 8080, "10.244.1.1"))
	tr.DeleteSlice(slice("api", "shared-1", "", 8080))
	if err := s.Sync(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := endpointsOf(t, fake, "10.96.0.20", 80); !slices.Equal(got, []string{"REJECT"}) {
		t.Errorf("web after its slice was deleted -> %v, want REJECT", got)
	}
}
