package status

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// groups is a backend with a primary (priority 0, zone a), a replica
// (priority 1, zone b) and a last resort (priority 2, zone c), resolving
// one name in the replica group.
func groups() v1alpha1.ExternalBackendSpec {
	return withHealthCheck(v1alpha1.ExternalBackendSpec{
		Ports: []v1alpha1.BackendPort{{Port: 80}},
		AddressGroups: []v1alpha1.AddressGroup{
			{Priority: 2, Zone: "c", Addresses: []string{"192.0.2.30"}},
			{Priority: 0, Zone: "a", Addresses: []string{"192.0.2.1", "192.0.2.2"}},
			{Priority: 1, Zone: "b", Addresses: []string{"replica.example.com"}},
		},
	})
}

func TestFailoverPublishesOnlyTheBestGroupWithAReadyAddress(t *testing.T) {
	replica := resolved("replica.example.com", "192.0.2.20")
	tests := []struct {
		name      string
		unhealthy []string
		// want lists each row as address=ready|reason.
		want string
	}{
		{"all healthy: the primary serves, the others stand by", nil,
			"192.0.2.1=ready 192.0.2.2=ready 192.0.2.20=Standby 192.0.2.30=Standby"},
		{"one primary down: the other primary still serves", []string{"192.0.2.1"},
			"192.0.2.1=Unhealthy 192.0.2.2=ready 192.0.2.20=Standby 192.0.2.30=Standby"},
		{"every primary down: the replica serves", []string{"192.0.2.1", "192.0.2.2"},
			"192.0.2.1=Unhealthy 192.0.2.2=Unhealthy 192.0.2.20=ready 192.0.2.30=Standby"},
		{"primaries and replica down: the last resort serves", []string{"192.0.2.1", "192.0.2.2", "192.0.2.20"},
			"192.0.2.1=Unhealthy 192.0.2.2=Unhealthy 192.0.2.20=Unhealthy 192.0.2.30=ready"},
		{"the replica down while the primary serves: the last resort stays standing by", []string{"192.0.2.20"},
			"192.0.2.1=ready 192.0.2.2=ready 192.0.2.20=Unhealthy 192.0.2.30=Standby"},
		{"everything down: nothing is ready", []string{"192.0.2.1", "192.0.2.2", "192.0.2.20", "192.0.2.30"},
			"192.0.2.1=Unhealthy 192.0.2.2=Unhealthy 192.0.2.20=Unhealthy 192.0.2.30=Unhealthy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Compute(backend(groups()), Inputs{Allow: allow, Names: []Name{replica}, Health: unhealthy(tc.unhealthy...), Now: now})
			var got []string
			for _, row := range res.Rows {
				state := row.Reason
				if row.Ready {
					state = "ready"
				}
				got = append(got, row.Address+"="+state)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("rows %s\nwant %s", g, tc.want)
			}
			// The endpoints carry the same readiness and their group's zone.
			for i, ep := range res.Endpoints {
				row := res.Rows[i]
				if ep.Ready != row.Ready || ep.Zone != row.Zone || row.Zone == "" || row.Priority == nil {
					t.Errorf("endpoint %+v for row %+v", ep, row)
				}
			}
		})
	}
}

func TestFailoverLeavesUngroupedAddressesAlone(t *testing.T) {
	res := Compute(backend(withHealthCheck(addresses("192.0.2.1", "192.0.2.2"))), Inputs{Allow: allow, Health: unhealthy("192.0.2.1"), Now: now})
	for _, row := range res.Rows {
		if row.Reason == v1alpha1.EndpointStandby || row.Priority != nil || row.Zone != "" {
			t.Errorf("row of spec.addresses %+v", row)
		}
	}
	if !res.Rows[1].Ready {
		t.Errorf("healthy address of spec.addresses not ready: %+v", res.Rows[1])
	}
}

func TestFailoverEventsAndReadyCondition(t *testing.T) {
	replica := resolved("replica.example.com", "192.0.2.20")
	served := func(down ...string) *v1alpha1.ExternalBackend {
		xb := backend(groups())
		res := Compute(xb, Inputs{Allow: allow, Names: []Name{replica}, Health: unhealthy(down...), Now: now})
		xb.Status = res.Status(nil)
		return xb
	}
	tests := []struct {
		name         string
		before       *v1alpha1.ExternalBackend
		down         []string
		wantEvent    string
		wantReadyMsg string
	}{
		{"steady: no failover Event", served(), nil, "", "2/4 endpoints ready; serving the group of priority 0, 2 healthy address(es) of other groups standing by"},
		{"the primaries fail: FailedOver", served(), []string{"192.0.2.1", "192.0.2.2"},
			"Warning FailedOver serving the group of priority 1 instead of 0: ready 192.0.2.20; the group of priority 0 has no ready address",
			"1/4 endpoints ready; serving the group of priority 1, 1 healthy address(es) of other groups standing by"},
		{"a primary recovers: FailedBack", served("192.0.2.1", "192.0.2.2"), []string{"192.0.2.2"},
			"Normal FailedBack serving the group of priority 0 instead of 1: ready 192.0.2.1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Compute(tc.before, Inputs{Allow: allow, Names: []Name{replica}, Health: unhealthy(tc.down...), Now: now})
			var failover []string
			for _, e := range res.Events {
				switch e.Reason {
				case v1alpha1.EventFailedOver, v1alpha1.EventFailedBack:
					failover = append(failover, fmt.Sprintf("%s %s %s", e.Type, e.Reason, e.Note))
				case v1alpha1.EventEndpointsHealthy, v1alpha1.EventEndpointsUnhealthy:
					// Standing by or serving is not a change of health.
					if strings.Contains(e.Note, "192.0.2.20") || strings.Contains(e.Note, "192.0.2.30") {
						t.Errorf("health Event about a healthy replica: %+v", e)
					}
				}
			}
			if got := strings.Join(failover, "\n"); got != tc.wantEvent {
				t.Errorf("failover Events %q, want %q", got, tc.wantEvent)
			}
			if tc.wantReadyMsg != "" {
				c := meta.FindStatusCondition(res.Status(nil).Conditions, v1alpha1.ConditionReady)
				if c.Message != tc.wantReadyMsg {
					t.Errorf("Ready message %q, want %q", c.Message, tc.wantReadyMsg)
				}
			}
		})
	}
}

func TestStandbyAddressesAreNotHeldBackAfterARestart(t *testing.T) {
	xb := backend(groups())
	xb.Status.Endpoints = []v1alpha1.EndpointStatus{
		{Address: "192.0.2.1", Ready: true},
		{Address: "192.0.2.30", Reason: v1alpha1.EndpointStandby},
		{Address: "192.0.2.2", Reason: v1alpha1.EndpointUnhealthy},
	}
	p := ReadPublished(xb, nil)
	if fmt.Sprint(p.NotReady) != "map[192.0.2.2:true]" {
		t.Errorf("NotReady %v, want only the unhealthy 192.0.2.2", p.NotReady)
	}
}
