// Package policy decides which backend addresses an ExternalBackend may
// publish. Since CVE-2021-25740 ordinary users may not write Endpoints, because
// an endpoint pointing at loopback, link-local (cloud metadata) or another
// Service's or Pod's address lets them hijack or reach traffic they should not.
// An ExternalBackend must not hand that power back, so every address, literal
// or resolved, is checked here before it is written, and so is every alias
// target (see alias.go).
package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/outpost-dev/outpost/internal/listflag"
)

// DefaultDeniedCIDRs are refused unless --denied-cidrs says otherwise:
// loopback, link-local (including 169.254.169.254, the cloud metadata
// service) and "this network".
const DefaultDeniedCIDRs = "127.0.0.0/8,::1/128,169.254.0.0/16,fe80::/10,0.0.0.0/8"

// Policy is a set of denied ranges, each with the flag that put it there so a
// refusal can say why, plus the ranges learned from the cluster, which
// change while the operator runs.
type Policy struct {
	denied []deniedRange
	// learned is replaced whole by SetLearned and read without a lock by
	// Check, which runs in every reconcile.
	learned atomic.Pointer[[]LearnedRange]
	aliases aliasRules
}

type deniedRange struct {
	prefix netip.Prefix
	source string
}

// LearnedRange is one of the cluster's own ranges, found in the cluster
// rather than given by a flag.
type LearnedRange struct {
	Prefix netip.Prefix
	// Source says where the range was found, as a noun phrase that
	// completes "ADDRESS is ...": "the pod CIDR of node worker-1",
	// "ServiceCIDR kubernetes", "an API server endpoint".
	Source string
}

// Parse builds a Policy from the operator's flags. Each argument is a
// comma-separated list of CIDRs; empty arguments are allowed.
func Parse(deniedCIDRs, serviceCIDRs, podCIDRs string) (*Policy, error) {
	p := &Policy{aliases: defaultAliasRules()}
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

// Check returns nil when addr may be published, or an error naming the
// address, the rule that refuses it and, where there is one, the fix.
func (p *Policy) Check(addr netip.Addr) error {
	if reason := neverPublished(addr); reason != "" {
		return fmt.Errorf("%s %s", addr, reason)
	}
	for _, d := range p.denied {
		if d.prefix.Contains(addr) {
			return fmt.Errorf("%s is inside %s, denied by %s", addr, d.prefix, d.source)
		}
	}
	if learned := p.learned.Load(); learned != nil {
		for _, l := range *learned {
			if !l.Prefix.Contains(addr) {
				continue
			}
			if l.Prefix.IsSingleIP() {
				return fmt.Errorf("%s is %s (learned from the cluster)", addr, l.Source)
			}
			return fmt.Errorf("%s is inside %s, %s (learned from the cluster)", addr, l.Prefix, l.Source)
		}
	}
	return nil
}

// SetLearned replaces the ranges learned from the cluster and reports
// whether they changed, so that the caller re-checks what was published
// under the old set only when there is a reason to. Safe to call while
// Check runs.
func (p *Policy) SetLearned(ranges []LearnedRange) (changed bool) {
	next := make([]LearnedRange, len(ranges))
	for i, r := range ranges {
		next[i] = LearnedRange{Prefix: r.Prefix.Masked(), Source: r.Source}
	}
	slices.SortFunc(next, func(a, b LearnedRange) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		if c := a.Prefix.Bits() - b.Prefix.Bits(); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
	next = slices.Compact(next)
	prev := p.learned.Swap(&next)
	return prev == nil && len(next) > 0 || prev != nil && !slices.Equal(*prev, next)
}
