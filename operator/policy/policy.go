// Package policy decides which backend addresses an ExternalBackend may
// publish. Since CVE-2021-25740 ordinary users may not write Endpoints, because
// an endpoint pointing at loopback, link-local (cloud metadata) or another
// Service's or Pod's address lets them hijack or reach traffic they should not.
// An ExternalBackend must not hand that power back, so every address, literal
// or resolved, is checked here before it is written.
package policy

import (
	"fmt"
	"net/netip"

	"github.com/outpost-dev/outpost/internal/listflag"
)

// DefaultDeniedCIDRs are refused unless --denied-cidrs says otherwise:
// loopback, link-local (including 169.254.169.254, the cloud metadata
// service) and "this network".
const DefaultDeniedCIDRs = "127.0.0.0/8,::1/128,169.254.0.0/16,fe80::/10,0.0.0.0/8"

// Policy is a set of denied ranges, each with the flag that put it there so a
// refusal can say why.
type Policy struct {
	denied []deniedRange
}

type deniedRange struct {
	prefix netip.Prefix
	source string
}

// Parse builds a Policy from the operator's flags. Each argument is a
// comma-separated list of CIDRs; empty arguments are allowed.
func Parse(deniedCIDRs, serviceCIDRs, podCIDRs string) (*Policy, error) {
	p := &Policy{}
	for _, f := range []struct{ flag, value string }{
		{"--denied-cidrs", deniedCIDRs},
		{"--service-cidr", serviceCIDRs},
		{"--pod-cidr", podCIDRs},
	} {
		prefixes, err := listflag.ParsePrefixes(f.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.flag, err)
		}
		for _, prefix := range prefixes {
			p.denied = append(p.denied, deniedRange{prefix: prefix.Masked(), source: f.flag})
		}
	}
	return p, nil
}

// Check returns nil when addr may be published, or an error saying which
// denied range holds it.
func (p *Policy) Check(addr netip.Addr) error {
	addr = addr.Unmap()
	if addr.IsUnspecified() || addr.IsMulticast() {
		return fmt.Errorf("%s is not a unicast address", addr)
	}
	for _, d := range p.denied {
		if d.prefix.Contains(addr) {
			return fmt.Errorf("%s is inside %s, denied by %s", addr, d.prefix, d.source)
		}
	}
	return nil
}
