package resolve

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o644) }

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func TestFollowAnswer(t *testing.T) {
	msg := &dns.Msg{Answer: []dns.RR{
		mustRR(t, "www.example.test. 300 IN CNAME edge.example.test."),
		mustRR(t, "edge.example.test. 60 IN CNAME host.example.test."),
		mustRR(t, "host.example.test. 120 IN A 198.51.100.4"),
		mustRR(t, "host.example.test. 90 IN A 198.51.100.5"),
		// Not on the chain: a server must not be able to slip these in.
		mustRR(t, "www.example.test. 10 IN A 203.0.113.66"),
		mustRR(t, "other.example.test. 1 IN A 203.0.113.67"),
	}}
	got, ok := followAnswer(msg, "WWW.example.test.", dns.TypeA)
	if !ok {
		t.Fatal("chain not followed")
	}
	if !slices.Equal(got.addrs, addrs("198.51.100.4", "198.51.100.5")) {
		t.Errorf("addrs %v", got.addrs)
	}
	if got.ttl != 60*time.Second {
		t.Errorf("ttl %s, want the smallest on the chain, 60s", got.ttl)
	}
	if !slices.Equal(got.chain, []string{"edge.example.test.", "host.example.test."}) || got.target != "host.example.test." {
		t.Errorf("chain %v target %s", got.chain, got.target)
	}
}

func TestFollowAnswerStopsOnLoop(t *testing.T) {
	msg := &dns.Msg{Answer: []dns.RR{
		mustRR(t, "a.example.test. 300 IN CNAME b.example.test."),
		mustRR(t, "b.example.test. 300 IN CNAME a.example.test."),
	}}
	if _, ok := followAnswer(msg, "a.example.test.", dns.TypeA); ok {
		t.Error("CNAME loop accepted")
	}
}

func TestFollowAnswerSkipsIPv4MappedAAAA(t *testing.T) {
	msg := &dns.Msg{Answer: []dns.RR{
		mustRR(t, "v6.example.test. 60 IN AAAA ::ffff:198.51.100.1"),
		mustRR(t, "v6.example.test. 60 IN AAAA 2001:db8::1"),
	}}
	got, _ := followAnswer(msg, "v6.example.test.", dns.TypeAAAA)
	if !slices.Equal(got.addrs, addrs("2001:db8::1")) {
		t.Errorf("addrs %v, want only the real IPv6 address", got.addrs)
	}
}
