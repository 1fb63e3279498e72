package outpost

import (
	"net/netip"
	"testing"
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
