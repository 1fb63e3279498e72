package resolve

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
)

type harness struct {
	t         *testing.T
	srv       *dnsserver.Server
	refresher *Refresher

	mu    sync.Mutex
	notes map[types.NamespacedName]chan struct{} // one per owner, so waiting for one never eats another's
}

func (h *harness) notesOf(o types.NamespacedName) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.notes[o]
	if !ok {
		ch = make(chan struct{}, 1000)
		h.notes[o] = ch
	}
	return ch
}

func startRefresher(t *testing.T, timeout time.Duration) *harness {
	t.Helper()
	srv := dnsserver.Start(t)
	h := &harness{t: t, srv: srv, notes: map[types.NamespacedName]chan struct{}{}}
	tr, err := NewRefresher(Options{
		Resolver: newResolver(t, timeout, srv.Addr),
		Notify:   func(o types.NamespacedName) { h.notesOf(o) <- struct{}{} },
		Workers:  4,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.refresher = tr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return h
}

func owner(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "default", Name: name}
}

// waitFor waits for a notification for o after which the state of name
// satisfies cond, and returns that state.
func (h *harness) waitFor(o types.NamespacedName, name string, within time.Duration, what string, cond func(State) bool) State {
	h.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case <-h.notesOf(o):
			st, ok := h.refresher.Lookup(o, name)
			if ok && cond(st) {
				return st
			}
		case <-deadline:
			st, _ := h.refresher.Lookup(o, name)
			h.t.Fatalf("no notification with %s within %s; state %+v", what, within, st)
		}
	}
}

func (h *harness) ensure(o types.NamespacedName, spec Spec, names ...string) {
	h.t.Helper()
	if err := h.refresher.Ensure(o, names, spec); err != nil {
		h.t.Fatal(err)
	}
}

func hasAddrs(want ...string) func(State) bool {
	return func(s State) bool { return slices.Equal(s.Addrs(), addrs(want...)) }
}

// intervals returns the gaps between consecutive queries.
func intervals(qs []dnsserver.Query) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(qs); i++ {
		out = append(out, qs[i].At.Sub(qs[i-1].At))
	}
	return out
}

func checkIntervals(t *testing.T, what string, got []time.Duration, lo, hi time.Duration) {
	t.Helper()
	if len(got) < 2 {
		t.Fatalf("%s: only %d re-resolutions", what, len(got))
	}
	for _, d := range got {
		if d < lo || d > hi {
			t.Errorf("%s: re-resolved after %s, want within [%s, %s] (all: %v)", what, d, lo, hi, got)
		}
	}
}

func TestRefresherReresolvesOnTheRecordTTL(t *testing.T) {
	t.Parallel()
	h := startRefresher(t, time.Second)
	h.srv.SetA("ttl2.example.test", 2, "198.51.100.1")
	h.srv.SetA("ttl0.example.test", 0, "198.51.100.2")       // below minTTL
	h.srv.SetA("ttl3600.example.test", 3600, "198.51.100.3") // above maxTTL
	h.ensure(owner("honoured"), Spec{MinTTL: time.Second, MaxTTL: time.Minute}, "ttl2.example.test")
	h.ensure(owner("clamped"), Spec{MinTTL: 2 * time.Second, MaxTTL: time.Minute}, "ttl0.example.test")
	h.ensure(owner("capped"), Spec{MinTTL: time.Second, MaxTTL: 2 * time.Second}, "ttl3600.example.test")

	st := h.waitFor(owner("honoured"), "ttl2.example.test", 2*time.Second, "first answer", hasAddrs("198.51.100.1"))
	if st.Err != nil || !st.Resolved || st.LastConfirmed.IsZero() {
		t.Errorf("first answer: %+v", st)
	}
	if exp := st.Addresses[0].Expires.Sub(st.LastConfirmed); exp != 2*time.Second {
		t.Errorf("address expires %s after the answer, want the TTL 2s", exp)
	}
	h.waitFor(owner("clamped"), "ttl0.example.test", 2*time.Second, "first answer", hasAddrs("198.51.100.2"))
	h.waitFor(owner("capped"), "ttl3600.example.test", 2*time.Second, "first answer", hasAddrs("198.51.100.3"))
	time.Sleep(6500 * time.Millisecond)
	// Every refresh comes within the TTL, at most 10% early (jitter), plus
	// scheduling slack (a second: the CI machine is shared and loaded).
	lo, hi := 1800*time.Millisecond-50*time.Millisecond, 3*time.Second
	checkIntervals(t, "TTL 2s", intervals(h.srv.Queries("ttl2.example.test", dns.TypeA)), lo, hi)
	checkIntervals(t, "TTL 0s, minTTL 2s", intervals(h.srv.Queries("ttl0.example.test", dns.TypeA)), lo, hi)
	checkIntervals(t, "TTL 3600s, maxTTL 2s", intervals(h.srv.Queries("ttl3600.example.test", dns.TypeA)), lo, hi)
	// Refreshes with the same answer do not wake the reconciler, until a
	// quarter of maxTTL passed since the confirmation it last saw: with
	// maxTTL 2s that is every refresh.
	for _, o := range []string{"honoured", "clamped"} {
		if n := len(h.notesOf(owner(o))); n > 0 {
			t.Errorf("%s notified %d times for unchanged answers", o, n)
		}
	}
	if n, refreshes := len(h.notesOf(owner("capped"))), len(h.srv.Queries("ttl3600.example.test", dns.TypeA))-1; n == 0 || n > refreshes {
		t.Errorf("capped (maxTTL 2s) notified %d times for %d refreshes, want each, so its last resolution is recorded", n, refreshes)
	}
}

func TestRefresherFollowsFailoverWithinTTL(t *testing.T) {
	t.Parallel()
	h := startRefresher(t, time.Second)
	o := owner("mydb")
	h.srv.SetA("mydb.cluster-abc.example.test", 5, "198.51.100.10")
	h.ensure(o, Spec{MinTTL: time.Second, MaxTTL: time.Minute}, "mydb.cluster-abc.example.test")
	h.waitFor(o, "mydb.cluster-abc.example.test", 2*time.Second, "first answer", hasAddrs("198.51.100.10"))
	time.Sleep(time.Second) // fail over in the middle of the TTL
	changedAt := time.Now()
	h.srv.SetA("mydb.cluster-abc.example.test", 5, "198.51.100.20")
	h.waitFor(o, "mydb.cluster-abc.example.test", 7*time.Second, "the new primary", hasAddrs("198.51.100.20"))
	if took := time.Since(changedAt); took > 5*time.Second+2*time.Second {
		t.Errorf("failover seen after %s, want within TTL+2s", took)
	}
}

func TestRefresherCNAMEChainAndIPv6(t *testing.T) {
	t.Parallel()
	h := startRefresher(t, time.Second)
	o := owner("partner")
	h.srv.SetCNAME("api.partner.example.test", 60, "edge.cdn.example.test")
	h.srv.SetCNAME("edge.cdn.example.test", 2, "pop1.cdn.example.test")
	h.srv.SetA("pop1.cdn.example.test", 60, "203.0.113.5")
	h.srv.SetAAAA("pop1.cdn.example.test", 60, "2001:db8::5")
	h.ensure(o, Spec{Families: []corev1.IPFamily{"IPv4", "IPv6"}, MinTTL: time.Second, MaxTTL: time.Minute}, "api.partner.example.test")
	st := h.waitFor(o, "api.partner.example.test", 2*time.Second, "v4 and v6", hasAddrs("203.0.113.5", "2001:db8::5"))
	// The chain's smallest TTL (2s) rules the refresh.
	if exp := st.Addresses[0].Expires.Sub(st.LastConfirmed); exp != 2*time.Second {
		t.Errorf("expires %s after the answer, want the chain's smallest TTL 2s", exp)
	}
	// Re-point the middle of the chain: noticed on the chain's TTL.
	h.srv.SetCNAME("edge.cdn.example.test", 2, "pop2.cdn.example.test")
	h.srv.SetAAAA("pop2.cdn.example.test", 60, "2001:db8::6")
	st = h.waitFor(o, "api.partner.example.test", 4*time.Second, "pop2 (IPv6 only)", hasAddrs("2001:db8::6"))
	if st.Err != nil {
		t.Errorf("a name with AAAA but no A records failed: %v", st.Err)
	}
}

func TestRefresherKeepsAddressesForMaxTTLThenDrops(t *testing.T) {
	t.Parallel()
	h := startRefresher(t, 300*time.Millisecond)
	o := owner("flaky")
	name := "flaky.example.test"
	h.srv.SetA(name, 1, "198.51.100.30")
	h.ensure(o, Spec{MinTTL: time.Second, MaxTTL: 3 * time.Second}, name)
	h.waitFor(o, name, 2*time.Second, "first answer", hasAddrs("198.51.100.30"))

	h.srv.Fail(name, dnsserver.ServFail)
	st := h.waitFor(o, name, 2*time.Second, "the failure", func(s State) bool { return s.Err != nil })
	if st.Err.Reason != v1alpha1.ReasonServerFailure || !strings.Contains(st.Err.Message, "SERVFAIL") {
		t.Errorf("reason %s message %q", st.Err.Reason, st.Err.Message)
	}
	if !slices.Equal(st.Addrs(), addrs("198.51.100.30")) {
		t.Errorf("addresses during the grace: %v, want the last known", st.Addrs())
	}
	if want := st.FailingSince.Add(3 * time.Second); !st.Addresses[0].Expires.Equal(want) {
		t.Errorf("kept address expires %s, want failure start + maxTTL %s", st.Addresses[0].Expires, want)
	}
	st = h.waitFor(o, name, 4*time.Second, "the drop", func(s State) bool { return len(s.Addresses) == 0 })
	if kept := time.Since(st.FailingSince); kept < 3*time.Second || kept > 3*time.Second+time.Second {
		t.Errorf("addresses dropped %s after the failure began, want maxTTL (3s)", kept)
	}
	if st.Err == nil || st.Err.Reason != v1alpha1.ReasonServerFailure {
		t.Errorf("after the drop: %+v", st)
	}

	h.srv.Fail(name, dnsserver.None)
	h.srv.SetA(name, 1, "198.51.100.31")
	st = h.waitFor(o, name, 3*time.Second, "recovery", hasAddrs("198.51.100.31"))
	if st.Err != nil || !st.FailingSince.IsZero() {
		t.Errorf("after recovery: %+v", st)
	}
}

func TestRefresherFailureReasons(t *testing.T) {
	t.Parallel()
	h := startRefresher(t, 200*time.Millisecond)
	h.srv.Fail("silent.example.test", dnsserver.Drop)
	h.srv.SetAAAA("v6only.example.test", 60, "2001:db8::1")
	tests := []struct {
		name   string
		reason string
		text   string
	}{
		{"missing.example.test", v1alpha1.ReasonNameNotFound, "missing.example.test: NXDOMAIN (no such name) from " + h.srv.Addr},
		{"silent.example.test", v1alpha1.ReasonTimeout, "silent.example.test: A query to " + h.srv.Addr + " timed out after 200ms"},
		{"v6only.example.test", v1alpha1.ReasonNoAddresses, "v6only.example.test: no A address records"},
	}
	failuresBefore := map[string]float64{}
	for _, tt := range tests {
		failuresBefore[tt.reason] = testutil.ToFloat64(resolutions.WithLabelValues("IPv4", string(tt.reason)))
	}
	for _, tt := range tests {
		o := owner(tt.name)
		h.ensure(o, Spec{MinTTL: time.Second, MaxTTL: time.Minute}, tt.name)
		st := h.waitFor(o, tt.name, 2*time.Second, "a failure", func(s State) bool { return s.Resolved })
		if st.Err == nil || st.Err.Reason != tt.reason || st.Err.Message != tt.text {
			t.Errorf("%s: got %+v, want %s %q", tt.name, st.Err, tt.reason, tt.text)
		}
		if len(st.Addresses) != 0 || !st.LastConfirmed.IsZero() {
			t.Errorf("%s: %+v", tt.name, st)
		}
		if got := testutil.ToFloat64(resolutions.WithLabelValues("IPv4", string(tt.reason))); got <= failuresBefore[tt.reason] {
			t.Errorf("%s: outpost_resolve_resolutions_total{result=%q} did not grow", tt.name, tt.reason)
		}
	}
}

func TestRefresherEnsureDropsNamesAndForgetStops(t *testing.T) {
	t.Parallel()
	h := startRefresher(t, time.Second)
	o := owner("two")
	h.srv.SetA("a.example.test", 1, "198.51.100.1")
	h.srv.SetA("b.example.test", 1, "198.51.100.2")
	spec := Spec{MinTTL: time.Second, MaxTTL: time.Minute}
	h.ensure(o, spec, "a.example.test", "B.example.test.")
	h.waitFor(o, "b.example.test", 2*time.Second, "b", hasAddrs("198.51.100.2"))
	h.ensure(o, spec, "a.example.test")
	if _, ok := h.refresher.Lookup(o, "b.example.test"); ok {
		t.Error("b still tracked after Ensure without it")
	}
	before := len(h.srv.Queries("b.example.test", 0))
	h.ensure(o, spec, "a.example.test") // idempotent: no new query
	qa := len(h.srv.Queries("a.example.test", 0))
	time.Sleep(2500 * time.Millisecond)
	if after := len(h.srv.Queries("b.example.test", 0)); after != before {
		t.Errorf("b asked %d more times after it was dropped", after-before)
	}
	// About 2; a loaded machine may delay one past the window.
	if now := len(h.srv.Queries("a.example.test", 0)); now-qa < 1 || now-qa > 3 {
		t.Errorf("a asked %d times in 2.5s with TTL 1s, want 1-3", now-qa)
	}
	h.refresher.Forget(o)
	time.Sleep(time.Second) // let an in-flight query land
	forgotten := len(h.srv.Queries("a.example.test", 0))
	time.Sleep(1500 * time.Millisecond)
	if n := len(h.srv.Queries("a.example.test", 0)); n != forgotten {
		t.Errorf("a asked %d more times after Forget", n-forgotten)
	}
	if _, ok := h.refresher.Lookup(o, "a.example.test"); ok {
		t.Error("a still tracked after Forget")
	}
}

func TestRefresherRejectsBadSpec(t *testing.T) {
	tr, err := NewRefresher(Options{Resolver: newResolver(t, time.Second, "127.0.0.1:1")})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Ensure(owner("x"), []string{"a.example.test"}, Spec{MinTTL: time.Hour, MaxTTL: time.Minute}); err == nil {
		t.Error("minTTL > maxTTL accepted")
	}
	if _, ok := tr.Lookup(owner("x"), "a.example.test"); ok {
		t.Error("a bad spec still tracks the name")
	}
}

func TestRefresherKeepsRefreshingAfterForgetAndEnsure(t *testing.T) {
	t.Parallel()
	h := startRefresher(t, time.Second)
	o, name := owner("again"), "again.example.test"
	spec := Spec{MinTTL: time.Second, MaxTTL: time.Minute}
	h.srv.SetA(name, 1, "198.51.100.1")
	h.ensure(o, spec, name)
	h.waitFor(o, name, 2*time.Second, "first answer", hasAddrs("198.51.100.1"))
	// The old refresh (due in ~1s) is still in the queue when the name comes
	// back; the new life's schedule must survive being merged with it.
	time.Sleep(300 * time.Millisecond)
	h.refresher.Forget(o)
	h.ensure(o, spec, name)
	h.waitFor(o, name, 2*time.Second, "answer after re-adding", hasAddrs("198.51.100.1"))
	start := len(h.srv.Queries(name, 0))
	time.Sleep(3 * time.Second)
	if n := len(h.srv.Queries(name, 0)) - start; n < 2 {
		t.Errorf("re-added name refreshed %d times in 3s with TTL 1s", n)
	}
}

func TestRefresherOneFamilyFailing(t *testing.T) {
	t.Parallel()
	h := startRefresher(t, time.Second)
	o, name := owner("dual"), "dual.example.test"
	h.srv.SetA(name, 1, "198.51.100.1")
	h.srv.SetAAAA(name, 1, "2001:db8::1")
	h.ensure(o, Spec{Families: []corev1.IPFamily{"IPv4", "IPv6"}, MinTTL: time.Second, MaxTTL: 3 * time.Second}, name)
	h.waitFor(o, name, 2*time.Second, "both families", hasAddrs("198.51.100.1", "2001:db8::1"))

	h.srv.FailType(name, dns.TypeAAAA, dnsserver.ServFail)
	h.srv.SetA(name, 1, "198.51.100.2")
	// IPv4 keeps following its records while IPv6 keeps its last address.
	st := h.waitFor(o, name, 3*time.Second, "new A, kept AAAA", hasAddrs("198.51.100.2", "2001:db8::1"))
	if st.Err == nil || st.Err.Reason != v1alpha1.ReasonServerFailure || !strings.Contains(st.Err.Message, "AAAA query answered SERVFAIL") {
		t.Errorf("error %+v, want the AAAA SERVFAIL", st.Err)
	}
	if kept := st.Addresses[1]; !kept.Expires.Equal(st.FailingSince.Add(3 * time.Second)) {
		t.Errorf("kept AAAA expires %s, want failure start + maxTTL", st.Addresses[1].Expires)
	}
	h.waitFor(o, name, 4*time.Second, "AAAA dropped after the grace", hasAddrs("198.51.100.2"))
}

func TestRefresherEnsureFromKeepsKnownAddressesWhileTheServerIsDown(t *testing.T) {
	t.Parallel()
	h := startRefresher(t, 200*time.Millisecond)
	o := owner("restarted")
	name := "restarted.example.test"
	h.srv.Fail(name, dnsserver.Drop)
	// Confirmed half a grace ago: a grace counted from the confirmation
	// ends in 3 s, one wrongly restarted at the first failure in 6 s, far
	// enough apart for a loaded machine to tell.
	const maxTTL = 6 * time.Second
	confirmed := time.Now().Add(-maxTTL / 2)
	known := []Known{
		{Name: name, Addr: addrs("198.51.100.40")[0], Expires: confirmed.Add(time.Second), Confirmed: confirmed},
		{Name: "other.example.test", Addr: addrs("198.51.100.41")[0], Confirmed: confirmed},
	}
	if err := h.refresher.EnsureFrom(o, []string{name}, Spec{MinTTL: time.Second, MaxTTL: maxTTL}, known); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.refresher.Lookup(o, name); st.Resolved || !slices.Equal(st.Addrs(), addrs("198.51.100.40")) {
		t.Errorf("before the first answer: %+v, want the known address of this name only", st)
	}
	st := h.waitFor(o, name, 30*time.Second, "the failure", func(s State) bool { return s.Err != nil })
	if !slices.Equal(st.Addrs(), addrs("198.51.100.40")) || st.Err.Reason != v1alpha1.ReasonTimeout {
		t.Errorf("during the failure: %+v, want the known address kept", st)
	}
	st = h.waitFor(o, name, 30*time.Second, "the drop", func(s State) bool { return len(s.Addresses) == 0 })
	if kept := time.Since(confirmed); kept < maxTTL || kept > maxTTL+maxTTL/4 {
		t.Errorf("dropped %s after the last confirmation, want maxTTL (%s)", kept, maxTTL)
	}

	// Known addresses are for names the Refresher starts tracking only.
	h.srv.Fail(name, dnsserver.None)
	h.srv.SetA(name, 1, "198.51.100.42")
	h.waitFor(o, name, 30*time.Second, "recovery", hasAddrs("198.51.100.42"))
	if err := h.refresher.EnsureFrom(o, []string{name}, Spec{MinTTL: time.Second, MaxTTL: maxTTL}, known); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.refresher.Lookup(o, name); !slices.Equal(st.Addrs(), addrs("198.51.100.42")) {
		t.Errorf("known addresses replaced a tracked name's answer: %v", st.Addrs())
	}
}
