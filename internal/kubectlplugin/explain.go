package kubectlplugin

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// Explanation is what explain gathered about one ExternalBackend: the
// object, what the operator wrote for it, what cluster DNS answers, and
// where a node's rules send a first packet.
type Explanation struct {
	Backend *v1alpha1.ExternalBackend `json:"backend"`
	// Service is nil when there is none; ServiceError says why.
	Service        *corev1.Service             `json:"service,omitempty"`
	ServiceError   string                      `json:"serviceError,omitempty"`
	EndpointSlices []discoveryv1.EndpointSlice `json:"endpointSlices,omitempty"`
	// DNSServer is the server asked ("" when none could be found).
	DNSServer string      `json:"dnsServer,omitempty"`
	DNS       []DNSAnswer `json:"dns,omitempty"`
	// Traces are empty without --rules; TraceError says why they failed.
	Traces     []PortTrace `json:"traces,omitempty"`
	TraceError string      `json:"traceError,omitempty"`
}

// DNSAnswer is one question to cluster DNS and its answer.
type DNSAnswer struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Records are the answer section's data ("10.96.0.10", "CNAME x.", ...).
	Records []string `json:"records,omitempty"`
	// Error is the failure (an rcode such as NXDOMAIN, or a timeout).
	Error string `json:"error,omitempty"`
}

// PortTrace is where the first packet from Source to ClusterIP:Port goes.
type PortTrace struct {
	ClusterIP string `json:"clusterIP"`
	Port      int32  `json:"port"`
	Protocol  string `json:"protocol"`
	Source    string `json:"source"`
	// Endpoints are the DNAT destinations the packet can reach.
	Endpoints []string `json:"endpoints,omitempty"`
	// Verdicts are DNAT, ACCEPT (untouched: no rule for it), REJECT, DROP.
	Verdicts []string `json:"verdicts,omitempty"`
	// Rules is how many rules the packet walks.
	Rules int `json:"rules"`
}

// WriteExplanation prints e as one screen of sections. now ages the
// expiry times.
func WriteExplanation(w io.Writer, e *Explanation, now time.Time) error {
	xb := e.Backend
	p := &printer{w: w}
	p.line("ExternalBackend %s/%s  mode=%s  ready=%s  generation=%d observed=%d",
		xb.Namespace, xb.Name, dash(string(xb.Status.Mode)), dash(xb.Status.Ready), xb.Generation, xb.Status.ObservedGeneration)

	p.section("Conditions")
	p.table("TYPE\tSTATUS\tREASON\tMESSAGE", len(xb.Status.Conditions), func(i int) string {
		c := xb.Status.Conditions[i]
		return fmt.Sprintf("%s\t%s\t%s\t%s", c.Type, c.Status, c.Reason, c.Message)
	})

	p.section("Addresses")
	p.table("ADDRESS\tREADY\tREASON\tHOST\tEXPIRES\tMESSAGE", len(xb.Status.Endpoints), func(i int) string {
		r := xb.Status.Endpoints[i]
		expires := "-"
		if r.Expires != nil {
			expires = relative(r.Expires.Sub(now))
		}
		return fmt.Sprintf("%s\t%t\t%s\t%s\t%s\t%s", r.Address, r.Ready, dash(r.Reason), dash(r.Host), expires, dash(r.Message))
	})

	p.section("Service")
	if s := e.Service; s != nil {
		target := strings.Join(s.Spec.ClusterIPs, ",")
		if s.Spec.Type == corev1.ServiceTypeExternalName {
			target = "externalName=" + s.Spec.ExternalName
		}
		p.line("%s  type=%s  %s  sessionAffinity=%s", s.Name, s.Spec.Type, dash(target), dash(string(s.Spec.SessionAffinity)))
		p.table("PORT\tNAME\tPROTOCOL\tTARGET\tNODEPORT", len(s.Spec.Ports), func(i int) string {
			sp := s.Spec.Ports[i]
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%s", sp.Port, dash(sp.Name), sp.Protocol, sp.TargetPort.String(), nonZero(sp.NodePort))
		})
	} else {
		p.line("none: %s", e.ServiceError)
	}

	p.section("EndpointSlices")
	if len(e.EndpointSlices) == 0 {
		p.line("none")
	}
	for _, s := range e.EndpointSlices {
		var ports []string
		for _, sp := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d/%s", ptrOr(sp.Name, ""), ptrOr(sp.Port, 0), ptrOr(sp.Protocol, corev1.ProtocolTCP)))
		}
		p.line("%s  %s  ports %s", s.Name, s.AddressType, dash(strings.Join(ports, " ")))
		p.table("  ADDRESS\tREADY\tSERVING\tTERMINATING", len(s.Endpoints), func(i int) string {
			ep := s.Endpoints[i]
			c := ep.Conditions
			return fmt.Sprintf("  %s\t%s\t%s\t%s", strings.Join(ep.Addresses, ","), boolPtr(c.Ready), boolPtr(c.Serving), boolPtr(c.Terminating))
		})
	}

	p.section("DNS")
	if e.DNSServer != "" {
		p.line("asked %s", e.DNSServer)
	}
	p.table("NAME\tTYPE\tANSWER", len(e.DNS), func(i int) string {
		a := e.DNS[i]
		answer := strings.Join(a.Records, ", ")
		if a.Error != "" {
			answer = "error: " + a.Error
		} else if answer == "" {
			answer = "no records"
		}
		return fmt.Sprintf("%s\t%s\t%s", a.Name, a.Type, answer)
	})

	if len(e.Traces) > 0 || e.TraceError != "" {
		p.section("First packet (node rules)")
		if e.TraceError != "" {
			p.line("error: %s", e.TraceError)
		}
		p.table("FROM\tTO\tVERDICT\tENDPOINTS\tRULES", len(e.Traces), func(i int) string {
			t := e.Traces[i]
			return fmt.Sprintf("%s\t%s/%s\t%s\t%s\t%d", t.Source, net.JoinHostPort(t.ClusterIP, strconv.Itoa(int(t.Port))), strings.ToLower(t.Protocol),
				dash(strings.Join(t.Verdicts, ",")), dash(strings.Join(t.Endpoints, " ")), t.Rules)
		})
	}
	return p.err
}

// printer remembers the first write error, so the screen's code reads as
// a sequence of sections.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func (p *printer) section(title string) { p.line("\n%s:", title) }

// table prints header and n rows aligned, or "none" when n is 0.
func (p *printer) table(header string, n int, row func(int) string) {
	if p.err != nil {
		return
	}
	if n == 0 {
		p.line("none")
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for i := range n {
		fmt.Fprintln(tw, row(i))
	}
	p.err = tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// relative is d as kubectl prints ages, in the future or the past.
func relative(d time.Duration) string {
	if d < 0 {
		return duration.HumanDuration(-d) + " ago"
	}
	return "in " + duration.HumanDuration(d)
}

func nonZero(n int32) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func boolPtr(b *bool) string {
	if b == nil {
		return "-"
	}
	return fmt.Sprint(*b)
}
