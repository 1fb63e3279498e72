package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// DefaultTimeout bounds one query to one server.
const DefaultTimeout = 2 * time.Second

// Resolver asks DNS servers for A and AAAA records and reports their TTLs.
// It is safe for concurrent use.
type Resolver struct {
	servers []string // host:port, asked in order
	timeout time.Duration
	udp     *dns.Client
	tcp     *dns.Client
}

// NewResolver returns a Resolver that asks servers (HOST or HOST:PORT, IPv6
// hosts in brackets when a port is given; port 53 by default) in order, each
// query bounded by timeout (DefaultTimeout when zero).
func NewResolver(servers []string, timeout time.Duration) (*Resolver, error) {
	if len(servers) == 0 {
		return nil, errors.New("dns servers: none given")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	r := &Resolver{
		timeout: timeout,
		udp:     &dns.Client{Net: "udp", Timeout: timeout, UDPSize: dns.DefaultMsgSize},
		tcp:     &dns.Client{Net: "tcp", Timeout: timeout},
	}
	for _, s := range servers {
		addr, err := ParseServer(s)
		if err != nil {
			return nil, err
		}
		r.servers = append(r.servers, addr)
	}
	return r, nil
}

// ParseServer turns HOST[:PORT] (e.g. "10.96.0.10", "127.0.0.1:5353",
// "::1", "[::1]:5353") into host:port with port 53 by default.
func ParseServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if addr, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(addr, 53).String(), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("dns server %q: want HOST or HOST:PORT: %w", s, err)
	}
	if host == "" {
		return "", fmt.Errorf("dns server %q: empty host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("dns server %q: port %q is not in 1-65535", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// ServersFromResolvConf reads the nameserver lines of a resolv.conf file
// (normally /etc/resolv.conf) as HOST:PORT strings.
func ServersFromResolvConf(path string) ([]string, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("read %s: no nameserver lines", path)
	}
	servers := make([]string, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		servers = append(servers, net.JoinHostPort(s, cfg.Port))
	}
	return servers, nil
}

// ResolvConf is where the operator finds its DNS servers by default.
const ResolvConf = "/etc/resolv.conf"

// Servers returns flagServers (the --dns-server values) when given, else
// the nameservers of /etc/resolv.conf.
func Servers(flagServers []string) ([]string, error) {
	if len(flagServers) > 0 {
		return flagServers, nil
	}
	return ServersFromResolvConf(ResolvConf)
}

// Answer is the result of one successful resolution of a name for one family.
type Answer struct {
	// Addrs are the addresses at the end of the CNAME chain, sorted; empty
	// when the name exists but has no record of this family (NODATA).
	Addrs []netip.Addr
	// TTL is the smallest TTL of the records used, CNAMEs included; for
	// NODATA, the negative-caching TTL from the SOA (zero without one).
	TTL time.Duration
	// Chain lists the CNAME targets followed, in order, without the final dot.
	Chain []string
}

// QType returns the query type for an IP family.
func QType(family corev1.IPFamily) (uint16, error) {
	switch family {
	case corev1.IPv4Protocol:
		return dns.TypeA, nil
	case corev1.IPv6Protocol:
		return dns.TypeAAAA, nil
	}
	return 0, fmt.Errorf("ipFamilies: unknown family %q (want IPv4 or IPv6)", family)
}

// Resolve asks for the records of one family of name, following CNAMEs
// across queries when a server returns only part of the chain. A failure
// is always an *Error.
func (r *Resolver) Resolve(ctx context.Context, name string, family corev1.IPFamily) (Answer, error) {
	qtype, err := QType(family)
	if err != nil {
		return Answer{}, &Error{Reason: v1alpha1.ReasonQueryFailed, Message: err.Error()}
	}
	typeName := dns.TypeToString[qtype]
	qname := dns.Fqdn(name)
	var ans Answer
	hasTTL := false
	for queries := 0; queries < maxChain; queries++ {
		resp, server, err := r.exchange(ctx, qname, qtype)
		if err != nil {
			return Answer{}, describe(err, name, ans.Chain, typeName)
		}
		f, ok := followAnswer(resp, qname, qtype)
		if !ok {
			return Answer{}, errorf(v1alpha1.ReasonQueryFailed, "%s: CNAME chain longer than %d records", name, maxChain)
		}
		for _, c := range f.chain {
			ans.Chain = append(ans.Chain, strings.TrimSuffix(c, "."))
		}
		// An NXDOMAIN may come with the CNAMEs that led to the missing
		// name; follow them first so the message names the culprit.
		if e := rcodeError(resp.Rcode, name, ans.Chain, typeName, server); e != nil {
			return Answer{}, e
		}
		if f.hasTTL && (!hasTTL || f.ttl < ans.TTL) {
			ans.TTL, hasTTL = f.ttl, true
		}
		if len(f.addrs) > 0 {
			slices.SortFunc(f.addrs, netip.Addr.Compare)
			ans.Addrs = slices.Compact(f.addrs)
			return ans, nil
		}
		if f.target == qname {
			// NODATA: the name exists without records of this type.
			if neg := negativeTTL(resp); !hasTTL || neg < ans.TTL {
				ans.TTL = neg
			}
			return ans, nil
		}
		// The server gave us a CNAME but not the target's records (it is
		// not authoritative for the target's zone): ask for the target.
		qname = f.target
	}
	return Answer{}, errorf(v1alpha1.ReasonQueryFailed, "%s: CNAME chain longer than %d records", name, maxChain)
}

// exchange asks each server in turn until one gives a definitive answer.
// SERVFAIL, REFUSED and timeouts move on to the next server; the last
// such outcome is returned when every server fails.
func (r *Resolver) exchange(ctx context.Context, qname string, qtype uint16) (*dns.Msg, string, error) {
	q := new(dns.Msg)
	q.SetQuestion(qname, qtype)
	q.SetEdns0(dns.DefaultMsgSize, false)
	var (
		lastResp   *dns.Msg
		lastServer string
		lastErr    error
	)
	for _, server := range r.servers {
		if err := ctx.Err(); err != nil {
			return nil, server, &queryError{server: server, err: err}
		}
		resp, _, err := r.udp.ExchangeContext(ctx, q, server)
		if err == nil && resp.Truncated {
			resp, _, err = r.tcp.ExchangeContext(ctx, q, server)
		}
		if err != nil {
			lastResp, lastServer, lastErr = nil, server, &queryError{server: server, err: err, timeout: r.timeout}
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			lastResp, lastServer, lastErr = resp, server, nil
			continue
		}
		return resp, server, nil
	}
	return lastResp, lastServer, lastErr
}

// queryError is a transport failure talking to one server.
type queryError struct {
	server  string
	err     error
	timeout time.Duration
}

func (e *queryError) Error() string { return e.server + ": " + e.err.Error() }
func (e *queryError) Unwrap() error { return e.err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func via(name string, chain []string) string {
	if len(chain) == 0 {
		return name
	}
	return name + " (via CNAME " + strings.Join(chain, " -> ") + ")"
}

func describe(err error, name string, chain []string, typeName string) *Error {
	var qe *queryError
	server := "the DNS server"
	if errors.As(err, &qe) {
		server = qe.server
	}
	if isTimeout(err) {
		wait := ""
		if qe != nil && qe.timeout > 0 {
			wait = " after " + qe.timeout.String()
		}
		return errorf(v1alpha1.ReasonTimeout, "%s: %s query to %s timed out%s", via(name, chain), typeName, server, wait)
	}
	return errorf(v1alpha1.ReasonQueryFailed, "%s: %s query failed: %v", via(name, chain), typeName, err)
}

func rcodeError(rcode int, name string, chain []string, typeName, server string) *Error {
	switch rcode {
	case dns.RcodeSuccess:
		return nil
	case dns.RcodeNameError:
		what := "no such name"
		if len(chain) > 0 {
			what = "CNAME target " + chain[len(chain)-1] + " does not exist"
		}
		return errorf(v1alpha1.ReasonNameNotFound, "%s: NXDOMAIN (%s) from %s", name, what, server)
	case dns.RcodeServerFailure:
		return errorf(v1alpha1.ReasonServerFailure, "%s: %s query answered SERVFAIL by %s", via(name, chain), typeName, server)
	case dns.RcodeRefused:
		return errorf(v1alpha1.ReasonRefused, "%s: %s query REFUSED by %s", via(name, chain), typeName, server)
	}
	return errorf(v1alpha1.ReasonQueryFailed, "%s: %s query answered %s by %s", via(name, chain), typeName, dns.RcodeToString[rcode], server)
}
