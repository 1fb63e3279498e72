package outpost

import (
	"encoding/binary"
	"net"
	"strings"
	"sync"

	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// writeWire writes the common answers (A/AAAA records for the query name,
// or a negative answer with the zone's SOA) straight into wire format and
// reports whether it did. It only does so when this plugin is the first to
// touch the response - the writer is the server's own ScrubWriter, so no
// other plugin (cache, metrics, loadbalance, ...) wants a *dns.Msg - and the
// query is a plain one (no EDNS, TSIG or other records) whose answer fits in
// 512 bytes. Everything else goes through WriteMsg as usual. This skips
// building, measuring (for truncation) and packing a dns.Msg per query;
// owner names are compression pointers into the question, so the answer
// bytes do not depend on the query's case.
// wireBuffers recycles response buffers: the writer takes a slice, so a
// stack array would escape to the heap on every query.
var wireBuffers = sync.Pool{New: func() any { return new([512]byte) }}

// writeReply is writeWire for a reply built by newReply: A/AAAA records
// only, or a negative answer with the zone's SOA alone in the authority
// section.
func writeReply(w dns.ResponseWriter, r, m *dns.Msg) bool {
	if m.Truncated || !m.Authoritative || m.Extra != nil || len(m.Ns) > 1 {
		return false
	}
	var soa *dns.SOA
	if len(m.Ns) == 1 {
		var ok bool
		if soa, ok = m.Ns[0].(*dns.SOA); !ok {
			return false
		}
	}
	return writeWire(w, r, m.Rcode, m.Answer, soa)
}

func writeWire(w dns.ResponseWriter, r *dns.Msg, rcode int, answer []dns.RR, soa *dns.SOA) bool {
	if _, ok := w.(*request.ScrubWriter); !ok {
		return false
	}
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 || len(r.Answer) != 0 || len(r.Ns) != 0 || len(r.Extra) != 0 {
		return false
	}
	qname := r.Question[0].Name
	if strings.IndexByte(qname, '\\') >= 0 || !dns.IsFqdn(qname) {
		return false
	}
	bp := wireBuffers.Get().(*[512]byte)
	defer wireBuffers.Put(bp)
	buf := bp[:]
	clear(buf[:12])
	b := buf[:12]
	flags := uint16(1<<15) | uint16(r.Opcode)<<11 | 1<<10 | uint16(rcode&0xF)
	if r.RecursionDesired {
		flags |= 1 << 8
	}
	if r.CheckingDisabled {
		flags |= 1 << 4
	}
	binary.BigEndian.PutUint16(b[0:], r.Id)
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], 1)
	binary.BigEndian.PutUint16(b[6:], uint16(len(answer))) // #nosec G115 -- bounded by the 512-byte buffer
	if soa != nil {
		binary.BigEndian.PutUint16(b[8:], 1)
	}
	off, err := dns.PackDomainName(qname, buf, 12, nil, false)
	if err != nil || off+4 > len(buf) {
		return false
	}
	binary.BigEndian.PutUint16(buf[off:], r.Question[0].Qtype)
	binary.BigEndian.PutUint16(buf[off+2:], r.Question[0].Qclass)
	off += 4

	for _, rr := range answer {
		h := rr.Header()
		if h.Name != qname {
			return false
		}
		var ip net.IP
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A.To4()
		case *dns.AAAA:
			ip = v.AAAA.To16()
		default:
			return false
		}
		if ip == nil || off+12+len(ip) > len(buf) {
			return false
		}
		binary.BigEndian.PutUint16(buf[off:], 0xC000|12) // owner: the question name
		binary.BigEndian.PutUint16(buf[off+2:], h.Rrtype)
		binary.BigEndian.PutUint16(buf[off+4:], dns.ClassINET)
		binary.BigEndian.PutUint32(buf[off+6:], h.Ttl)
		binary.BigEndian.PutUint16(buf[off+10:], uint16(len(ip))) // #nosec G115 -- 4 or 16
		off += 12 + copy(buf[off+12:], ip)
	}

	if soa != nil {
		zone := soa.Hdr.Name
		if !strings.HasSuffix(qname, zone) || soa.Ns != "ns.dns."+zone || soa.Mbox != "hostmaster."+zone {
			return false
		}
		// The zone as a pointer to its place in the question name: a
		// label's length byte sits where the label starts in text form.
		zonePtr := func(off int) int {
			if zone == "." {
				buf[off] = 0
				return off + 1
			}
			binary.BigEndian.PutUint16(buf[off:], uint16(0xC000|(12+len(qname)-len(zone)))) // #nosec G115 -- < 512
			return off + 2
		}
		const rdataLen = 3 + 3 + 1 + 10 + 2 + 2 + 20 // "ns" "dns" "hostmaster" labels, two pointers, five numbers
		if off+10+2+rdataLen+2 > len(buf) {
			return false
		}
		off = zonePtr(off)
		binary.BigEndian.PutUint16(buf[off:], dns.TypeSOA)
		binary.BigEndian.PutUint16(buf[off+2:], dns.ClassINET)
		binary.BigEndian.PutUint32(buf[off+4:], soa.Hdr.Ttl)
		rdlen := off + 8
		off += 10
		start := off
		off += copy(buf[off:], "\x02ns\x03dns")
		off = zonePtr(off)
		off += copy(buf[off:], "\x0ahostmaster")
		off = zonePtr(off)
		for _, v := range []uint32{soa.Serial, soa.Refresh, soa.Retry, soa.Expire, soa.Minttl} {
			binary.BigEndian.PutUint32(buf[off:], v)
			off += 4
		}
		binary.BigEndian.PutUint16(buf[rdlen:], uint16(off-start)) // #nosec G115 -- < 512
	}
	_, err = w.Write(buf[:off])
	return err == nil
}
