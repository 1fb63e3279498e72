package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/outpost-dev/outpost/operator/internal/text"
)

// checker sends one kind of probe. One is built per owner spec and shared
// by that owner's targets.
type checker struct {
	spec   Spec
	client *http.Client // nil for TCP
}

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

func newChecker(spec Spec) *checker {
	c := &checker{spec: spec}
	if spec.Type == TCP {
		return c
	}
	transport := &http.Transport{
		Proxy: nil, // probes go straight to the backend, never through an environment proxy
		// The URL carries the Host name (for the Host header, SNI and
		// certificate check); the connection goes to the target's address.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, ctx.Value(dialAddrKey{}).(string))
		},
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: !spec.VerifyTLS}, //nolint:gosec // on request; see Spec.VerifyTLS
		DisableKeepAlives: true,                                             // like the kubelet: each probe opens a fresh connection
		ForceAttemptHTTP2: false,
		// The answer's headers are never looked at: a backend must not
		// make the operator buffer megabytes of them.
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	c.client = &http.Client{
		Transport: transport,
		// 3xx counts as healthy, as it does for the kubelet's probes to
		// another host; following it would probe something else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// check probes one target; nil means healthy. The error reads well in a
// condition message.
func (c *checker) check(ctx context.Context, t Target) error {
	ctx, cancel := context.WithTimeout(ctx, c.spec.Timeout)
	defer cancel()
	addr := netip.AddrPortFrom(t.Addr, uint16(c.spec.Port)).String()
	if c.spec.Type == TCP {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return c.explain("TCP connect to "+addr, err)
		}
		return conn.Close()
	}
	host := t.Host
	if host == "" {
		host = t.Addr.String()
	}
	u := url.URL{
		Scheme: "http",
		Host:   net.JoinHostPort(host, strconv.Itoa(c.spec.Port)),
		Path:   c.spec.Path,
	}
	if c.spec.Type == HTTPS {
		u.Scheme = "https"
	}
	what := fmt.Sprintf("%s GET %s (%s)", c.spec.Type, u.String(), addr)
	req, err := http.NewRequestWithContext(context.WithValue(ctx, dialAddrKey{}, addr), http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("User-Agent", "outpost-probe/1")
	resp, err := c.client.Do(req)
	if err != nil {
		return c.explain(what, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("%s: status %s", what, text.Excerpt(resp.Status, maxStatusLine))
	}
	return nil
}

func (c *checker) explain(what string, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%s: timed out after %s", what, c.spec.Timeout.Round(time.Millisecond))
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err // "connect: connection refused" without repeating the address
	}
	return fmt.Errorf("%s: %w", what, err)
}
