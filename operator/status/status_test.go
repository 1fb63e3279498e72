package status

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/operator/probe"
	"github.com/outpost-dev/outpost/operator/resolve"
)

var (
	now     = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	expires = now.Add(90*time.Second + 300*time.Millisecond)
)

func backend(spec v1alpha1.ExternalBackendSpec) *v1alpha1.ExternalBackend {
	return &v1alpha1.ExternalBackend{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "prod", UID: "uid-1", Generation: 3},
		Spec:       spec,
	}
}

func addresses(a ...string) v1alpha1.ExternalBackendSpec {
	return v1alpha1.ExternalBackendSpec{Addresses: a, Ports: []v1alpha1.BackendPort{{Port: 80}}}
}

func withHealthCheck(spec v1alpha1.ExternalBackendSpec) v1alpha1.ExternalBackendSpec {
	spec.HealthCheck = &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckHTTP}
	return spec
}

var alias = v1alpha1.ExternalBackendSpec{ExternalName: "db.example.com"}

// allow denies 127.0.0.0/8, as the operator's default policy does.
func allow(ip netip.Addr) error {
	if netip.MustParsePrefix("127.0.0.0/8").Contains(ip) {
		return fmt.Errorf("%s is inside 127.0.0.0/8 (--denied-cidrs)", ip)
	}
	return nil
}

func resolved(name string, addrs ...string) Name {
	st := resolve.State{Resolved: true}
	for _, a := range addrs {
		st.Addresses = append(st.Addresses, resolve.Address{Addr: netip.MustParseAddr(a), Expires: expires})
	}
	return Name{Name: name, State: st}
}

func failing(name, reason string, kept ...string) Name {
	n := resolved(name, kept...)
	n.State.Err = &resolve.Error{Reason: reason, Message: "query for " + name + " failed"}
	return n
}

func unhealthy(addrs ...string) map[netip.Addr]probe.Status {
	health := map[netip.Addr]probe.Status{}
	for _, a := range addrs {
		health[netip.MustParseAddr(a)] = probe.Status{Ready: false, Known: true, LastError: "connection refused"}
	}
	return health
}

func TestConditions(t *testing.T) {
	type want struct{ ready, resolved, healthy string }
	tests := []struct {
		name     string
		spec     v1alpha1.ExternalBackendSpec
		in       Inputs
		applyErr error
		want     want
		// message is a substring of the condition whose reason is first in want.
		message string
	}{{
		name:    "static addresses, all ready",
		spec:    addresses("192.0.2.1", "192.0.2.2"),
		want:    want{v1alpha1.ReasonEndpointsReady, v1alpha1.ReasonStaticAddresses, v1alpha1.ReasonHealthCheckDisabled},
		message: "2/2 endpoints ready",
	}, {
		name:    "alias",
		spec:    alias,
		want:    want{v1alpha1.ReasonAliasConfigured, v1alpha1.ReasonResolvedByClient, v1alpha1.ReasonHealthCheckDisabled},
		message: "Service db is an alias for db.example.com",
	}, {
		name:    "every address denied",
		spec:    addresses("127.0.0.1", "127.0.0.2"),
		want:    want{v1alpha1.ReasonAddressesDenied, v1alpha1.ReasonStaticAddresses, v1alpha1.ReasonHealthCheckDisabled},
		message: "all 2 addresses are denied",
	}, {
		name:    "every address unhealthy",
		spec:    withHealthCheck(addresses("192.0.2.1", "127.0.0.1")),
		in:      Inputs{Health: unhealthy("192.0.2.1")},
		want:    want{v1alpha1.ReasonNoReadyEndpoints, v1alpha1.ReasonStaticAddresses, v1alpha1.ReasonUnhealthy},
		message: "0/1 endpoints ready",
	}, {
		name:    "a name not answered yet publishes nothing",
		spec:    addresses("db.example.com"),
		in:      Inputs{Names: []Name{{Name: "db.example.com"}}},
		want:    want{v1alpha1.ReasonNoReadyEndpoints, v1alpha1.ReasonResolving, v1alpha1.ReasonHealthCheckDisabled},
		message: "0/0 endpoints ready",
	}, {
		name:     "apply failed",
		spec:     addresses("192.0.2.1"),
		applyErr: errors.New("apply EndpointSlice db-ipv4: forbidden"),
		want:     want{v1alpha1.ReasonApplyFailed, v1alpha1.ReasonStaticAddresses, v1alpha1.ReasonHealthCheckDisabled},
		message:  "apply EndpointSlice db-ipv4: forbidden",
	}, {
		name:    "names resolved",
		spec:    addresses("a.example.com", "192.0.2.9", "b.example.com"),
		in:      Inputs{Names: []Name{resolved("a.example.com", "192.0.2.1"), resolved("b.example.com", "192.0.2.2", "2001:db8::2")}},
		want:    want{v1alpha1.ReasonEndpointsReady, v1alpha1.ReasonNamesResolved, v1alpha1.ReasonHealthCheckDisabled},
		message: "4/4 endpoints ready",
	}, {
		name:    "spec.resolution refused by the resolver",
		spec:    addresses("db.example.com"),
		in:      Inputs{Names: []Name{{Name: "db.example.com"}}, ResolveErr: errors.New("resolution: minTTL 1h is greater than maxTTL 1m")},
		want:    want{v1alpha1.ReasonNoReadyEndpoints, v1alpha1.ReasonInvalidResolution, v1alpha1.ReasonHealthCheckDisabled},
		message: "0/0",
	}, {
		name:    "spec.healthCheck refused by the prober: every address stays ready",
		spec:    withHealthCheck(addresses("192.0.2.1")),
		in:      Inputs{ProbeErr: errors.New("healthCheck.port: 0 is not in 1-65535")},
		want:    want{v1alpha1.ReasonEndpointsReady, v1alpha1.ReasonStaticAddresses, v1alpha1.ReasonInvalidHealthCheck},
		message: "1/1",
	}, {
		name:    "all healthy, denied addresses not counted as probed",
		spec:    withHealthCheck(addresses("192.0.2.1", "192.0.2.2", "127.0.0.1")),
		in:      Inputs{Health: map[netip.Addr]probe.Status{netip.MustParseAddr("192.0.2.1"): {Ready: true, Known: true}}},
		want:    want{v1alpha1.ReasonEndpointsReady, v1alpha1.ReasonStaticAddresses, v1alpha1.ReasonAllHealthy},
		message: "2/2",
	}, {
		name:    "some unhealthy",
		spec:    withHealthCheck(addresses("192.0.2.1", "192.0.2.2")),
		in:      Inputs{Health: unhealthy("192.0.2.2")},
		want:    want{v1alpha1.ReasonEndpointsReady, v1alpha1.ReasonStaticAddresses, v1alpha1.ReasonUnhealthy},
		message: "1/2",
	}}
	// Each failure of the resolver is the Resolved condition's reason, and
	// the last known addresses stay published meanwhile.
	for _, reason := range []string{v1alpha1.ReasonTimeout, v1alpha1.ReasonServerFailure, v1alpha1.ReasonNameNotFound,
		v1alpha1.ReasonRefused, v1alpha1.ReasonNoAddresses, v1alpha1.ReasonQueryFailed} {
		tests = append(tests, struct {
			name     string
			spec     v1alpha1.ExternalBackendSpec
			in       Inputs
			applyErr error
			want     want
			message  string
		}{
			name:    "resolver failure " + reason,
			spec:    addresses("a.example.com", "b.example.com"),
			in:      Inputs{Names: []Name{resolved("a.example.com", "192.0.2.1"), failing("b.example.com", reason, "192.0.2.2")}},
			want:    want{v1alpha1.ReasonEndpointsReady, reason, v1alpha1.ReasonHealthCheckDisabled},
			message: "2/2",
		})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xb := backend(tt.spec)
			tt.in.Allow, tt.in.Now = allow, now
			st := Compute(xb, tt.in).Status(tt.applyErr)
			for condType, reason := range map[string]string{
				v1alpha1.ConditionReady: tt.want.ready, v1alpha1.ConditionResolved: tt.want.resolved, v1alpha1.ConditionHealthy: tt.want.healthy,
			} {
				c := meta.FindStatusCondition(st.Conditions, condType)
				if c == nil {
					t.Fatalf("no %s condition in %+v", condType, st.Conditions)
				}
				if c.Reason != reason {
					t.Errorf("%s: reason %s (%s), want %s", condType, c.Reason, c.Message, reason)
				}
				if c.ObservedGeneration != 3 || !c.LastTransitionTime.Time.Equal(now) {
					t.Errorf("%s: observedGeneration %d lastTransitionTime %s", condType, c.ObservedGeneration, c.LastTransitionTime)
				}
			}
			if ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); !strings.Contains(ready.Message, tt.message) {
				t.Errorf("Ready message %q, want it to contain %q", ready.Message, tt.message)
			}
		})
	}
}

func TestConditionStatusAndMessages(t *testing.T) {
	xb := backend(withHealthCheck(addresses("a.example.com", "b.example.com", "c.example.com", "192.0.2.9")))
	in := Inputs{
		Names: []Name{
			failing("a.example.com", v1alpha1.ReasonNameNotFound, "192.0.2.1"),
			failing("b.example.com", v1alpha1.ReasonTimeout),
			{Name: "c.example.com"},
		},
		Health: unhealthy("192.0.2.9"),
		Allow:  allow, Now: now,
	}
	st := Compute(xb, in).Status(nil)
	res := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionResolved)
	wantResolved := "a.example.com: query for a.example.com failed (keeping 1 last known address(es) until 2025-03-01T12:01:30Z); b.example.com: query for b.example.com failed"
	if res.Status != metav1.ConditionFalse || res.Reason != v1alpha1.ReasonNameNotFound || res.Message != wantResolved {
		t.Errorf("Resolved %s %s %q, want False, the first failing name's reason, and\n%q", res.Status, res.Reason, res.Message, wantResolved)
	}
	healthy := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionHealthy)
	if healthy.Status != metav1.ConditionFalse || healthy.Message != "1/2 address(es) fail HTTP checks: 192.0.2.9: connection refused" {
		t.Errorf("Healthy %s %q", healthy.Status, healthy.Message)
	}
	if ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); ready.Status != metav1.ConditionTrue {
		t.Errorf("Ready %s with one ready endpoint", ready.Status)
	}

	in.Names[1], in.Names[2] = resolved("b.example.com"), resolved("c.example.com")
	in.Names[0] = resolved("a.example.com", "192.0.2.1")
	if c := meta.FindStatusCondition(Compute(xb, in).Status(nil).Conditions, v1alpha1.ConditionResolved); c.Status != metav1.ConditionTrue || c.Message != "3 name(s) resolved to 1 address(es)" {
		t.Errorf("Resolved %s %q", c.Status, c.Message)
	}
	in.Names[0] = Name{Name: "a.example.com"}
	if c := meta.FindStatusCondition(Compute(xb, in).Status(nil).Conditions, v1alpha1.ConditionResolved); c.Message != "waiting for the first answer for a.example.com" {
		t.Errorf("Resolved %q", c.Message)
	}
}

func TestRowsAndEndpoints(t *testing.T) {
	xb := backend(withHealthCheck(addresses("192.0.2.1", "db.example.com", "127.0.0.1", "::ffff:192.0.2.1", "2001:db8::1")))
	in := Inputs{
		Names:  []Name{resolved("db.example.com", "192.0.2.1", "192.0.2.5", "127.0.0.9")},
		Health: unhealthy("2001:db8::1"),
		Allow:  allow, Now: now,
	}
	res := Compute(xb, in)
	exp := metav1.NewTime(expires.Truncate(time.Second))
	want := []v1alpha1.EndpointStatus{
		{Address: "192.0.2.1", Ready: true},
		{Address: "192.0.2.5", Host: "db.example.com", Ready: true, Expires: &exp},
		{Address: "127.0.0.9", Host: "db.example.com", Expires: &exp, Reason: v1alpha1.EndpointDenied, Message: "127.0.0.9 is inside 127.0.0.0/8 (--denied-cidrs)"},
		{Address: "127.0.0.1", Reason: v1alpha1.EndpointDenied, Message: "127.0.0.1 is inside 127.0.0.0/8 (--denied-cidrs)"},
		{Address: "2001:db8::1", Reason: v1alpha1.EndpointUnhealthy, Message: "connection refused"},
	}
	if fmt.Sprint(res.Rows) != fmt.Sprint(want) {
		t.Errorf("rows\n%v\nwant (spec order, one per address, IPv4-mapped unmapped)\n%v", res.Rows, want)
	}
	wantEndpoints := []desired.Endpoint{
		{Address: netip.MustParseAddr("192.0.2.1"), Ready: true},
		{Address: netip.MustParseAddr("192.0.2.5"), Ready: true},
		{Address: netip.MustParseAddr("2001:db8::1"), Ready: false},
	}
	if fmt.Sprint(res.Endpoints) != fmt.Sprint(wantEndpoints) {
		t.Errorf("endpoints %v, want the allowed rows %v", res.Endpoints, wantEndpoints)
	}
	var targets []string
	for _, tg := range ProbeTargets(xb, in) {
		targets = append(targets, tg.Addr.String()+"/"+tg.Host)
	}
	if got := strings.Join(targets, " "); got != "192.0.2.1/ 192.0.2.5/db.example.com 2001:db8::1/" {
		t.Errorf("probe targets %s: want every allowed address, healthy or not, and no denied one", got)
	}

	st := res.Status(nil)
	if st.Mode != v1alpha1.ModeResolved || st.ServiceName != "db" || st.ObservedGeneration != 3 ||
		st.ReadyEndpoints != 2 || st.TotalEndpoints != 3 || st.Ready != "2/3" {
		t.Errorf("status %+v", st)
	}
	if got := Compute(backend(addresses("192.0.2.1")), Inputs{Allow: allow}).Status(nil).Mode; got != v1alpha1.ModeStatic {
		t.Errorf("mode %s for IP literals", got)
	}
	if got := Compute(backend(alias), Inputs{Allow: allow}); got.Rows != nil || got.Endpoints != nil || got.Status(nil).Mode != v1alpha1.ModeAlias {
		t.Errorf("alias: rows %v endpoints %v", got.Rows, got.Endpoints)
	}
}

func TestEvents(t *testing.T) {
	exp := metav1.NewTime(expires.Truncate(time.Second))
	tests := []struct {
		name   string
		spec   v1alpha1.ExternalBackendSpec
		before []v1alpha1.EndpointStatus
		in     Inputs
		want   []Event
	}{{
		name: "a steady backend says nothing",
		spec: addresses("192.0.2.1", "127.0.0.1"),
		before: []v1alpha1.EndpointStatus{
			{Address: "192.0.2.1", Ready: true},
			{Address: "127.0.0.1", Reason: v1alpha1.EndpointDenied, Message: "127.0.0.1 is inside 127.0.0.0/8 (--denied-cidrs)"},
		},
	}, {
		name: "newly denied addresses, in one Event",
		spec: addresses("192.0.2.1", "127.0.0.1", "127.0.0.2"),
		before: []v1alpha1.EndpointStatus{
			{Address: "192.0.2.1", Ready: true},
			{Address: "127.0.0.1", Reason: v1alpha1.EndpointDenied, Message: "127.0.0.1 is inside 127.0.0.0/8 (--denied-cidrs)"},
		},
		want: []Event{{corev1.EventTypeWarning, v1alpha1.EventAddressDenied, "Deny",
			"1 address(es) left out by the address policy: 127.0.0.2 is inside 127.0.0.0/8 (--denied-cidrs)"}},
	}, {
		name:   "DNS answers came and went",
		spec:   addresses("db.example.com"),
		before: []v1alpha1.EndpointStatus{{Address: "192.0.2.1", Host: "db.example.com", Ready: true, Expires: &exp}, {Address: "192.0.2.2", Host: "db.example.com", Ready: true, Expires: &exp}},
		in:     Inputs{Names: []Name{resolved("db.example.com", "192.0.2.2", "192.0.2.3")}},
		want: []Event{{corev1.EventTypeNormal, v1alpha1.EventAddressesChanged, "Resolve",
			"DNS answers changed: added [192.0.2.3 (db.example.com)], removed [192.0.2.1 (db.example.com)]"}},
	}, {
		name:   "a resolved address in a denied range is denied, not added",
		spec:   addresses("db.example.com"),
		before: []v1alpha1.EndpointStatus{{Address: "192.0.2.1", Host: "db.example.com", Ready: true, Expires: &exp}},
		in:     Inputs{Names: []Name{resolved("db.example.com", "127.0.0.5")}},
		want: []Event{
			{corev1.EventTypeWarning, v1alpha1.EventAddressDenied, "Deny", "1 address(es) left out by the address policy: 127.0.0.5 is inside 127.0.0.0/8 (--denied-cidrs)"},
			{corev1.EventTypeNormal, v1alpha1.EventAddressesChanged, "Resolve", "DNS answers changed: added [], removed [192.0.2.1 (db.example.com)]"},
		},
	}, {
		name:   "health checks turned addresses not ready and ready again",
		spec:   withHealthCheck(addresses("192.0.2.1", "192.0.2.3", "192.0.2.2")),
		before: []v1alpha1.EndpointStatus{{Address: "192.0.2.1", Ready: true}, {Address: "192.0.2.3", Reason: v1alpha1.EndpointUnhealthy}, {Address: "192.0.2.2", Reason: v1alpha1.EndpointUnhealthy}},
		in:     Inputs{Health: unhealthy("192.0.2.1")},
		want: []Event{
			{corev1.EventTypeWarning, v1alpha1.EventEndpointsUnhealthy, "Probe", "not ready: 192.0.2.1: connection refused"},
			{corev1.EventTypeNormal, v1alpha1.EventEndpointsHealthy, "Probe", "ready again: 192.0.2.2, 192.0.2.3"},
		},
	}, {
		name: "new addresses are no health change, whatever their health",
		spec: withHealthCheck(addresses("192.0.2.1", "192.0.2.2")),
		in:   Inputs{Health: unhealthy("192.0.2.1")},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xb := backend(tt.spec)
			xb.Status.Endpoints = tt.before
			tt.in.Allow, tt.in.Now = allow, now
			if got := Compute(xb, tt.in).Events; fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("events\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestServiceConflict(t *testing.T) {
	xb := backend(addresses("192.0.2.1", "127.0.0.1"))
	earlier := metav1.NewTime(now.Add(-time.Hour))
	xb.Status = v1alpha1.ExternalBackendStatus{
		Endpoints: []v1alpha1.EndpointStatus{{Address: "192.0.2.1", Ready: true}},
		Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonEndpointsReady, LastTransitionTime: earlier},
			{Type: v1alpha1.ConditionResolved, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonStaticAddresses, LastTransitionTime: earlier},
		},
	}
	const message = "Service prod/db already exists and is not managed by this ExternalBackend"
	res := Compute(xb, Inputs{Conflict: message, Now: now})
	want := []Event{{corev1.EventTypeWarning, v1alpha1.EventServiceConflict, "Reconcile", message}}
	if fmt.Sprint(res.Events) != fmt.Sprint(want) {
		t.Errorf("events %v, want only %v (no address Events)", res.Events, want)
	}
	if res.Rows != nil || res.Endpoints != nil {
		t.Errorf("a conflicting backend publishes rows %v endpoints %v", res.Rows, res.Endpoints)
	}
	st := res.Status(nil)
	ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	if ready.Status != metav1.ConditionFalse || ready.Reason != v1alpha1.ReasonServiceConflict || ready.Message != message || !ready.LastTransitionTime.Time.Equal(now) {
		t.Errorf("Ready %+v", ready)
	}
	if resolved := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionResolved); resolved.Reason != v1alpha1.ReasonStaticAddresses || !resolved.LastTransitionTime.Equal(&earlier) {
		t.Errorf("Resolved %+v, want it kept: nothing was resolved", resolved)
	}
	if meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionHealthy) != nil {
		t.Errorf("Healthy set without looking at any health")
	}
	if st.Endpoints != nil || st.Ready != "0/0" || st.ObservedGeneration != 3 {
		t.Errorf("status %+v", st)
	}

	xb.Status = st
	if events := Compute(xb, Inputs{Conflict: message, Now: now.Add(time.Minute)}).Events; events != nil {
		t.Errorf("the conflict is reported again: %v", events)
	}
}

func TestLastTransitionTimeChangesOnlyWithTheStatus(t *testing.T) {
	xb := backend(withHealthCheck(addresses("192.0.2.1")))
	in := Inputs{Allow: allow, Now: now}
	xb.Status = Compute(xb, in).Status(nil)

	in.Now = now.Add(time.Minute)
	in.Health = unhealthy("192.0.2.1")
	st := Compute(xb, in).Status(nil)
	for condType, moved := range map[string]bool{v1alpha1.ConditionReady: true, v1alpha1.ConditionHealthy: true, v1alpha1.ConditionResolved: false} {
		c := meta.FindStatusCondition(st.Conditions, condType)
		if got := c.LastTransitionTime.Time.Equal(in.Now); got != moved {
			t.Errorf("%s (%s %s): lastTransitionTime %s, want it moved: %v", condType, c.Status, c.Reason, c.LastTransitionTime, moved)
		}
	}

	// False for another reason is no transition.
	xb.Status = st
	in.Now = now.Add(2 * time.Minute)
	c := meta.FindStatusCondition(Compute(xb, in).Status(errors.New("apply Service db: conflict")).Conditions, v1alpha1.ConditionReady)
	if c.Reason != v1alpha1.ReasonApplyFailed || !c.LastTransitionTime.Time.Equal(now.Add(time.Minute)) {
		t.Errorf("Ready %s since %s, want ApplyFailed since the earlier transition to False", c.Reason, c.LastTransitionTime)
	}
}

func TestServiceOwnership(t *testing.T) {
	xb := backend(addresses("192.0.2.1"))
	ours := func(clusterIP string, typ corev1.ServiceType) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "prod", OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "ExternalBackend", Name: "db", UID: "uid-1", Controller: ptr(true),
			}}},
			Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Type: typ},
		}
	}
	headless := backend(addresses("192.0.2.1"))
	headless.Spec.Headless = true
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "prod"}}
	adopter := backend(addresses("192.0.2.1"))
	adopter.Annotations = map[string]string{v1alpha1.AdoptAnnotation: "true"}
	handWritten := func(clusterIP string, mutate func(*corev1.Service)) *corev1.Service {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "prod"},
			Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, Type: corev1.ServiceTypeClusterIP},
		}
		if mutate != nil {
			mutate(svc)
		}
		return svc
	}
	withSelector := func(svc *corev1.Service) { svc.Spec.Selector = map[string]string{"app": "db"} }
	controlledByDeployment := func(svc *corev1.Service) {
		svc.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "db", UID: "other", Controller: ptr(true)}}
	}
	tests := []struct {
		name string
		xb   *v1alpha1.ExternalBackend
		live *corev1.Service
		want Ownership
	}{
		{"no Service yet", xb, nil, Ownership{}},
		{"hand-written, adoption asked", adopter, handWritten("10.96.0.10", nil), Ownership{Adopt: true}},
		{"hand-written with a selector", adopter, handWritten("10.96.0.10", withSelector), Ownership{Conflict: "Service prod/db cannot be adopted: it has a selector, so the endpoints controller writes its endpoints from Pods; remove spec.selector from the Service first, or choose another name for the ExternalBackend"}},
		{"controlled by another object", adopter, handWritten("10.96.0.10", controlledByDeployment), Ownership{Conflict: "Service prod/db cannot be adopted: it is controlled by Deployment db; only Services nobody controls are adopted"}},
		{"hand-written headless, backend not", adopter, handWritten(corev1.ClusterIPNone, nil), Ownership{Conflict: "Service prod/db cannot be adopted: its clusterIP is \"None\" and spec.headless is false, and adopting would mean deleting and recreating it; set spec.headless to match the Service"}},
		{"ours, unchanged", xb, ours("10.96.0.10", corev1.ServiceTypeClusterIP), Ownership{}},
		{"ours, not allocated yet", headless, ours("", corev1.ServiceTypeClusterIP), Ownership{}},
		{"ours, turning headless", headless, ours("10.96.0.10", corev1.ServiceTypeClusterIP), Ownership{Recreate: true}},
		{"ours, turning not headless", xb, ours(corev1.ClusterIPNone, corev1.ServiceTypeClusterIP), Ownership{Recreate: true}},
		{"ours, was an alias (type changes in place)", xb, ours("", corev1.ServiceTypeExternalName), Ownership{}},
		{"ours, becoming an alias", backend(alias), ours(corev1.ClusterIPNone, corev1.ServiceTypeClusterIP), Ownership{}},
		{"someone else's", xb, foreign, Ownership{Conflict: "Service prod/db already exists and is not managed by this ExternalBackend; delete or rename it, and the ExternalBackend will take the name, or annotate the ExternalBackend outpost.dev/adopt: \"true\" to take over a hand-written selectorless Service in place"}},
	}
	for _, tt := range tests {
		if got := ServiceOwnership(tt.xb, tt.live); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
