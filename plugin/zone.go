package outpost

import (
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
)

// zoneOf is plugin.Zones(zones).Matches(qname), the longest of the
// (normalized, fully qualified) zones that qname is in, or "", without its
// cost: Matches compares label by label through dns.Split, which allocates
// twice per zone and query, a third of all allocations of an answer. A
// fully qualified name without escapes has its label boundaries at its dots,
// so a case-insensitive suffix that starts at a dot is the same test. Other
// names take Matches.
func zoneOf(zones []string, qname string) string {
	if !strings.HasSuffix(qname, ".") || strings.IndexByte(qname, '\\') >= 0 {
		return plugin.Zones(zones).Matches(qname)
	}
	zone := ""
	for _, z := range zones {
		if len(z) > len(zone) && inZone(qname, z) {
			zone = z
		}
	}
	return zone
}

// inZone reports whether the fully qualified name, without escapes, is zone
// or below it.
func inZone(name, zone string) bool {
	if zone == "." {
		return true
	}
	if len(name) < len(zone) || !equalFoldASCII(name[len(name)-len(zone):], zone) {
		return false
	}
	return len(name) == len(zone) || name[len(name)-len(zone)-1] == '.'
}

// equalFoldASCII compares as DNS does (RFC 4343): only A-Z fold, unlike
// strings.EqualFold, which would also fold the Kelvin sign into k.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// presentationName is dns.Name(name).String(), the name as request.Request's
// QName gives it, without its cost for the common name: one of letters,
// digits, '-' and '_' in non-empty labels, which needs no escaping and so
// is its own presentation form. sprintName checks every byte for escaping
// at several times that cost (a tenth of a wrapped answer's CPU, as QName
// and Name each call it).
func presentationName(name string) string {
	if name == "." {
		return name
	}
	label := 0
	for i := range len(name) {
		switch c := name[i]; {
		case c == '.':
			if label == 0 {
				return dns.Name(name).String()
			}
			label = 0
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			label++
		default:
			return dns.Name(name).String()
		}
	}
	return name
}
