package resolve

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

func TestSpecNormalize(t *testing.T) {
	got, err := Spec{}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got.MinTTL != v1alpha1.DefaultMinTTL || got.MaxTTL != v1alpha1.DefaultMaxTTL || !slices.Equal(got.Families, []corev1.IPFamily{"IPv4"}) {
		t.Errorf("defaults: %+v", got)
	}
	got, _ = Spec{Families: []corev1.IPFamily{"IPv6", "IPv4", "IPv6"}}.normalize()
	if !slices.Equal(got.Families, []corev1.IPFamily{"IPv4", "IPv6"}) {
		t.Errorf("families %v, want deduplicated IPv4, IPv6", got.Families)
	}
	if _, err := (Spec{MinTTL: time.Minute, MaxTTL: time.Second}).normalize(); err == nil || err.Error() != "resolution: minTTL 1m0s is greater than maxTTL 1s" {
		t.Errorf("minTTL > maxTTL: %v", err)
	}
	if _, err := (Spec{Families: []corev1.IPFamily{"IPv5"}}).normalize(); err == nil || err.Error() != `resolution.ipFamilies: unknown family "IPv5" (want IPv4 or IPv6)` {
		t.Errorf("bad family: %v", err)
	}
}

func TestClampTTL(t *testing.T) {
	s := Spec{MinTTL: 5 * time.Second, MaxTTL: time.Minute}
	for ttl, want := range map[time.Duration]time.Duration{
		0:                5 * time.Second,
		time.Second:      5 * time.Second,
		30 * time.Second: 30 * time.Second,
		time.Hour:        time.Minute,
	} {
		if got := s.clampTTL(ttl); got != want {
			t.Errorf("clampTTL(%s) = %s, want %s", ttl, got, want)
		}
	}
}

func TestRetryAfterBacksOffWithinBounds(t *testing.T) {
	s := Spec{MinTTL: 5 * time.Second, MaxTTL: 30 * time.Minute}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, s.retryAfter(n))
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	if !slices.Equal(got, want) {
		t.Errorf("back-off %v, want %v", got, want)
	}
	// A MaxTTL shorter than the cap bounds the back-off, so the grace end is met.
	if d := (Spec{MinTTL: time.Second, MaxTTL: 3 * time.Second}).retryAfter(10); d != 3*time.Second {
		t.Errorf("retryAfter capped by MaxTTL: %s", d)
	}
}

func TestJitterIsBoundedAndNeverLate(t *testing.T) {
	d := 10 * time.Second
	lo, hi := d, time.Duration(0)
	for range 10000 {
		j := jittered(d, 0.1, rand.Float64)
		lo, hi = min(lo, j), max(hi, j)
	}
	if lo < 9*time.Second || hi > d {
		t.Errorf("jittered range [%s, %s], want within [9s, 10s]", lo, hi)
	}
	if hi-lo < 900*time.Millisecond {
		t.Errorf("jittered range [%s, %s] barely spreads", lo, hi)
	}
	if j := jittered(d, 0, rand.Float64); j != d {
		t.Errorf("no jitter: %s", j)
	}
}

func TestStepKeepsAddressesForOneMaxTTLThenDrops(t *testing.T) {
	spec := Spec{MinTTL: 5 * time.Second, MaxTTL: time.Minute}
	t0 := time.Unix(1000, 0)
	ok := outcome{answer: Answer{Addrs: addrs("198.51.100.1"), TTL: 20 * time.Second}}
	fail := outcome{err: &Error{Reason: v1alpha1.ReasonTimeout, Message: "timed out"}}

	st, next := step(familyState{}, ok, spec, t0)
	if next != 20*time.Second || !st.expires.Equal(t0.Add(20*time.Second)) || st.err != nil {
		t.Fatalf("success: %+v next %s", st, next)
	}
	st, next = step(st, fail, spec, t0.Add(20*time.Second))
	if !slices.Equal(st.addrs, addrs("198.51.100.1")) || st.err == nil || next != 5*time.Second {
		t.Fatalf("first failure: %+v next %s", st, next)
	}
	if want := t0.Add(80 * time.Second); !st.expires.Equal(want) {
		t.Errorf("kept addresses expire %s, want failure start + maxTTL %s", st.expires, want)
	}
	st, next = step(st, fail, spec, t0.Add(78*time.Second))
	if len(st.addrs) != 1 || next != 2*time.Second {
		t.Errorf("near the grace end: %+v next %s (want the retry to land on the drop time)", st, next)
	}
	st, _ = step(st, fail, spec, t0.Add(80*time.Second))
	if len(st.addrs) != 0 || st.failures != 3 {
		t.Errorf("after the grace: %+v", st)
	}
	st, _ = step(st, ok, spec, t0.Add(90*time.Second))
	if len(st.addrs) != 1 || st.err != nil || !st.failingSince.IsZero() || st.failures != 0 {
		t.Errorf("recovery: %+v", st)
	}
}

func TestChangedIgnoresExpiryOnly(t *testing.T) {
	a := State{Resolved: true, Addresses: []Address{{Addr: addrs("198.51.100.1")[0], Expires: time.Unix(1, 0)}}}
	b := a
	b.Addresses = []Address{{Addr: addrs("198.51.100.1")[0], Expires: time.Unix(2, 0)}}
	if changed(a, b) {
		t.Error("a refresh that only moves expiry counts as a change")
	}
	b.Err = &Error{Reason: v1alpha1.ReasonTimeout}
	if !changed(a, b) {
		t.Error("a failure starting is not a change")
	}
	c := b
	c.Err = &Error{Reason: v1alpha1.ReasonTimeout, Message: "other text"}
	if changed(b, c) {
		t.Error("same reason, new message counts as a change")
	}
	c.Err = &Error{Reason: v1alpha1.ReasonNameNotFound}
	if !changed(b, c) {
		t.Error("new failure reason is not a change")
	}
}

func TestRestoredStartsFromKnownAddresses(t *testing.T) {
	spec := Spec{MinTTL: time.Second, MaxTTL: time.Minute}
	now := time.Unix(10000, 0)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	a, b := addrs("198.51.100.1")[0], addrs("198.51.100.2")[0]
	for _, tc := range []struct {
		name          string
		known         []Known
		wantAddrs     []string
		wantKeepUntil time.Time
	}{
		{name: "nothing known", wantAddrs: nil},
		{
			name:          "confirmed 10s ago: kept one maxTTL from the confirmation",
			known:         []Known{{Addr: a, Expires: at(-5 * time.Second), Confirmed: at(-10 * time.Second)}},
			wantAddrs:     []string{"198.51.100.1"},
			wantKeepUntil: at(50 * time.Second),
		},
		{
			name:  "confirmed more than maxTTL ago: gone",
			known: []Known{{Addr: a, Expires: at(-50 * time.Second), Confirmed: at(-61 * time.Second)}},
		},
		{
			name:          "a failing run announced a later drop time: kept until then",
			known:         []Known{{Addr: a, Expires: at(55 * time.Second), Confirmed: at(-30 * time.Second)}},
			wantAddrs:     []string{"198.51.100.1"},
			wantKeepUntil: at(55 * time.Second),
		},
		{
			name:          "confirmation unknown (an older row): counted from the expiry",
			known:         []Known{{Addr: a, Expires: at(-20 * time.Second)}},
			wantAddrs:     []string{"198.51.100.1"},
			wantKeepUntil: at(40 * time.Second),
		},
		{
			name:          "nothing but the address (only in an EndpointSlice): one maxTTL from now",
			known:         []Known{{Addr: a}},
			wantAddrs:     []string{"198.51.100.1"},
			wantKeepUntil: at(time.Minute),
		},
		{
			name: "two addresses: the latest confirmation, sorted, deduplicated",
			known: []Known{
				{Addr: b, Expires: at(-5 * time.Second), Confirmed: at(-10 * time.Second)},
				{Addr: a, Expires: at(-25 * time.Second), Confirmed: at(-30 * time.Second)},
				{Addr: b, Expires: at(-5 * time.Second), Confirmed: at(-10 * time.Second)},
			},
			wantAddrs:     []string{"198.51.100.1", "198.51.100.2"},
			wantKeepUntil: at(50 * time.Second),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, ok := restored(tc.known, spec, now)
			if ok != (len(tc.wantAddrs) > 0) || !slices.Equal(fs.addrs, addrs(tc.wantAddrs...)) {
				t.Fatalf("restored %v (ok %v), want %v", fs.addrs, ok, tc.wantAddrs)
			}
			if ok && !fs.keepUntil.Equal(tc.wantKeepUntil) {
				t.Errorf("kept until %s, want %s", fs.keepUntil.Sub(now), tc.wantKeepUntil.Sub(now))
			}
		})
	}
}

func TestStepFromRestoredState(t *testing.T) {
	spec := Spec{MinTTL: time.Second, MaxTTL: time.Minute}
	now := time.Unix(10000, 0)
	fs, _ := restored([]Known{{Addr: addrs("198.51.100.1")[0], Confirmed: now.Add(-50 * time.Second)}}, spec, now)
	fail := outcome{err: &Error{Reason: v1alpha1.ReasonTimeout, Message: "timed out"}}

	st, next := step(fs, fail, spec, now)
	if !slices.Equal(st.addrs, addrs("198.51.100.1")) || next != time.Second {
		t.Fatalf("first failure after a restart: %+v next %s, want the known address kept", st, next)
	}
	if want := now.Add(10 * time.Second); !st.expires.Equal(want) {
		t.Errorf("kept until %s, want the earlier run's confirmation + maxTTL (%s), not a fresh grace", st.expires, want)
	}
	st, next = step(st, fail, spec, now.Add(9*time.Second))
	if len(st.addrs) != 1 || next != time.Second {
		t.Errorf("before the grace ends: %+v next %s", st, next)
	}
	st, _ = step(st, fail, spec, now.Add(10*time.Second))
	if len(st.addrs) != 0 {
		t.Errorf("after the grace: %+v", st)
	}

	ok := outcome{answer: Answer{Addrs: addrs("198.51.100.7"), TTL: 20 * time.Second}}
	st, _ = step(fs, ok, spec, now)
	if !slices.Equal(st.addrs, addrs("198.51.100.7")) || !st.keepUntil.IsZero() || !st.confirmed.Equal(now) {
		t.Errorf("an answer replaces the known addresses and resets the grace: %+v", st)
	}
}
