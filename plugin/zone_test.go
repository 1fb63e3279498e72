package outpost

import (
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
)

// zoneOf must pick the zone CoreDNS' own matcher picks, for every name.
func TestZoneOfIsZonesMatches(t *testing.T) {
	zoneSets := [][]string{
		{"cluster.local.", "in-addr.arpa.", "ip6.arpa."},
		{"cluster.local.", "svc.cluster.local."},
		{"."},
		{"example.", "."},
	}
	names := []string{
		"svc-1.ns.svc.cluster.local.", "SVC-1.NS.SVC.Cluster.Local.", "cluster.local.", "Cluster.Local.",
		"xcluster.local.", "cluster.localx.", "local.", ".", "a.b.c.", "x.svc.cluster.local.",
		"1.0.96.10.in-addr.arpa.", "in-addr.arpa.", "ip6.arpa.", "xip6.arpa.",
		"a\\.cluster.local.", "a.cluster\\.local.", "cluster.local", "a.cluster.local",
		"a.cluster.loca\u212a.", "a.cluster.LOCAL.", "a..cluster.local.", "example.", "x.EXAMPLE.",
	}
	for _, zones := range zoneSets {
		for _, name := range names {
			if got, want := zoneOf(zones, name), plugin.Zones(zones).Matches(name); got != want {
				t.Errorf("zoneOf(%q, %q) = %q, plugin.Zones.Matches says %q", zones, name, got, want)
			}
		}
	}
}

func FuzzZoneOf(f *testing.F) {
	for _, s := range []string{"a.cluster.local.", "Cluster.Local.", "x.in-addr.arpa.", "a\\.b.", "."} {
		f.Add(s)
	}
	zones := []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa.", "svc.cluster.local."}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := zoneOf(zones, name), plugin.Zones(zones).Matches(name); got != want {
			t.Errorf("zoneOf(%q) = %q, plugin.Zones.Matches says %q", name, got, want)
		}
	})
}

// presentationName must give what request.Request's QName gives.
func TestPresentationNameIsNameString(t *testing.T) {
	for _, name := range []string{".", "a.", "svc-1.ns.svc.cluster.local.", "_http._tcp.a.b.", "A.B", "a..b.", ".a.", "..",
		"a b.", "a\\.b.", "a\\032b.", "a(b).", "a@b.", "a;b.", "a\"b.", "\x00.", "\xff.", "a*.b.", ""} {
		if got, want := presentationName(name), dns.Name(name).String(); got != want {
			t.Errorf("presentationName(%q) = %q, dns.Name.String() says %q", name, got, want)
		}
	}
}

func FuzzPresentationName(f *testing.F) {
	for _, s := range []string{"a.cluster.local.", "a..b.", "a\\.b.", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := presentationName(name), dns.Name(name).String(); got != want {
			t.Errorf("presentationName(%q) = %q, dns.Name.String() says %q", name, got, want)
		}
	})
}
