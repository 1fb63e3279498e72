package probe

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestSpecNormalize(t *testing.T) {
	got, err := Spec{Checks: []Check{{Type: HTTP, Port: 80}, {Type: DNS, Port: 53, DNSName: "example.com"}, {Type: GRPC, Port: 9000}}}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		Checks: []Check{
			{Field: "healthCheck", Type: HTTP, Port: 80, Path: "/", ExpectedStatuses: []string{"200-399"}},
			{Field: "healthCheck", Type: DNS, Port: 53, DNSName: "example.com.", DNSType: "A"},
			{Field: "healthCheck", Type: GRPC, Port: 9000},
		},
		Interval: 10 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 3,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults: %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		check Check
		msg   string
	}{
		{Check{Type: "UDP", Port: 53}, `healthCheck.type: "UDP" is not TCP, HTTP, HTTPS, GRPC or DNS`},
		{Check{Type: TCP}, "healthCheck.port: 0 is not in 1-65535"},
		{Check{Type: HTTP, Port: 80, Path: "x"}, `healthCheck.path: "x" must start with /`},
		{Check{Field: "spec.healthCheck.checks[1]", Type: HTTP, Port: 80, ExpectedStatuses: []string{"299-200"}},
			`spec.healthCheck.checks[1].http.expectedStatuses: "299-200" is neither a status code nor a range like 200-299`},
		{Check{Field: "spec.healthCheck.checks[0]", Type: HTTPS, Port: 443, RootCAs: []byte("not PEM")},
			"spec.healthCheck.checks[0].tls.caConfigMap: holds no PEM certificate"},
		{Check{Field: "spec.healthCheck.checks[2]", Type: DNS, Port: 53}, "spec.healthCheck.checks[2].dns.name: required for a DNS check"},
		{Check{Type: DNS, Port: 53, DNSName: "x", DNSType: "BOGUS"}, `healthCheck.dns.type: "BOGUS" is not a DNS record type`},
	} {
		if _, err := (Spec{Checks: []Check{{Type: TCP, Port: 1}, tc.check}}).normalize(); err == nil || err.Error() != tc.msg {
			t.Errorf("%+v: %v, want %q", tc.check, err, tc.msg)
		}
	}
	if _, err := (Spec{}).normalize(); err == nil {
		t.Error("a spec without checks was accepted")
	}
	if got, _ := (Spec{Checks: []Check{{Type: TCP, Port: 1}}, Interval: time.Second, Timeout: time.Minute}).normalize(); got.Timeout != time.Second {
		t.Errorf("timeout %s not capped at the interval", got.Timeout)
	}
}

func TestParseStatuses(t *testing.T) {
	got, err := parseStatuses([]string{"204", "300-308"})
	if err != nil || !reflect.DeepEqual(got, []statusRange{{204, 204}, {300, 308}}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "2xx", "99", "600", "200-", "-200", "300-200"} {
		if _, err := parseStatuses([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
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
