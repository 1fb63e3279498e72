package probe

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"

	"github.com/outpost-dev/outpost/test/lib/netns"
)

type harness struct {
	t      *testing.T
	ns     *netns.Host
	prober *Prober

	mu    sync.Mutex
	notes map[types.NamespacedName]int
}

func startProber(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, ns: netns.NewHost(t), notes: map[types.NamespacedName]int{}}
	h.prober = NewProber(Options{Workers: 4, Notify: func(o types.NamespacedName) {
		h.mu.Lock()
		h.notes[o]++
		h.mu.Unlock()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.prober.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return h
}

func (h *harness) notifications(o types.NamespacedName) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.notes[o]
}

// waitNotes waits for the n-th notification of o (Notify runs just after
// the status is stored) and fails on more.
func (h *harness) waitNotes(o types.NamespacedName, n int, what string) {
	h.t.Helper()
	deadline := time.Now().Add(settle)
	for h.notifications(o) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := h.notifications(o); got != n {
		h.t.Errorf("%s: %d notifications, want %d", what, got, n)
	}
}

func owner(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "default", Name: name}
}

// watch polls the status of addr until cond holds and returns every
// distinct status seen on the way (so a test can check the steps).
func (h *harness) watch(o types.NamespacedName, addr netip.Addr, within time.Duration, what string, cond func(Status) bool) (Status, []Status) {
	h.t.Helper()
	var seen []Status
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		st := h.prober.Status(o, addr)
		if len(seen) == 0 || st.LastProbe != seen[len(seen)-1].LastProbe {
			seen = append(seen, st)
		}
		if cond(st) {
			return st, seen
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("%s: not within %s; last status %+v", what, within, h.prober.Status(o, addr))
	return Status{}, nil
}

// settle bounds the waits for a status: generous, because a loaded CI
// machine may delay the prober's goroutines, and free when things are quick
// (watch returns as soon as the condition holds).
const settle = 30 * time.Second

func notReady(s Status) bool { return s.Known && !s.Ready }
func ready(s Status) bool    { return s.Known && s.Ready }

// checkThreshold checks that readiness flipped exactly on the n-th
// consecutive result after the server changed.
func checkThreshold(t *testing.T, what string, seen []Status, n int, failing bool) {
	t.Helper()
	var run []Status
	for _, s := range seen {
		if (s.LastError != "") == failing {
			run = append(run, s)
		} else {
			run = nil
		}
	}
	if len(run) != n {
		t.Errorf("%s: flipped after %d consecutive results, want %d (%+v)", what, len(run), n, seen)
	}
}

func TestTCPProbeFollowsListenerStopAndStart(t *testing.T) {
	t.Parallel()
	h := startProber(t)
	srv := h.ns.StartTCP(t, netip.AddrPortFrom(h.ns.IPs[0], 31496))
	o := owner("db")
	// A refused connect answers at once, but on a loaded 2-core machine the
	// prober may not run for a while: a timeout as long as the interval keeps
	// a starved probe from reading as a timeout instead of a refusal.
	spec := Spec{Checks: []Check{{Type: TCP, Port: 31496}}, Interval: 300 * time.Millisecond, Timeout: 300 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 3}
	if err := h.prober.Ensure(o, []Target{{Addr: h.ns.IPs[0]}}, spec); err != nil {
		t.Fatal(err)
	}
	if st := h.prober.Status(o, h.ns.IPs[0]); !st.Ready || st.Known {
		t.Errorf("new target: %+v, want ready and not known", st)
	}
	h.watch(o, h.ns.IPs[0], settle, "first result", ready)
	h.waitNotes(o, 1, "first result")

	failures := testutil.ToFloat64(probes.WithLabelValues("TCP", "Failure"))
	toNotReady := testutil.ToFloat64(transitions.WithLabelValues("NotReady"))
	srv.Stop()
	st, seen := h.watch(o, h.ns.IPs[0], settle, "not ready after the listener stopped", notReady)
	if testutil.ToFloat64(probes.WithLabelValues("TCP", "Failure"))-failures < 3 || testutil.ToFloat64(transitions.WithLabelValues("NotReady")) <= toNotReady {
		t.Error("probe metrics did not count the failures and the transition")
	}
	checkThreshold(t, "stop", seen, 3, true)
	refused := "TCP connect to " + h.ns.IPs[0].String() + ":31496: connect: connection refused"
	if !slices.ContainsFunc(seen, func(s Status) bool { return strings.Contains(s.LastError, refused) }) {
		t.Errorf("no failed probe reported %q; last error %q", refused, st.LastError)
	}
	h.waitNotes(o, 2, "not ready")

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	st, seen = h.watch(o, h.ns.IPs[0], settle, "ready after the listener came back", ready)
	checkThreshold(t, "start", seen, 2, false)
	if st.LastError != "" {
		t.Errorf("after recovery: %+v", st)
	}
	h.waitNotes(o, 3, "ready again")
}

func TestHTTPProbeStatusCodes(t *testing.T) {
	t.Parallel()
	h := startProber(t)
	addr := h.ns.IPs6[0] // over IPv6, with a DNS name for the Host header
	srv := h.ns.StartHTTP(t, netip.AddrPortFrom(addr, 8080))
	o := owner("web")
	spec := Spec{Checks: []Check{{Type: HTTP, Port: 8080, Path: "/healthz"}}, Interval: 300 * time.Millisecond, Timeout: 300 * time.Millisecond, HealthyThreshold: 1, UnhealthyThreshold: 2}
	if err := h.prober.Ensure(o, []Target{{Addr: addr, Host: "web.example.test"}}, spec); err != nil {
		t.Fatal(err)
	}
	h.watch(o, addr, settle, "ready on 200", ready)

	srv.SetStatus(http.StatusInternalServerError)
	st, _ := h.watch(o, addr, settle, "not ready on 500", notReady)
	want := "HTTP GET http://web.example.test:8080/healthz (" + netip.AddrPortFrom(addr, 8080).String() + "): status 500 Internal Server Error, want 200-399"
	if st.LastError != want {
		t.Errorf("last error %q, want %q", st.LastError, want)
	}
	srv.SetStatus(http.StatusFound) // 3xx is healthy; not followed
	h.watch(o, addr, settle, "ready on 302", ready)

	srv.Stop()
	h.watch(o, addr, settle, "not ready when stopped", notReady)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	h.watch(o, addr, settle, "ready when started", ready)
}

func TestHTTPSProbeSkipsCertificateCheckUnlessAsked(t *testing.T) {
	t.Parallel()
	h := startProber(t)
	addr := h.ns.IPs[1]
	h.ns.StartHTTPS(t, netip.AddrPortFrom(addr, 8443), "api.example.test")
	spec := Spec{Checks: []Check{{Type: HTTPS, Port: 8443}}, Interval: time.Second, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1}

	if err := h.prober.Ensure(owner("insecure"), []Target{{Addr: addr, StartNotReady: true}}, spec); err != nil {
		t.Fatal(err)
	}
	if st := h.prober.Status(owner("insecure"), addr); st.Ready || st.Known {
		t.Errorf("StartNotReady target before its first probe: %+v", st)
	}
	h.watch(owner("insecure"), addr, settle, "ready with a self-signed certificate", ready)

	spec.Checks[0].VerifyTLS = true
	if err := h.prober.Ensure(owner("strict"), []Target{{Addr: addr, Host: "api.example.test"}}, spec); err != nil {
		t.Fatal(err)
	}
	st, _ := h.watch(owner("strict"), addr, settle, "not ready when verifying", notReady)
	if !strings.Contains(st.LastError, "certificate") {
		t.Errorf("last error %q does not explain the certificate", st.LastError)
	}
}

func TestProbeTimeout(t *testing.T) {
	t.Parallel()
	h := startProber(t)
	// On-link but unassigned: nothing answers ARP, so the connect hangs.
	silent := h.ns.IPs[len(h.ns.IPs)-1].Next()
	spec := Spec{Checks: []Check{{Type: TCP, Port: 9}}, Interval: 400 * time.Millisecond, Timeout: 150 * time.Millisecond, UnhealthyThreshold: 1}
	if err := h.prober.Ensure(owner("silent"), []Target{{Addr: silent}}, spec); err != nil {
		t.Fatal(err)
	}
	st, _ := h.watch(owner("silent"), silent, settle, "not ready", notReady)
	if want := "TCP connect to " + silent.String() + ":9: timed out after 150ms"; st.LastError != want {
		t.Errorf("last error %q, want %q", st.LastError, want)
	}
}

// inFlightGrace is how long a probe already started may take to land.
const inFlightGrace = time.Second

func TestProbesStopWhenTargetsGoAway(t *testing.T) {
	t.Parallel()
	h := startProber(t)
	a := h.ns.StartTCP(t, netip.AddrPortFrom(h.ns.IPs[2], 7000))
	b := h.ns.StartTCP(t, netip.AddrPortFrom(h.ns.IPs[3], 7000))
	o := owner("two")
	spec := Spec{Checks: []Check{{Type: TCP, Port: 7000}}, Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond}
	if err := h.prober.Ensure(o, []Target{{Addr: a.Addr.Addr()}, {Addr: b.Addr.Addr()}}, spec); err != nil {
		t.Fatal(err)
	}
	h.watch(o, b.Addr.Addr(), settle, "b probed", ready)
	if err := h.prober.Ensure(o, []Target{{Addr: a.Addr.Addr()}}, spec); err != nil {
		t.Fatal(err)
	}
	if st := h.prober.Status(o, b.Addr.Addr()); st.Known {
		t.Errorf("b still tracked: %+v", st)
	}
	// A probe in flight may still land (timeout 100ms; a loaded machine
	// delays it): what counts is that none starts afterwards.
	time.Sleep(inFlightGrace)
	hitsB, hitsA := b.Hits(), a.Hits()
	time.Sleep(500 * time.Millisecond)
	if b.Hits() != hitsB {
		t.Errorf("b probed %d times after it was dropped", b.Hits()-hitsB)
	}
	if got := a.Hits() - hitsA; got < 2 || got > 8 {
		t.Errorf("a probed %d times in 500ms at 100ms ±10%%, want about 5", got)
	}
	h.prober.Forget(o)
	time.Sleep(inFlightGrace)
	hitsA = a.Hits()
	time.Sleep(400 * time.Millisecond)
	if a.Hits() != hitsA {
		t.Errorf("a probed %d times after Forget", a.Hits()-hitsA)
	}
}
