package outpost

import (
	"context"
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// ServeDNS implements plugin.Handler. Its control flow is the kubernetes
// plugin's, so that the same query gets the same rcode from both.
//
// The server runs every UDP query on a new goroutine, whose stack starts at
// 2 KiB; decoding the question already doubles it once. Every further
// doubling copies the whole stack, which cost more than the lookup itself
// (a fifth of the CPU under dnsperf). So the lookup chain - answer,
// address, services, records, parseName/endpointRecords - keeps its frames
// small: arguments by pointer, and answers built in sibling calls
// (addressRRs, srvRRs, specialServices) that are not on the chain. The
// chain fits the 4 KiB stack; TestCommonQueriesFitTheServersStack fails
// when it stops fitting, and go build -gcflags=-S ./plugin (locals=) shows
// which frame grew.
//
// ServeDNS itself is the I/O around answer, which builds the reply: it
// writes the reply pre-packed when it can (writeReply), else through
// WriteMsg, from its own small frame. Under plugins that wrap the writer
// (errors, prometheus, cache in Corefile.example) their frames take most of
// the 4 KiB before ServeDNS is called, and the stack grows once on the way
// into answer, as it does for the kubernetes plugin; that is theirs.
func (o *Outpost) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m, rcode, err := o.answer(ctx, w, r)
	switch {
	case rcode == nextPlugin:
		return plugin.NextOrFailure(o.Name(), o.Next, ctx, w, r)
	case m != nil && !writeReply(w, r, m):
		w.WriteMsg(m)
	}
	return rcode, err
}

// nextPlugin is answer's rcode for a query that is not this plugin's to
// answer (outside its zones, or a name to fall through).
const nextPlugin = -1

// answer answers r: it returns the message for ServeDNS to write, or nil
// when it has none (nextPlugin, a refusal, an error), with ServeDNS's rcode
// and error.
//
//go:noinline
func (o *Outpost) answer(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (*dns.Msg, int, error) {
	if len(r.Question) == 0 {
		return nil, nextPlugin, nil
	}
	state := request.Request{W: w, Req: r}
	qname := presentationName(r.Question[0].Name) // state.QName(), cheaper
	zone := zoneOf(o.Zones, qname)
	if zone == "" || len(zone) > len(qname) { // the latter: a name without its final dot (never from the wire)
		return nil, nextPlugin, nil
	}
	zone = qname[len(qname)-len(zone):] // keep the query's case
	if o.snapshotExpired.Load() && !o.informersSynced.Load() {
		// The index holds a snapshot older than max-age: serve none of it.
		resultUnsynced.Inc()
		return o.negative(&state, zone, dns.RcodeServerFailure)
	}
	q := question{qname: qname, name: strings.ToLower(qname), zone: zone, qtype: state.QType()} // name: state.Name()

	var (
		records, extra []dns.RR
		truncated      bool
		err            error
	)
	switch q.qtype {
	case dns.TypeA, dns.TypeAAAA:
		records, truncated, err = o.address(ctx, &state, &q, nil)
	case dns.TypePTR:
		records, err = o.ptr(&q)
	case dns.TypeSRV:
		records, extra, err = o.srv(&q)
	case dns.TypeAXFR, dns.TypeIXFR:
		resultRefused.Inc()
		return nil, dns.RcodeRefused, nil
	default:
		records, extra, truncated, err = o.otherTypes(ctx, &state, &q)
	}

	if isNameError(err) {
		return o.nameError(&state, &q)
	}
	if err != nil {
		resultError.Inc()
		return nil, dns.RcodeServerFailure, err
	}
	if len(records) == 0 {
		resultNodata.Inc()
		return o.negative(&state, zone, dns.RcodeSuccess)
	}

	resultSuccess.Inc()
	m := newReply(r, dns.RcodeSuccess)
	m.Truncated = truncated
	m.Answer = records
	m.Extra = extra
	return m, dns.RcodeSuccess, nil
}

// otherTypes looks up the query types other than A, AAAA, PTR and SRV for
// answer. It is out of line so that its locals do not grow answer's
// frame, which is on the stack of every query.
//
//go:noinline
func (o *Outpost) otherTypes(ctx context.Context, state *request.Request, q *question) (records, extra []dns.RR, truncated bool, err error) {
	switch q.qtype {
	case dns.TypeTXT:
		records, truncated, err = o.txt(ctx, state, q, nil)
	case dns.TypeCNAME:
		records, err = o.cname(q)
	case dns.TypeMX:
		_, err = o.services(q) // never mail: NODATA or NXDOMAIN
	case dns.TypeSOA:
		if q.qname == q.zone {
			records = []dns.RR{o.soa(q.zone)}
		}
	case dns.TypeNS:
		if q.name == strings.ToLower(q.zone) { // case-insensitive, see README
			records, extra = o.ns(*q)
			break
		}
		fallthrough
	default:
		// The name's existence decides NODATA vs NXDOMAIN: look it up as A.
		q.qtype = dns.TypeA
		_, _, err = o.address(ctx, state, q, nil)
	}
	return records, extra, truncated, err
}

// nameError is answer's reply for a name that does not exist: passed on
// when it falls through, SERVFAIL before the first sync, else NXDOMAIN. Out
// of line, like otherTypes.
//
//go:noinline
func (o *Outpost) nameError(state *request.Request, q *question) (*dns.Msg, int, error) {
	if o.Fall.Through(q.name) {
		resultFallthrough.Inc()
		return nil, nextPlugin, nil
	}
	if !o.synced() {
		resultUnsynced.Inc()
		return o.negative(state, q.zone, dns.RcodeServerFailure)
	}
	resultNxdomain.Inc()
	return o.negative(state, q.zone, dns.RcodeNameError)
}

// negative is answer's NXDOMAIN, NODATA or SERVFAIL, with the zone's SOA.
func (o *Outpost) negative(req *request.Request, zone string, rcode int) (*dns.Msg, int, error) {
	m := newReply(req.Req, rcode)
	m.Ns = []dns.RR{o.soa(zone)}
	return m, dns.RcodeSuccess, nil
}

// Name implements plugin.Handler.
func (o *Outpost) Name() string { return pluginName }

// reply is an answer with room for its question, so that the message a
// wrapping plugin (cache, prometheus, loadbalance) is handed costs one
// allocation where new(dns.Msg) and SetReply make two.
type reply struct {
	msg      dns.Msg
	question [1]dns.Question
}

// newReply is new(dns.Msg).SetRcode(r, rcode), authoritative. It is out of
// line: its request header copy would otherwise sit in ServeDNS's frame.
//
//go:noinline
func newReply(r *dns.Msg, rcode int) *dns.Msg {
	rep := new(reply)
	m := &rep.msg
	m.SetRcode(&dns.Msg{MsgHdr: r.MsgHdr}, rcode) // the header fields; no question to copy
	m.Authoritative = true
	if len(r.Question) > 0 {
		rep.question[0] = r.Question[0]
		m.Question = rep.question[:]
	}
	return m
}
