package probe

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestSpecNormalize(t *testing.T) {
	got, err := Spec{Type: HTTP, Port: 80}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Type: HTTP, Port: 80, Path: "/", Interval: 10 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 3}
	if got != want {
		t.Errorf("defaults: %+v, want %+v", got, want)
	}
	for spec, msg := range map[Spec]string{
		{Type: "UDP", Port: 53}:           `healthCheck.type: "UDP" is not TCP, HTTP or HTTPS`,
		{Type: TCP}:                       "healthCheck.port: 0 is not in 1-65535",
		{Type: HTTP, Port: 80, Path: "x"}: `healthCheck.path: "x" must start with /`,
	} {
		if _, err := spec.normalize(); err == nil || err.Error() != msg {
			t.Errorf("%+v: %v, want %q", spec, err, msg)
		}
	}
	if got, _ := (Spec{Type: TCP, Port: 1, Interval: time.Second, Timeout: time.Minute}).normalize(); got.Timeout != time.Second {
		t.Errorf("timeout %s not capped at the interval", got.Timeout)
	}
}

func TestAdvanceThresholds(t *testing.T) {
	spec := Spec{HealthyThreshold: 2, UnhealthyThreshold: 3}
	fail := errors.New("refused")
	h := health{ready: true}
	var readiness []bool
	var notes []bool
	for _, r := range []error{nil, fail, fail, fail, fail, nil, nil, nil, fail, nil, fail} {
		var n bool
		h, n = advance(h, r, spec, time.Now())
		readiness, notes = append(readiness, h.ready), append(notes, n)
	}
	wantReady := []bool{true, true, true, false, false, false, true, true, true, true, true}
	wantNotes := []bool{true, false, false, true, false, false, true, false, false, false, false}
	for i := range wantReady {
		if readiness[i] != wantReady[i] || notes[i] != wantNotes[i] {
			t.Fatalf("after result %d: ready %v notify %v; want ready %v notify %v", i, readiness, notes, wantReady, wantNotes)
		}
	}
	if h.lastError != "refused" || h.failures != 1 {
		t.Errorf("last error %q failures %d", h.lastError, h.failures)
	}
	// A target that starts not ready needs the healthy threshold.
	h = health{}
	h, n := advance(h, nil, spec, time.Now())
	if h.ready || !n || !h.known {
		t.Errorf("one success: %+v notify %v", h, n)
	}
	if h, _ = advance(h, nil, spec, time.Now()); !h.ready {
		t.Error("two successes: not ready")
	}
}

func TestNextDelayJitterBounded(t *testing.T) {
	lo, hi := time.Hour, time.Duration(0)
	for range 10000 {
		d := nextDelay(10*time.Second, 0.1, rand.Float64)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 9*time.Second || hi > 11*time.Second || hi-lo < 1900*time.Millisecond {
		t.Errorf("delays in [%s, %s], want spread over [9s, 11s]", lo, hi)
	}
}
