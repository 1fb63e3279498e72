package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/outpost-dev/outpost/operator/internal/text"
)

// checker sends an owner's probes. One is built per owner spec and shared
// by that owner's targets.
type checker struct {
	timeout time.Duration
	checks  []probeFunc
	types   []Type
	ports   []uint16
}

// probeFunc runs one check against addr (the target's address and the
// check's port); host is the target's DNS name or "". Nil means healthy;
// the error reads well in a condition message.
type probeFunc func(ctx context.Context, addr netip.AddrPort, host string) error

type dialAddrKey struct{}

const (
	// maxResponseHeaderBytes bounds the status line and headers of an
	// HTTP(S) check's answer; a longer one fails the check.
	maxResponseHeaderBytes = 4 << 10
	// maxStatusLine bounds the part of the backend's status line that
	// reaches status and Events.
	maxStatusLine = 64
)

var dialer = &net.Dialer{}

// newChecker builds the probes of a normalized spec.
func newChecker(spec Spec) *checker {
	c := &checker{timeout: spec.Timeout}
	for _, ch := range spec.Checks {
		c.types = append(c.types, ch.Type)
		c.ports = append(c.ports, uint16(ch.Port))
		switch ch.Type {
		case TCP:
			c.checks = append(c.checks, c.tcp)
		case HTTP, HTTPS:
			c.checks = append(c.checks, c.http(ch))
		case GRPC:
			c.checks = append(c.checks, c.grpc(ch))
		case DNS:
			c.checks = append(c.checks, c.dns(ch))
		}
	}
	return c
}

// check runs every check on one target at once, under one timeout; nil
// means all passed. The failures are reported in the spec's order.
func (c *checker) check(ctx context.Context, t Target) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	errs := make([]error, len(c.checks))
	var wg sync.WaitGroup
	for i, probe := range c.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			errs[i] = probe(ctx, netip.AddrPortFrom(t.Addr, c.ports[i]), t.Host)
			observe(c.types[i], start, errs[i])
		}()
	}
	wg.Wait()
	var failed []string
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return errors.New(strings.Join(failed, "; "))
}

func (c *checker) tcp(ctx context.Context, addr netip.AddrPort, _ string) error {
	conn, err := dialer.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return c.explain("TCP connect to "+addr.String(), err)
	}
	return conn.Close()
}

// tlsConfig is the client side of an HTTPS or GRPC-over-TLS check; the
// server name is filled per target unless the check names one.
func tlsConfig(ch Check) *tls.Config {
	cfg := &tls.Config{ServerName: ch.ServerName, InsecureSkipVerify: !ch.VerifyTLS} //nolint:gosec // on request; see Check.VerifyTLS
	if len(ch.RootCAs) > 0 {
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(ch.RootCAs) // normalize checked it holds a certificate
	}
	return cfg
}

func (c *checker) http(ch Check) probeFunc {
	statuses, _ := parseStatuses(ch.ExpectedStatuses) // checked by normalize
	transport := &http.Transport{
		Proxy: nil, // probes go straight to the backend, never through an environment proxy
		// The URL carries the Host name (for the Host header, SNI and
		// certificate check); the connection goes to the target's address.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, ctx.Value(dialAddrKey{}).(string))
		},
		TLSClientConfig:   tlsConfig(ch),
		DisableKeepAlives: true, // like the kubelet: each probe opens a fresh connection
		ForceAttemptHTTP2: false,
		// The answer's headers are never looked at: a backend must not
		// make the operator buffer megabytes of them.
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	client := &http.Client{
		Transport: transport,
		// 3xx counts as healthy by default, as it does for the kubelet's
		// probes to another host; following it would probe something else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	scheme := strings.ToLower(string(ch.Type))
	return func(ctx context.Context, addr netip.AddrPort, host string) error {
		if host == "" {
			host = addr.Addr().String()
		}
		u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(int(addr.Port()))), Path: ch.Path}
		what := fmt.Sprintf("%s GET %s (%s)", ch.Type, u.String(), addr)
		req, err := http.NewRequestWithContext(context.WithValue(ctx, dialAddrKey{}, addr.String()), http.MethodGet, u.String(), nil)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		req.Header = ch.Header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		if h := req.Header.Get("Host"); h != "" {
			req.Host = h
			req.Header.Del("Host")
		}
		if req.Header.Get("User-Agent") == "" {
			req.Header.Set("User-Agent", "outpost-probe/1")
		}
		resp, err := client.Do(req)
		if err != nil {
			return c.explain(what, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		for _, r := range statuses {
			if resp.StatusCode >= r.lo && resp.StatusCode <= r.hi {
				return nil
			}
		}
		return fmt.Errorf("%s: status %s, want %s", what, text.Excerpt(resp.Status, maxStatusLine), strings.Join(ch.ExpectedStatuses, ","))
	}
}

func (c *checker) grpc(ch Check) probeFunc {
	creds := insecure.NewCredentials()
	if ch.TLS {
		creds = credentials.NewTLS(tlsConfig(ch))
	}
	return func(ctx context.Context, addr netip.AddrPort, host string) error {
		what := fmt.Sprintf("GRPC health check of %s", addr)
		if ch.GRPCService != "" {
			what += fmt.Sprintf(" (service %q)", ch.GRPCService)
		}
		opts := []grpc.DialOption{
			grpc.WithTransportCredentials(creds),
			grpc.WithNoProxy(), // probes go straight to the backend
			grpc.WithUserAgent("outpost-probe/1"),
		}
		if host != "" && ch.ServerName == "" {
			// The name the address came from is the authority (and the
			// name the certificate is checked against), as for HTTPS.
			opts = append(opts, grpc.WithAuthority(net.JoinHostPort(host, strconv.Itoa(int(addr.Port())))))
		}
		// passthrough: the address is already resolved; no resolver runs.
		conn, err := grpc.NewClient("passthrough:///"+addr.String(), opts...)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: ch.GRPCService})
		if err != nil {
			if ctx.Err() != nil {
				return c.explain(what, ctx.Err())
			}
			st := grpcstatus.Convert(err)
			return fmt.Errorf("%s: %s: %s", what, st.Code(), text.Excerpt(st.Message(), maxStatusLine))
		}
		if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s: %s", what, s)
		}
		return nil
	}
}

func (c *checker) dns(ch Check) probeFunc {
	qtype := dns.StringToType[strings.ToUpper(ch.DNSType)]
	return func(ctx context.Context, addr netip.AddrPort, _ string) error {
		what := fmt.Sprintf("DNS %s %s to %s", ch.DNSName, ch.DNSType, addr)
		q := new(dns.Msg).SetQuestion(ch.DNSName, qtype)
		resp, _, err := (&dns.Client{Net: "udp"}).ExchangeContext(ctx, q, addr.String())
		if err == nil && resp.Truncated {
			resp, _, err = (&dns.Client{Net: "tcp"}).ExchangeContext(ctx, q, addr.String())
		}
		switch {
		case err != nil:
			return c.explain(what, err)
		case resp.Rcode != dns.RcodeSuccess:
			return fmt.Errorf("%s: %s", what, dns.RcodeToString[resp.Rcode])
		case len(resp.Answer) == 0:
			return fmt.Errorf("%s: no records in the answer", what)
		}
		return nil
	}
}

func (c *checker) explain(what string, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%s: timed out after %s", what, c.timeout.Round(time.Millisecond))
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err // "connect: connection refused" without repeating the address
	}
	return fmt.Errorf("%s: %w", what, err)
}
