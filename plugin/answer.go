package outpost

import (
	"context"
	"math"
	"net"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnsutil"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// The builders below turn records into resource records. They produce what
// CoreDNS' shared backend helpers (plugin.A, plugin.SRV, ...) produce for the
// kubernetes plugin, record for record, so that both plugins give the same
// RRsets; they build the RRs straight from the index's parsed values.

const maxCNAMEChain = 10

// Upstreamer resolves names outside the zone through the rest of the server
// (CoreDNS' upstream package); ExternalName targets use it.
type Upstreamer interface {
	Lookup(ctx context.Context, state request.Request, name string, typ uint16) (*dns.Msg, error)
}

func (o *Outpost) hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: o.ttl}
}

// address answers A and AAAA (qtype in q), chasing ExternalName CNAMEs in
// the zone and through the upstream outside it.
func (o *Outpost) address(ctx context.Context, req *request.Request, q *question, previous []dns.RR) ([]dns.RR, bool, error) {
	recs, err := o.services(q)
	if err != nil {
		return nil, false, err
	}
	rrs, truncated := o.addressRRs(ctx, req, q, recs, previous)
	return rrs, truncated, nil
}

// addressRRs builds address's answer from the records. It is a sibling of
// the lookup rather than part of it: the frames of the lookup chain stay
// small (see ServeDNS).
//
//go:noinline
func (o *Outpost) addressRRs(ctx context.Context, req *request.Request, q *question, recs []record, previous []dns.RR) (rrs []dns.RR, truncated bool) {
	// Duplicate addresses: scanned for in short answers, removed up front
	// from long ones.
	long := len(recs) > 16
	if long {
		recs = uniqueIPs(recs)
	}
	// The records in one allocation rather than one each: a headless
	// Service's answer has as many as it has endpoints.
	var (
		as    []dns.A
		aaaas []dns.AAAA
	)
	for i, r := range recs {
		if r.ip == nil {
			chased, tc := o.chase(ctx, req, q, r.target, previous)
			rrs = append(rrs, chased...)
			truncated = truncated || tc
			continue
		}
		isV4 := len(r.ip) == net.IPv4len
		if isV4 != (q.qtype == dns.TypeA) {
			continue
		}
		if !long && seenBefore(recs[:i], r.ip) {
			continue
		}
		if rrs == nil {
			rrs = make([]dns.RR, 0, len(recs))
		}
		// The blocks never grow (capacity: every record), so the pointers
		// into them stay valid.
		if isV4 {
			if as == nil {
				as = make([]dns.A, 0, len(recs)-i)
			}
			as = append(as, dns.A{Hdr: o.hdr(q.qname, dns.TypeA), A: r.ip})
			rrs = append(rrs, &as[len(as)-1])
		} else {
			if aaaas == nil {
				aaaas = make([]dns.AAAA, 0, len(recs)-i)
			}
			aaaas = append(aaaas, dns.AAAA{Hdr: o.hdr(q.qname, dns.TypeAAAA), AAAA: r.ip})
			rrs = append(rrs, &aaaas[len(aaaas)-1])
		}
	}
	return rrs, truncated
}

// uniqueIPs drops the records whose address came earlier, for answers too
// long to scan (seenBefore). Out of line: its map would otherwise sit in
// address's frame on every query.
//
//go:noinline
func uniqueIPs(recs []record) []record {
	seen := make(map[string]struct{}, len(recs))
	out := make([]record, 0, len(recs))
	for _, r := range recs {
		if r.ip != nil {
			if _, dup := seen[string(r.ip)]; dup {
				continue
			}
			seen[string(r.ip)] = struct{}{}
		}
		out = append(out, r)
	}
	return out
}

func seenBefore(recs []record, ip net.IP) bool {
	for _, r := range recs {
		if r.ip.Equal(ip) {
			return true
		}
	}
	return false
}

// chase follows the CNAME q.qname -> target: in the zone with the same
// qtype's builder (address or txt), outside it through the upstream. As in
// plugin.A, an in-zone target that yields nothing drops the CNAME too, and
// loops are cut. It is kept out of line so that its frame does not grow
// address's, which is on every query's stack.
//
//go:noinline
func (o *Outpost) chase(ctx context.Context, req *request.Request, q *question, target string, previous []dns.RR) ([]dns.RR, bool) {
	fqdn := dns.Fqdn(target)
	if plugin.Name(q.name).Matches(fqdn) {
		return nil, false // x CNAME x
	}
	cname := &dns.CNAME{Hdr: o.hdr(q.qname, dns.TypeCNAME), Target: fqdn}
	if len(previous) > maxCNAMEChain || dnsutil.DuplicateCNAME(cname, previous) {
		return nil, false
	}
	if dns.IsSubDomain(q.zone, fqdn) {
		next := q.with(target, q.qtype)
		var (
			rrs []dns.RR
			tc  bool
			err error
		)
		if q.qtype == dns.TypeTXT {
			rrs, tc, err = o.txt(ctx, req, &next, append(previous, cname))
		} else {
			rrs, tc, err = o.address(ctx, req, &next, append(previous, cname))
		}
		if err != nil || len(rrs) == 0 {
			return nil, tc
		}
		return append([]dns.RR{cname}, rrs...), tc
	}
	if o.upstream == nil {
		return nil, false
	}
	m, err := o.upstream.Lookup(ctx, *req, fqdn, q.qtype)
	if err != nil || m == nil {
		return nil, false
	}
	return append([]dns.RR{cname}, m.Answer...), m.Truncated
}

// txt answers TXT: dns-version, and CNAME chains of ExternalName Services.
func (o *Outpost) txt(ctx context.Context, req *request.Request, q *question, previous []dns.RR) (rrs []dns.RR, truncated bool, err error) {
	recs, err := o.services(q)
	if err != nil {
		return nil, false, err
	}
	for _, r := range recs {
		switch {
		case r.text != "":
			rrs = append(rrs, &dns.TXT{Hdr: dns.RR_Header{Name: q.qname, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 28800}, Txt: []string{r.text}})
		case r.ip == nil:
			chased, tc := o.chase(ctx, req, q, r.target, previous)
			rrs = append(rrs, chased...)
			truncated = truncated || tc
		}
	}
	return rrs, truncated, nil
}

// srv answers SRV with address glue in the additional section. Weights are
// 100/n of the matching records, as plugin.SRV computes them.
func (o *Outpost) srv(q *question) (rrs, extra []dns.RR, err error) {
	recs, err := o.services(q)
	if err != nil || len(recs) == 0 {
		return nil, nil, err
	}
	rrs, extra = o.srvRRs(q, recs)
	return rrs, extra, nil
}

// srvRRs builds srv's answer from the records, out of the lookup chain like
// addressRRs.
//
//go:noinline
func (o *Outpost) srvRRs(q *question, recs []record) (rrs, extra []dns.RR) {
	w := math.Floor(100.0 / float64(100*len(recs)) * 100)
	weight := uint16(w)
	if weight == 0 {
		weight = 1
	}
	seenSRV, seenGlue := newSRVSets(len(recs))
	for _, r := range recs {
		if r.port == -1 || r.ip == nil {
			continue
		}
		target := r.service + "." + r.namespace + "." + svcLabel + "." + q.zone
		if r.endpoint != nil {
			target = r.endpoint.name(o.podNames) + "." + target
		}
		if _, dup := seenSRV[srvKey{target, r.port}]; !dup {
			seenSRV[srvKey{target, r.port}] = struct{}{}
			rrs = append(rrs, &dns.SRV{Hdr: o.hdr(q.qname, dns.TypeSRV), Weight: weight, Port: uint16(r.port), Target: target}) // #nosec G115 -- ports are 1-65535
		}
		if _, dup := seenGlue[glueKey{target, string(r.ip)}]; !dup {
			seenGlue[glueKey{target, string(r.ip)}] = struct{}{}
			extra = append(extra, o.addressRR(target, r.ip))
		}
	}
	return rrs, extra
}

func (o *Outpost) addressRR(name string, ip net.IP) dns.RR {
	if len(ip) == net.IPv4len {
		return &dns.A{Hdr: o.hdr(name, dns.TypeA), A: ip}
	}
	return &dns.AAAA{Hdr: o.hdr(name, dns.TypeAAAA), AAAA: ip}
}

type (
	srvKey struct {
		target string
		port   int32
	}
	glueKey struct{ target, addr string } // addr: the IP's bytes
)

// newSRVSets makes the sets srvRRs removes duplicates with. Out of line, so
// that they are on the heap: as srvRRs's locals, their first buckets would
// make its frame large enough to grow the stack of every SRV query.
//
//go:noinline
func newSRVSets(n int) (map[srvKey]struct{}, map[glueKey]struct{}) {
	return make(map[srvKey]struct{}, n), make(map[glueKey]struct{}, n)
}

// cname answers CNAME: the ExternalName target, without chasing it.
func (o *Outpost) cname(q *question) ([]dns.RR, error) {
	recs, err := o.services(q)
	if err != nil {
		return nil, err
	}
	if len(recs) > 0 && recs[0].ip == nil {
		return []dns.RR{&dns.CNAME{Hdr: o.hdr(q.qname, dns.TypeCNAME), Target: dns.Fqdn(recs[0].target)}}, nil
	}
	return nil, nil
}

// ns answers NS at the apex, with the name servers' addresses as glue.
func (o *Outpost) ns(q question) (rrs, extra []dns.RR) {
	seen := map[string]bool{}
	for _, r := range o.nsRecords(q.zone) {
		extra = append(extra, o.addressRR(r.target, r.ip))
		if seen[r.target] {
			continue
		}
		seen[r.target] = true
		rrs = append(rrs, &dns.NS{Hdr: o.hdr(q.qname, dns.TypeNS), Ns: r.target})
	}
	return rrs, extra
}

// soa is the zone's SOA record, also put in the authority section of
// negative answers.
func (o *Outpost) soa(zone string) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: min(o.ttl, 300)},
		Ns:      dnsutil.Join("ns.dns", zone),
		Mbox:    dnsutil.Join("hostmaster", zone),
		Serial:  o.idx.serial(),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  o.ttl,
	}
}
