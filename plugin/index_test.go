package outpost

import (
	"net/netip"
	"testing"

	"k8s.io/client-go/tools/cache"
)

// TestEndpointIPBookkeeping follows one address through two slices (of two
// Services) as they are added, replaced and deleted: reverse lookups must
// always see exactly the slices that hold it.
func TestEndpointIPBookkeeping(t *testing.T) {
	x := newIndex()
	ip := netip.MustParseAddr("198.51.100.7")
	v6 := netip.MustParseAddr("2001:db8::7")
	a := slice("a-1", "ns", "a", []Port{httpPort}, Endpoint{Addr: parseAddress("198.51.100.7")}, Endpoint{Addr: parseAddress("2001:db8::7")})
	b := slice("b-1", "ns", "b", []Port{httpPort}, Endpoint{Addr: parseAddress("198.51.100.7")})
	want := func(addr netip.Addr, slices ...*EndpointSlice) {
		t.Helper()
		got := x.slicesWithIP(addr)
		if len(got) != len(slices) {
			t.Fatalf("%s: %d slices, want %d", addr, len(got), len(slices))
		}
		for _, s := range slices {
			found := false
			for _, g := range got {
				found = found || g == s
			}
			if !found {
				t.Fatalf("%s: slice %s missing", addr, s.Name)
			}
		}
	}
	x.setSlice(a)
	x.setSlice(b)
	want(ip, a, b)
	want(v6, a)
	x.deleteSlice(a)
	want(ip, b)
	want(v6)
	// Replacing b with a version without the address drops it.
	b2 := slice("b-1", "ns", "b", []Port{httpPort}, Endpoint{Addr: parseAddress("198.51.100.8")})
	x.setSlice(b2)
	want(ip)
	want(netip.MustParseAddr("198.51.100.8"), b2)
	if e := x.lookup("ns", "a"); e != nil {
		t.Errorf("entry of a kept after its only slice went: %+v", e)
	}
	x.deleteSlice(b2)
	if len(x.services) != 0 || len(x.endpointIPv4) != 0 || len(x.endpointIPv6) != 0 || len(x.moreEndpointIPs) != 0 {
		t.Errorf("index not empty after deleting everything: %+v", x)
	}
}

// TestRelistDeletesWhatTheIndexHolds is the contract between the index and
// the list-watch queues (there is no informer store): when a relist lacks
// something the index holds, the queue must hand its deletion to the
// controller, with the object, for every kind.
func TestRelistDeletesWhatTheIndexHolds(t *testing.T) {
	x := newIndex()
	x.setService(svc("kept", "ns", []string{"10.0.0.1"}, httpPort))
	x.setService(svc("gone", "ns", []string{"10.0.0.2"}, httpPort))
	x.setSlice(slice("kept-1", "ns", "kept", []Port{httpPort}, Endpoint{Addr: parseAddress("198.51.100.1")}))
	x.setSlice(slice("gone-1", "ns", "gone", []Port{httpPort}, Endpoint{Addr: parseAddress("198.51.100.2")}))
	x.setNamespace("ns")
	x.setNamespace("old")

	relist := func(kind string, listed ...any) (deleted []string) {
		t.Helper()
		q := newQueue(x, kind, nil)
		if err := q.Replace(listed, "1"); err != nil {
			t.Fatal(err)
		}
		for range len(listed) + 1 {
			_, err := q.Pop(func(obj any, _ bool) error {
				for _, d := range obj.(cache.Deltas) {
					if d.Type != cache.Deleted {
						continue
					}
					gone, ok := d.Object.(cache.DeletedFinalStateUnknown)
					if !ok || gone.Obj == nil {
						t.Errorf("%s: deletion without the object: %#v", kind, d.Object)
						continue
					}
					deleted = append(deleted, gone.Key)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return deleted
	}
	for _, tc := range []struct {
		kind   string
		listed []any
		want   string
	}{
		{kindService, []any{svc("kept", "ns", []string{"10.0.0.1"}, httpPort)}, "ns/gone"},
		{kindEndpointSlice, []any{slice("kept-1", "ns", "kept", []Port{httpPort})}, "ns/gone-1"},
		{kindNamespace, []any{&Namespace{Name: "ns"}}, "old"},
	} {
		if got := relist(tc.kind, tc.listed...); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s relist deleted %v, want [%s]", tc.kind, got, tc.want)
		}
	}
}
