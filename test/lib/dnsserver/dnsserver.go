// Package dnsserver is an authoritative DNS server for tests, in the test's
// own process, on 127.0.0.1 with a random port (UDP and TCP on the same
// port). The test sets A, AAAA and CNAME records with TTLs, changes them
// while the code under test runs, and makes names fail with SERVFAIL,
// NXDOMAIN, REFUSED or silence (a timeout). Every query is logged, so a
// test can check when a name was asked for.
//
// Answers follow RFC 1034 as authoritative servers do: CNAMEs are chased
// within the server (unless ChaseCNAME(false)), an unknown name is NXDOMAIN
// and a known name without the asked type is NODATA with an SOA whose
// negative TTL is NegativeTTL.
package dnsserver

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Failure makes a name answer badly.
type Failure int

const (
	// None answers normally.
	None Failure = iota
	// ServFail answers SERVFAIL.
	ServFail
	// NXDomain answers NXDOMAIN even if records exist.
	NXDomain
	// Refused answers REFUSED.
	Refused
	// Drop does not answer at all, so the client times out.
	Drop
)

// NegativeTTL is the SOA minimum in NODATA and NXDOMAIN answers.
const NegativeTTL = 3

type typeKey struct {
	name  string
	qtype uint16
}

type record struct {
	ttl     uint32 // of the CNAME
	aTTL    uint32
	aaaaTTL uint32
	a       []netip.Addr
	aaaa    []netip.Addr
	cname   string
}

// Query is one query the server received.
type Query struct {
	Name  string // lower case, no trailing dot
	Type  uint16
	At    time.Time
	Proto string // "udp" or "tcp"
}

// Server is a running test DNS server.
type Server struct {
	// Addr is "127.0.0.1:PORT", good for resolve.NewResolver.
	Addr string

	udp, tcp *dns.Server

	mu         sync.Mutex
	records    map[string]*record
	failures   map[string]Failure
	typeFails  map[typeKey]Failure
	queries    []Query
	chase      bool
	truncateUD bool
}

// Start starts a server and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{records: map[string]*record{}, failures: map[string]Failure{}, typeFails: map[typeKey]Failure{}, chase: true}
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	// Bind UDP on a random port, then TCP on the same port; retry if that
	// port is taken for TCP.
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("dnsserver: listen udp: %v", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		tb.Fatalf("dnsserver: listen tcp: %v", err)
	}
	s.Addr = pc.LocalAddr().String()
	started := make(chan struct{}, 2)
	s.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve("udp")), NotifyStartedFunc: func() { started <- struct{}{} }}
	s.tcp = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serve("tcp")), NotifyStartedFunc: func() { started <- struct{}{} }}
	go s.udp.ActivateAndServe() //nolint:errcheck // Shutdown ends it
	go s.tcp.ActivateAndServe() //nolint:errcheck
	<-started
	<-started
	tb.Cleanup(func() {
		s.udp.Shutdown() //nolint:errcheck
		s.tcp.Shutdown() //nolint:errcheck
	})
	return s
}

func canon(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

func (s *Server) rec(name string) *record {
	name = canon(name)
	r, ok := s.records[name]
	if !ok {
		r = &record{}
		s.records[name] = r
	}
	return r
}

// SetA replaces the A records of name (no addresses: the name exists
// without A records).
func (s *Server) SetA(name string, ttl uint32, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec(name)
	r.aTTL, r.a, r.cname = ttl, parse(addrs), ""
}

// SetAAAA replaces the AAAA records of name.
func (s *Server) SetAAAA(name string, ttl uint32, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec(name)
	r.aaaaTTL, r.aaaa, r.cname = ttl, parse(addrs), ""
}

// SetCNAME makes name an alias of target, replacing its other records.
func (s *Server) SetCNAME(name string, ttl uint32, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[canon(name)] = &record{ttl: ttl, cname: canon(target)}
}

// Remove deletes every record of name (it becomes NXDOMAIN).
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, canon(name))
}

// Fail makes queries for name fail in the given way; None restores it.
func (s *Server) Fail(name string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[canon(name)] = f
}

// FailType makes only queries of one type for name fail (a broken AAAA
// path, say); None restores it.
func (s *Server) FailType(name string, qtype uint16, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.typeFails[typeKey{canon(name), qtype}] = f
}

// ChaseCNAME(false) makes the server answer with the CNAME alone, as a
// server that is not authoritative for the target would.
func (s *Server) ChaseCNAME(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chase = on
}

// TruncateUDP makes every UDP answer empty with the TC bit set, so clients
// must retry over TCP.
func (s *Server) TruncateUDP(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncateUD = on
}

// Queries returns the logged queries for name and qtype (0: any type).
func (s *Server) Queries(name string, qtype uint16) []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Query
	for _, q := range s.queries {
		if q.Name == canon(name) && (qtype == 0 || q.Type == qtype) {
			out = append(out, q)
		}
	}
	return out
}

// QueryCount is the number of queries received so far.
func (s *Server) QueryCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queries)
}

// ResetLog forgets the logged queries (keeps a long benchmark's log small).
func (s *Server) ResetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = nil
}

func parse(addrs []string) []netip.Addr {
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func (s *Server) serve(proto string) func(dns.ResponseWriter, *dns.Msg) {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		if len(req.Question) != 1 {
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeFormatError)
			w.WriteMsg(m) //nolint:errcheck
			return
		}
		q := req.Question[0]
		s.mu.Lock()
		defer s.mu.Unlock()
		s.queries = append(s.queries, Query{Name: canon(q.Name), Type: q.Qtype, At: time.Now(), Proto: proto})
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		if proto == "udp" && s.truncateUD {
			m.Truncated = true
			w.WriteMsg(m) //nolint:errcheck
			return
		}
		failure := s.failures[canon(q.Name)]
		if f := s.typeFails[typeKey{canon(q.Name), q.Qtype}]; f != None {
			failure = f
		}
		switch failure {
		case Drop:
			return
		case ServFail:
			m.Rcode = dns.RcodeServerFailure
			w.WriteMsg(m) //nolint:errcheck
			return
		case Refused:
			m.Rcode = dns.RcodeRefused
			w.WriteMsg(m) //nolint:errcheck
			return
		case NXDomain:
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{soa(q.Name)}
			w.WriteMsg(m) //nolint:errcheck
			return
		}
		s.answer(m, q.Name, q.Qtype)
		w.WriteMsg(m) //nolint:errcheck
	}
}

// answer fills m for qname/qtype, chasing CNAMEs when s.chase. Called with s.mu held.
func (s *Server) answer(m *dns.Msg, qname string, qtype uint16) {
	name := dns.Fqdn(qname)
	for hops := 0; hops < 20; hops++ {
		r, ok := s.records[canon(name)]
		if !ok || s.failures[canon(name)] == NXDomain {
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{soa(name)}
			return
		}
		hdr := func(t uint16, ttl uint32) dns.RR_Header {
			return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
		}
		if r.cname != "" && qtype != dns.TypeCNAME {
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(dns.TypeCNAME, r.ttl), Target: dns.Fqdn(r.cname)})
			if !s.chase {
				return
			}
			name = dns.Fqdn(r.cname)
			continue
		}
		var addrs []netip.Addr
		switch qtype {
		case dns.TypeA:
			addrs = r.a
		case dns.TypeAAAA:
			addrs = r.aaaa
		}
		for _, a := range addrs {
			if a.Is4() {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA, r.aTTL), A: a.AsSlice()})
			} else {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA, r.aaaaTTL), AAAA: a.AsSlice()})
			}
		}
		if len(addrs) == 0 {
			m.Ns = []dns.RR{soa(name)}
		}
		return
	}
	m.Rcode = dns.RcodeServerFailure
}

func soa(name string) *dns.SOA {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: NegativeTTL},
		Ns:  "ns.test.", Mbox: "hostmaster.test.", Serial: 1, Refresh: 60, Retry: 60, Expire: 600,
		Minttl: NegativeTTL,
	}
}
