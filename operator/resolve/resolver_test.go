package resolve

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
)

func newResolver(t *testing.T, timeout time.Duration, servers ...string) *Resolver {
	t.Helper()
	r, err := NewResolver(servers, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestResolveAnswers(t *testing.T) {
	srv := dnsserver.Start(t)
	srv.SetA("db.example.test", 42, "198.51.100.7", "198.51.100.3")
	srv.SetAAAA("db.example.test", 41, "2001:db8::7")
	srv.SetCNAME("alias.example.test", 30, "alias2.example.test")
	srv.SetCNAME("alias2.example.test", 20, "db.example.test")
	srv.SetA("v6only.example.test", 60)
	srv.SetAAAA("v6only.example.test", 60, "2001:db8::1")
	r := newResolver(t, time.Second, srv.Addr)

	tests := []struct {
		name      string
		family    corev1.IPFamily
		wantAddrs []netip.Addr
		wantTTL   time.Duration
		wantChain []string
	}{
		{"db.example.test", corev1.IPv4Protocol, addrs("198.51.100.3", "198.51.100.7"), 42 * time.Second, nil},
		{"DB.Example.Test.", corev1.IPv4Protocol, addrs("198.51.100.3", "198.51.100.7"), 42 * time.Second, nil},
		{"db.example.test", corev1.IPv6Protocol, addrs("2001:db8::7"), 41 * time.Second, nil},
		{"alias.example.test", corev1.IPv4Protocol, addrs("198.51.100.3", "198.51.100.7"), 20 * time.Second,
			[]string{"alias2.example.test", "db.example.test"}},
		// NODATA: the negative TTL comes from the SOA.
		{"v6only.example.test", corev1.IPv4Protocol, nil, dnsserver.NegativeTTL * time.Second, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+string(tt.family), func(t *testing.T) {
			ans, err := r.Resolve(context.Background(), tt.name, tt.family)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ans.Addrs, tt.wantAddrs) || ans.TTL != tt.wantTTL || !slices.Equal(ans.Chain, tt.wantChain) {
				t.Errorf("got addrs %v ttl %s chain %v; want %v %s %v", ans.Addrs, ans.TTL, ans.Chain, tt.wantAddrs, tt.wantTTL, tt.wantChain)
			}
		})
	}
}

func TestResolveFollowsCNAMEAcrossQueries(t *testing.T) {
	srv := dnsserver.Start(t)
	srv.ChaseCNAME(false) // the server returns only the CNAME, like one not authoritative for the target
	srv.SetCNAME("mydb.example.test", 300, "mydb-primary.example.test")
	srv.SetA("mydb-primary.example.test", 5, "203.0.113.10")
	ans, err := newResolver(t, time.Second, srv.Addr).Resolve(context.Background(), "mydb.example.test", corev1.IPv4Protocol)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ans.Addrs, addrs("203.0.113.10")) || ans.TTL != 5*time.Second {
		t.Errorf("got %v ttl %s; want 203.0.113.10 ttl 5s", ans.Addrs, ans.TTL)
	}
	if n := len(srv.Queries("mydb-primary.example.test", dns.TypeA)); n != 1 {
		t.Errorf("target asked %d times, want 1", n)
	}
}

func TestResolveFallsBackToTCPWhenTruncated(t *testing.T) {
	srv := dnsserver.Start(t)
	srv.TruncateUDP(true)
	srv.SetA("big.example.test", 60, "198.51.100.1")
	ans, err := newResolver(t, time.Second, srv.Addr).Resolve(context.Background(), "big.example.test", corev1.IPv4Protocol)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ans.Addrs, addrs("198.51.100.1")) {
		t.Errorf("got %v", ans.Addrs)
	}
	var protos []string
	for _, q := range srv.Queries("big.example.test", dns.TypeA) {
		protos = append(protos, q.Proto)
	}
	if !slices.Equal(protos, []string{"udp", "tcp"}) {
		t.Errorf("queries went over %v, want [udp tcp]", protos)
	}
}

func TestResolveAsksNextServerWhenOneFails(t *testing.T) {
	dead, good := dnsserver.Start(t), dnsserver.Start(t)
	dead.Fail("db.example.test", dnsserver.Drop)
	good.SetA("db.example.test", 60, "198.51.100.9")
	ans, err := newResolver(t, 200*time.Millisecond, dead.Addr, good.Addr).Resolve(context.Background(), "db.example.test", corev1.IPv4Protocol)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ans.Addrs, addrs("198.51.100.9")) {
		t.Errorf("got %v", ans.Addrs)
	}
}

func TestResolveFailureReasons(t *testing.T) {
	srv := dnsserver.Start(t)
	srv.SetA("servfail.example.test", 60, "198.51.100.1")
	srv.Fail("servfail.example.test", dnsserver.ServFail)
	srv.Fail("refused.example.test", dnsserver.Refused)
	srv.Fail("silent.example.test", dnsserver.Drop)
	srv.SetCNAME("dangling.example.test", 60, "gone.example.test")
	srv.SetCNAME("loop1.example.test", 60, "loop2.example.test")
	srv.SetCNAME("loop2.example.test", 60, "loop1.example.test")
	r := newResolver(t, 300*time.Millisecond, srv.Addr)

	tests := []struct {
		name       string
		wantReason string
		wantText   []string
	}{
		{"missing.example.test", v1alpha1.ReasonNameNotFound, []string{"missing.example.test", "NXDOMAIN", "no such name", srv.Addr}},
		{"dangling.example.test", v1alpha1.ReasonNameNotFound, []string{"NXDOMAIN", "CNAME target gone.example.test does not exist"}},
		{"servfail.example.test", v1alpha1.ReasonServerFailure, []string{"SERVFAIL", srv.Addr}},
		{"refused.example.test", v1alpha1.ReasonRefused, []string{"REFUSED"}},
		{"silent.example.test", v1alpha1.ReasonTimeout, []string{"A query to " + srv.Addr + " timed out after 300ms"}},
		{"loop1.example.test", v1alpha1.ReasonQueryFailed, []string{"CNAME chain longer than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Resolve(context.Background(), tt.name, corev1.IPv4Protocol)
			re, ok := err.(*Error)
			if !ok {
				t.Fatalf("got error %v (%T), want *Error", err, err)
			}
			if re.Reason != tt.wantReason {
				t.Errorf("reason %s, want %s (%s)", re.Reason, tt.wantReason, re.Message)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(re.Message, s) {
					t.Errorf("message %q does not mention %q", re.Message, s)
				}
			}
		})
	}
}

func TestParseServer(t *testing.T) {
	for in, want := range map[string]string{
		"10.96.0.10":     "10.96.0.10:53",
		"127.0.0.1:5353": "127.0.0.1:5353",
		"::1":            "[::1]:53",
		"[::1]:5353":     "[::1]:5353",
		"dns.local:53":   "dns.local:53",
	} {
		if got, err := ParseServer(in); err != nil || got != want {
			t.Errorf("ParseServer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "dns.local", "1.2.3.4:0", "1.2.3.4:99999", ":53"} {
		if _, err := ParseServer(bad); err == nil {
			t.Errorf("ParseServer(%q) accepted", bad)
		}
	}
}

func TestServersFromResolvConf(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	if err := writeFile(path, "search default.svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\noptions ndots:5\n"); err != nil {
		t.Fatal(err)
	}
	got, err := ServersFromResolvConf(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.96.0.10:53", "[fd00::a]:53"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
