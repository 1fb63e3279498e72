package status

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/probe"
	"github.com/outpost-dev/outpost/operator/resolve"
)

func slice(ready map[string]bool) discoveryv1.EndpointSlice {
	var s discoveryv1.EndpointSlice
	for _, a := range slices.Sorted(func(yield func(string) bool) {
		for a := range ready {
			if !yield(a) {
				return
			}
		}
	}) {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready[a])}})
	}
	return s
}

func TestReadPublished(t *testing.T) {
	lastResolved := metav1.NewTime(now.Add(-time.Minute))
	row := func(addr, host, reason string) v1alpha1.EndpointStatus {
		r := v1alpha1.EndpointStatus{Address: addr, Host: host, Reason: reason, Ready: reason == ""}
		if host != "" {
			r.Expires, r.LastResolved = &metav1.Time{Time: expires}, &lastResolved
		}
		return r
	}
	known := func(name, addr string, withTimes bool) resolve.Known {
		k := resolve.Known{Name: name, Addr: netip.MustParseAddr(addr)}
		if withTimes {
			k.Expires, k.Confirmed = expires, lastResolved.Time
		}
		return k
	}
	for _, tc := range []struct {
		name         string
		spec         v1alpha1.ExternalBackendSpec
		rows         []v1alpha1.EndpointStatus
		slices       []discoveryv1.EndpointSlice
		wantKnown    []resolve.Known
		wantNotReady []string
	}{
		{name: "nothing published"},
		{
			name:      "rows and slices agree: the rows' names and times",
			spec:      addresses("db.example.com", "192.0.2.9"),
			rows:      []v1alpha1.EndpointStatus{row("192.0.2.1", "db.example.com", ""), row("192.0.2.9", "", "")},
			slices:    []discoveryv1.EndpointSlice{slice(map[string]bool{"192.0.2.1": true, "192.0.2.9": true})},
			wantKnown: []resolve.Known{known("db.example.com", "192.0.2.1", true)},
		},
		{
			name:         "unhealthy row, no slice (written before a crash): not ready",
			spec:         addresses("db.example.com"),
			rows:         []v1alpha1.EndpointStatus{row("192.0.2.1", "db.example.com", v1alpha1.EndpointUnhealthy)},
			wantKnown:    []resolve.Known{known("db.example.com", "192.0.2.1", true)},
			wantNotReady: []string{"192.0.2.1"},
		},
		{
			name:         "the slice is newer than the row: its readiness wins",
			spec:         addresses("192.0.2.1", "192.0.2.2"),
			rows:         []v1alpha1.EndpointStatus{row("192.0.2.1", "", v1alpha1.EndpointUnhealthy), row("192.0.2.2", "", "")},
			slices:       []discoveryv1.EndpointSlice{slice(map[string]bool{"192.0.2.1": true, "192.0.2.2": false})},
			wantNotReady: []string{"192.0.2.2"},
		},
		{
			name:   "a slice address no row has: known for every name, times unknown",
			spec:   addresses("a.example.com", "b.example.com", "192.0.2.9"),
			rows:   []v1alpha1.EndpointStatus{row("192.0.2.1", "a.example.com", "")},
			slices: []discoveryv1.EndpointSlice{slice(map[string]bool{"192.0.2.1": true, "192.0.2.5": true, "192.0.2.9": true})},
			wantKnown: []resolve.Known{known("a.example.com", "192.0.2.1", true),
				known("a.example.com", "192.0.2.5", false), known("b.example.com", "192.0.2.5", false)},
		},
		{
			name: "denied rows were never published",
			spec: addresses("db.example.com"),
			rows: []v1alpha1.EndpointStatus{row("127.0.0.1", "db.example.com", v1alpha1.EndpointDenied)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xb := backend(tc.spec)
			xb.Status.Endpoints = tc.rows
			p := ReadPublished(xb, tc.slices)
			if fmt.Sprint(p.Known) != fmt.Sprint(tc.wantKnown) {
				t.Errorf("known\n%v, want\n%v", p.Known, tc.wantKnown)
			}
			var notReady []string
			for a := range p.NotReady {
				notReady = append(notReady, a.String())
			}
			slices.Sort(notReady)
			if !slices.Equal(notReady, tc.wantNotReady) {
				t.Errorf("not ready %v, want %v", notReady, tc.wantNotReady)
			}
		})
	}
}

func TestRestartKeepsWhatWasPublished(t *testing.T) {
	xb := backend(withHealthCheck(addresses("db.example.com")))
	restored := resolve.State{Addresses: []resolve.Address{
		{Addr: netip.MustParseAddr("192.0.2.1"), Expires: expires, Confirmed: now.Add(-time.Minute)},
		{Addr: netip.MustParseAddr("192.0.2.2"), Expires: expires, Confirmed: now.Add(-time.Minute)},
	}}
	in := Inputs{
		Names:     []Name{{Name: "db.example.com", State: restored}},
		Allow:     allow,
		Now:       now,
		Published: Published{NotReady: map[netip.Addr]bool{netip.MustParseAddr("192.0.2.2"): true}},
	}
	targets := ProbeTargets(xb, in)
	if len(targets) != 2 || targets[0].StartNotReady || !targets[1].StartNotReady {
		t.Errorf("probe targets %+v, want only 192.0.2.2 to start not ready", targets)
	}
	in.Health = map[netip.Addr]probe.Status{netip.MustParseAddr("192.0.2.2"): {Ready: false}}
	res := Compute(xb, in)
	if len(res.Endpoints) != 2 || !res.Endpoints[0].Ready || res.Endpoints[1].Ready {
		t.Errorf("endpoints %+v, want both, the second not ready", res.Endpoints)
	}
	if r := res.Rows[0]; r.LastResolved == nil || !r.LastResolved.Time.Equal(now.Add(-time.Minute)) || r.Host != "db.example.com" {
		t.Errorf("row %+v, want the last resolution carried", r)
	}
	if !strings.Contains(res.Rows[1].Message, "before the operator started") {
		t.Errorf("row message %q, want it to say why the address is not ready yet", res.Rows[1].Message)
	}
	c := meta.FindStatusCondition(res.Status(nil).Conditions, v1alpha1.ConditionResolved)
	if want := "waiting for the first answer for db.example.com (keeping its 2 last known address(es) meanwhile)"; c.Message != want {
		t.Errorf("Resolved %q, want %q", c.Message, want)
	}
}

func TestJoinBounded(t *testing.T) {
	items := []string{"aaaa", "bbbb", "cccc", "dddd"}
	for _, tc := range []struct {
		limit int
		want  string
	}{
		{100, "aaaa, bbbb, cccc, dddd"},
		{22, "aaaa, bbbb, cccc, dddd"},
		{21, "aaaa, …and 3 more"},
		{19, "aaaa, …and 3 more"},
		{18, "…and 4 more"},
		{14, "…and 4 more"},
		{3, ""},
	} {
		got := JoinBounded(items, ", ", tc.limit)
		if got != tc.want || len(got) > tc.limit {
			t.Errorf("limit %d: %q, want %q", tc.limit, got, tc.want)
		}
	}
	if got := truncate("ééé", 4); got != "…" && len(got) > 4 {
		t.Errorf("truncate cut a rune: %q", got)
	}
}

// Thousands of failing addresses must not make the API server refuse the
// status update or the Events.
func TestThousandsOfFailingAddressesStayWithinTheAPILimits(t *testing.T) {
	var addrs []string
	var wereReady []v1alpha1.EndpointStatus
	health := map[netip.Addr]probe.Status{}
	for i := range 4000 {
		a := netip.AddrFrom4([4]byte{10, 1, byte(i / 256), byte(i % 256)})
		addrs = append(addrs, a.String())
		wereReady = append(wereReady, v1alpha1.EndpointStatus{Address: a.String(), Ready: true})
		health[a] = probe.Status{Known: true, LastError: "dial tcp " + a.String() + ":80: connect: connection refused"}
	}
	denyAll := func(ip netip.Addr) error { return fmt.Errorf("%s is inside 10.0.0.0/8 (--denied-cidrs)", ip) }
	for _, tc := range []struct {
		name  string
		allow func(netip.Addr) error
	}{{"unhealthy", allow}, {"denied", denyAll}} {
		t.Run(tc.name, func(t *testing.T) {
			xb := backend(withHealthCheck(addresses(addrs...)))
			xb.Status.Endpoints = wereReady
			res := Compute(xb, Inputs{Allow: tc.allow, Health: health, Now: now})
			for _, c := range res.Status(nil).Conditions {
				if len(c.Message) > MaxConditionMessage {
					t.Errorf("%s message is %d bytes, over the API's %d", c.Type, len(c.Message), MaxConditionMessage)
				}
			}
			if len(res.Events) == 0 {
				t.Fatal("no Event")
			}
			for _, e := range res.Events {
				if len(e.Note) > MaxEventNote || !strings.HasSuffix(e.Note, " more") {
					t.Errorf("%s note is %d bytes (limit %d), ends %q", e.Reason, len(e.Note), MaxEventNote, e.Note[max(0, len(e.Note)-30):])
				}
			}
		})
	}
	c := meta.FindStatusCondition(Compute(backend(withHealthCheck(addresses(addrs...))), Inputs{Allow: allow, Health: health, Now: now}).Status(nil).Conditions, v1alpha1.ConditionHealthy)
	if !strings.HasPrefix(c.Message, "4000/4000 address(es) fail HTTP checks: 10.1.0.0: dial tcp") || !strings.HasSuffix(c.Message, " more") {
		t.Errorf("Healthy message %q...%q", c.Message[:60], c.Message[len(c.Message)-30:])
	}
}
