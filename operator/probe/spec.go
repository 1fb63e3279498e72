package probe

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// Type is the kind of check.
type Type string

const (
	TCP   Type = "TCP"
	HTTP  Type = "HTTP"
	HTTPS Type = "HTTPS"
)

// Spec is one owner's health check.
type Spec struct {
	Type Type
	// Port on every target; required (the reconciler fills the API default,
	// the first port's targetPort).
	Port int
	// Path for HTTP(S); default "/".
	Path string
	// Interval between probes of one target, Timeout of one probe; zero
	// means the API's default. Timeout is capped at Interval.
	Interval, Timeout time.Duration
	// Consecutive results needed to turn ready / not ready; zero means the
	// API's default.
	HealthyThreshold, UnhealthyThreshold int
	// VerifyTLS checks the HTTPS certificate against the system roots and
	// Target.Host (or the IP). Off by default: backends behind an
	// ExternalBackend often use self-signed certificates, and a health
	// check asks "is it up", not "is it who it claims to be".
	VerifyTLS bool
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
	switch s.Type {
	case TCP, HTTP, HTTPS:
	case "":
		s.Type = Type(v1alpha1.DefaultHealthCheckType)
	default:
		return Spec{}, fmt.Errorf("healthCheck.type: %q is not TCP, HTTP or HTTPS", s.Type)
	}
	if s.Port < 1 || s.Port > 65535 {
		return Spec{}, fmt.Errorf("healthCheck.port: %d is not in 1-65535", s.Port)
	}
	if s.Type == TCP {
		s.Path = ""
	} else if s.Path == "" {
		s.Path = "/"
	} else if !strings.HasPrefix(s.Path, "/") {
		return Spec{}, fmt.Errorf("healthCheck.path: %q must start with /", s.Path)
	}
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

// sameCheck reports whether two specs send the same probe (results stay valid).
func sameCheck(a, b Spec) bool {
	return a.Type == b.Type && a.Port == b.Port && a.Path == b.Path && a.VerifyTLS == b.VerifyTLS && a.Timeout == b.Timeout
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
