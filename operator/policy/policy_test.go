package policy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	p, err := Parse(DefaultDeniedCIDRs, "10.96.0.0/12,fd00:10:96::/112", "10.244.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		addr   string
		denied string // substring of the error, "" when allowed
	}{
		{"192.168.1.2", ""},
		{"203.0.113.10", ""},
		{"2001:db8::1", ""},
		{"127.0.0.1", "127.0.0.0/8, denied by --denied-cidrs"},
		{"::1", "::1/128"},
		{"169.254.169.254", "169.254.0.0/16"},
		{"fe80::1", "fe80::/10"},
		{"0.0.0.0", "not a unicast address"},
		{"::", "not a unicast address"},
		{"224.0.0.1", "not a unicast address"},
		{"10.96.0.10", "denied by --service-cidr"},
		{"fd00:10:96::a", "denied by --service-cidr"},
		{"10.244.3.7", "denied by --pod-cidr"},
		{"::ffff:127.0.0.1", "127.0.0.0/8"}, // IPv4-mapped loopback must not slip through
	}
	for _, c := range cases {
		err := p.Check(netip.MustParseAddr(c.addr))
		switch {
		case c.denied == "" && err != nil:
			t.Errorf("%s: denied (%v), want allowed", c.addr, err)
		case c.denied != "" && err == nil:
			t.Errorf("%s: allowed, want denied with %q", c.addr, c.denied)
		case c.denied != "" && !strings.Contains(err.Error(), c.denied):
			t.Errorf("%s: error %q, want it to mention %q", c.addr, err, c.denied)
		}
	}
}

func TestParseNamesTheFlag(t *testing.T) {
	_, err := Parse("", "10.96.0.0/33", "")
	if err == nil || !strings.Contains(err.Error(), "--service-cidr") {
		t.Fatalf("got %v, want an error naming --service-cidr", err)
	}
}
