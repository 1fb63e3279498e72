package resolve

import (
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxChain bounds the CNAME hops followed for one name, in one answer and
// across re-queries, so a CNAME loop ends in an error instead of a spin.
const maxChain = 16

// followed is what one DNS answer says about qname: the addresses of the
// requested type at the end of the CNAME chain, the chain itself, and the
// smallest TTL of every record used.
type followed struct {
	addrs  []netip.Addr
	chain  []string // CNAME targets in order, fully qualified
	target string   // the name the chain ends at (qname when there is no CNAME)
	ttl    time.Duration
	hasTTL bool // false when no record was used (NODATA)
}

// followAnswer walks the answer section of msg from qname through CNAME
// records and collects the qtype records of the last name. It trusts only
// records on the chain, so unrelated records in a response cannot inject
// addresses. It does no I/O.
func followAnswer(msg *dns.Msg, qname string, qtype uint16) (followed, bool) {
	out := followed{target: qname}
	use := func(h *dns.RR_Header) {
		ttl := time.Duration(h.Ttl) * time.Second
		if !out.hasTTL || ttl < out.ttl {
			out.ttl, out.hasTTL = ttl, true
		}
	}
	for hops := 0; ; hops++ {
		if hops > maxChain {
			return out, false
		}
		var next string
		for _, rr := range msg.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, out.target) {
				next = dns.Fqdn(c.Target)
				use(&c.Hdr)
				break
			}
		}
		if next == "" {
			break
		}
		out.chain = append(out.chain, next)
		out.target = next
	}
	for _, rr := range msg.Answer {
		if !strings.EqualFold(rr.Header().Name, out.target) || rr.Header().Rrtype != qtype {
			continue
		}
		var addr netip.Addr
		switch r := rr.(type) {
		case *dns.A:
			addr, _ = netip.AddrFromSlice(r.A.To4())
		case *dns.AAAA:
			addr, _ = netip.AddrFromSlice(r.AAAA.To16())
			if addr.Is4In6() {
				// ::ffff:a.b.c.d is not an IPv6 endpoint; it would land in the
				// wrong family's EndpointSlice.
				continue
			}
		}
		if !addr.IsValid() {
			continue
		}
		out.addrs = append(out.addrs, addr)
		use(rr.Header())
	}
	return out, true
}

// negativeTTL is how long a NODATA answer may be cached (RFC 2308: the
// smaller of the SOA's TTL and its MINIMUM field); zero without an SOA.
func negativeTTL(msg *dns.Msg) time.Duration {
	for _, rr := range msg.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
		}
	}
	return 0
}
