// Package listflag is the one parser of comma-separated flag values shared by
// Outpost's binaries (--node-ip, --cluster-cidr, --dns-server, --denied-cidrs,
// ...). It works with the standard flag package, so flags keep accepting
// both -name and --name.
//
// Elements are trimmed of spaces and empty elements are dropped, so
// "a, b,,c" is [a b c] and "" is the empty list.
package listflag

import (
	"fmt"
	"net/netip"
	"strings"
)

// Split returns the non-empty, space-trimmed elements of a comma-separated
// list.
func Split(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Parse parses every element of a comma-separated list; the error is the
// first element's that fails.
func Parse[T any](s string, parse func(string) (T, error)) ([]T, error) {
	elems := Split(s)
	out := make([]T, 0, len(elems))
	for _, e := range elems {
		v, err := parse(e)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// ParsePrefixes parses a comma-separated list of CIDRs.
func ParsePrefixes(s string) ([]netip.Prefix, error) { return Parse(s, parsePrefix) }

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%q is not a CIDR: %w", s, err)
	}
	return p, nil
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("%q is not an IP address: %w", s, err)
	}
	return a, nil
}

// Value is a flag.Value filling a list from comma-separated values. The
// flag may be repeated: the first use replaces the list's initial content
// (its default), later uses append to it, as pflag's slice flags do.
type Value[T any] struct {
	list  *[]T
	parse func(string) (T, error)
	set   bool
}

// New returns a Value storing into list, parsing each element with parse.
func New[T any](list *[]T, parse func(string) (T, error)) *Value[T] {
	return &Value[T]{list: list, parse: parse}
}

// Strings fills a list of strings.
func Strings(list *[]string) *Value[string] {
	return New(list, func(s string) (string, error) { return s, nil })
}

// Prefixes fills a list of CIDRs.
func Prefixes(list *[]netip.Prefix) *Value[netip.Prefix] { return New(list, parsePrefix) }

// Addrs fills a list of IP addresses.
func Addrs(list *[]netip.Addr) *Value[netip.Addr] { return New(list, parseAddr) }

// Set parses a comma-separated value; on error the list is left unchanged.
func (v *Value[T]) Set(s string) error {
	elems, err := Parse(s, v.parse)
	if err != nil {
		return err
	}
	if !v.set {
		*v.list, v.set = nil, true
	}
	*v.list = append(*v.list, elems...)
	return nil
}

// String joins the list with commas; flag.PrintDefaults shows it as the
// default.
func (v *Value[T]) String() string {
	if v == nil || v.list == nil {
		return ""
	}
	elems := make([]string, len(*v.list))
	for i, e := range *v.list {
		elems[i] = fmt.Sprint(e)
	}
	return strings.Join(elems, ",")
}
