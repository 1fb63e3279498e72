package probe

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// Type is the kind of check.
type Type string

const (
	TCP   Type = "TCP"
	HTTP  Type = "HTTP"
	HTTPS Type = "HTTPS"
	// GRPC asks grpc.health.v1.Health/Check.
	GRPC Type = "GRPC"
	// DNS sends a query that must get records back.
	DNS Type = "DNS"
)

// Spec is one owner's health check: Checks all run on every target, which
// is healthy only while every one passes.
type Spec struct {
	Checks []Check
	// Interval between probes of one target, Timeout of one probe (its
	// checks run together); zero means the API's default. Timeout is
	// capped at Interval.
	Interval, Timeout time.Duration
	// Consecutive results needed to turn ready / not ready; zero means the
	// API's default.
	HealthyThreshold, UnhealthyThreshold int
}

// Check is one probe of a target.
type Check struct {
	// Field is where the check is in the API ("spec.healthCheck" or
	// "spec.healthCheck.checks[1]"), for error messages; default
	// "healthCheck".
	Field string
	Type  Type
	// Port on every target; required (the reconciler fills the API default,
	// the first port's targetPort, and resolves port names).
	Port int
	// Path for HTTP(S); default "/".
	Path string
	// Header is sent with HTTP(S) requests; its Host, if any, is the
	// request's Host.
	Header http.Header
	// ExpectedStatuses pass an HTTP(S) check: "204" or "200-299"; default
	// the API's 200-399.
	ExpectedStatuses []string
	// TLS makes a GRPC check speak TLS (HTTPS always does).
	TLS bool
	// VerifyTLS checks the certificate against the system roots (or
	// RootCAs) and ServerName (or Target.Host, or the IP). Off by default:
	// backends behind an ExternalBackend often use self-signed
	// certificates, and a health check asks "is it up", not "is it who it
	// claims to be".
	VerifyTLS bool
	// ServerName is sent as SNI and verified instead of Target.Host.
	ServerName string
	// RootCAs is a PEM bundle to verify with instead of the system roots;
	// it implies VerifyTLS.
	RootCAs []byte
	// GRPCService is the service asked about ("" is the whole server).
	GRPCService string
	// DNSName and DNSType are the query of a DNS check; DNSType defaults
	// to A.
	DNSName, DNSType string
}

// Target is one address to probe.
type Target struct {
	Addr netip.Addr
	// Host, when the address came from a DNS name, is sent as the HTTP
	// Host header and TLS server name.
	Host string
	// StartNotReady makes a new target start not ready (see the package
	// comment); it is ignored for a target already probed.
	StartNotReady bool
}

// normalize fills defaults and checks the spec; errors name the API field.
func (s Spec) normalize() (Spec, error) {
	if len(s.Checks) == 0 {
		return Spec{}, errors.New("healthCheck: no check to run")
	}
	checks := make([]Check, len(s.Checks))
	for i, c := range s.Checks {
		var err error
		if checks[i], err = c.normalize(); err != nil {
			return Spec{}, err
		}
	}
	s.Checks = checks
	if s.Interval <= 0 {
		s.Interval = v1alpha1.DefaultHealthCheckInterval
	}
	if s.Timeout <= 0 {
		s.Timeout = v1alpha1.DefaultHealthCheckTimeout
	}
	s.Timeout = min(s.Timeout, s.Interval)
	if s.HealthyThreshold <= 0 {
		s.HealthyThreshold = v1alpha1.DefaultHealthyThreshold
	}
	if s.UnhealthyThreshold <= 0 {
		s.UnhealthyThreshold = v1alpha1.DefaultUnhealthyThreshold
	}
	return s, nil
}

func (c Check) normalize() (Check, error) {
	if c.Field == "" {
		c.Field = "healthCheck"
	}
	switch c.Type {
	case TCP, HTTP, HTTPS, GRPC, DNS:
	case "":
		c.Type = Type(v1alpha1.DefaultHealthCheckType)
	default:
		return Check{}, fmt.Errorf("%s.type: %q is not TCP, HTTP, HTTPS, GRPC or DNS", c.Field, c.Type)
	}
	if c.Port < 1 || c.Port > 65535 {
		return Check{}, fmt.Errorf("%s.port: %d is not in 1-65535", c.Field, c.Port)
	}
	if c.Type == HTTP || c.Type == HTTPS {
		if c.Path == "" {
			c.Path = "/"
		} else if !strings.HasPrefix(c.Path, "/") {
			return Check{}, fmt.Errorf("%s.path: %q must start with /", c.Field, c.Path)
		}
		if len(c.ExpectedStatuses) == 0 {
			c.ExpectedStatuses = []string{v1alpha1.DefaultExpectedStatuses}
		}
		if _, err := parseStatuses(c.ExpectedStatuses); err != nil {
			return Check{}, fmt.Errorf("%s.http.expectedStatuses: %w", c.Field, err)
		}
	}
	if c.Type == HTTPS {
		c.TLS = true
	}
	if len(c.RootCAs) > 0 {
		if !x509.NewCertPool().AppendCertsFromPEM(c.RootCAs) {
			return Check{}, fmt.Errorf("%s.tls.caConfigMap: holds no PEM certificate", c.Field)
		}
		c.VerifyTLS = true
	}
	if c.Type == DNS {
		if c.DNSName == "" {
			return Check{}, fmt.Errorf("%s.dns.name: required for a DNS check", c.Field)
		}
		if c.DNSType == "" {
			c.DNSType = v1alpha1.DefaultDNSQueryType
		}
		if _, ok := dns.StringToType[strings.ToUpper(c.DNSType)]; !ok {
			return Check{}, fmt.Errorf("%s.dns.type: %q is not a DNS record type", c.Field, c.DNSType)
		}
		c.DNSName = dns.Fqdn(c.DNSName)
	}
	return c, nil
}

// statusRange is an inclusive range of HTTP status codes.
type statusRange struct{ lo, hi int }

// parseStatuses reads "204" and "200-299".
func parseStatuses(specs []string) ([]statusRange, error) {
	ranges := make([]statusRange, 0, len(specs))
	for _, s := range specs {
		lo, hi, isRange := strings.Cut(s, "-")
		if !isRange {
			hi = lo
		}
		l, errL := strconv.Atoi(lo)
		h, errH := strconv.Atoi(hi)
		if errL != nil || errH != nil || l < 100 || h > 599 || l > h {
			return nil, fmt.Errorf("%q is neither a status code nor a range like 200-299", s)
		}
		ranges = append(ranges, statusRange{l, h})
	}
	return ranges, nil
}

// sameCheck reports whether two specs send the same probes (results stay valid).
func sameCheck(a, b Spec) bool {
	return a.Timeout == b.Timeout && reflect.DeepEqual(a.Checks, b.Checks)
}

// health is the readiness of one target.
type health struct {
	ready, known        bool
	successes, failures int // consecutive
	lastError           string
	lastProbe           time.Time
	since               time.Time // when ready last changed (or the target was added)
}

// advance folds one probe result into h. It reports whether the reconciler
// must look again: readiness flipped, or this is the first result. It does
// no I/O.
func advance(h health, probeErr error, spec Spec, now time.Time) (health, bool) {
	first := !h.known
	h.known, h.lastProbe = true, now
	wasReady := h.ready
	if probeErr == nil {
		h.successes, h.failures, h.lastError = h.successes+1, 0, ""
		if !h.ready && h.successes >= spec.HealthyThreshold {
			h.ready = true
		}
	} else {
		h.successes, h.failures, h.lastError = 0, h.failures+1, probeErr.Error()
		if h.ready && h.failures >= spec.UnhealthyThreshold {
			h.ready = false
		}
	}
	if h.ready != wasReady {
		h.since = now
	}
	return h, first || h.ready != wasReady
}

// nextDelay spreads probes by ±jitter of the interval; random is in [0, 1).
func nextDelay(interval time.Duration, jitter float64, random func() float64) time.Duration {
	return interval + time.Duration(float64(interval)*jitter*(2*random()-1))
}
