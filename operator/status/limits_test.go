package status

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/internal/text"
	"github.com/outpost-dev/outpost/operator/policy"
	"github.com/outpost-dev/outpost/operator/probe"
)

// The operator's default limits, as its flags set them.
var defaultLimits = Limits{
	AllowedServiceTypes: []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer},
	MaxEndpoints:        1000,
	MaxEndpointPorts:    10000,
}

func aliasOf(target string) v1alpha1.ExternalBackendSpec {
	return v1alpha1.ExternalBackendSpec{ExternalName: target}
}

func ofType(t corev1.ServiceType, spec v1alpha1.ExternalBackendSpec) v1alpha1.ExternalBackendSpec {
	spec.ServiceType = t
	return spec
}

// manyAddresses returns n distinct documentation and benchmark addresses
// (198.18.0.0/15), in spec order.
func manyAddresses(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}).String()
	}
	return out
}

func withPorts(n int, spec v1alpha1.ExternalBackendSpec) v1alpha1.ExternalBackendSpec {
	spec.Ports = nil
	for i := range n {
		spec.Ports = append(spec.Ports, v1alpha1.BackendPort{Name: fmt.Sprintf("p%d", i), Port: int32(1000 + i)})
	}
	return spec
}

func withLimits(l Limits, f func(*Limits)) Limits {
	f(&l)
	return l
}

// Hostile ExternalBackends a tenant may write, what the operator makes of
// them under its default flags (and under stricter ones where named), as
// the user sees it: the Ready condition, what is published, the Events.
// The alias targets go through the real address policy.
func TestHostileBackends(t *testing.T) {
	addressPolicy, err := policy.Parse(policy.DefaultDeniedCIDRs, "10.96.0.0/16", "10.244.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	onlyClusterIP := withLimits(defaultLimits, func(l *Limits) { l.AllowedServiceTypes = []corev1.ServiceType{corev1.ServiceTypeClusterIP} })
	noLoadBalancer := withLimits(defaultLimits, func(l *Limits) {
		l.AllowedServiceTypes = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort}
	})
	many := resolved("many.example.com", manyAddresses(5000)...)
	tests := []struct {
		name   string
		spec   v1alpha1.ExternalBackendSpec
		limits Limits
		names  []Name
		// ready is the Ready condition's status and reason; message
		// substrings it must contain.
		readyStatus metav1.ConditionStatus
		ready       string
		message     []string
		// published is the number of endpoints handed to desired.Compute;
		// refused says that nothing at all (no Service) is published.
		published int
		refused   bool
		events    []string // the reasons of the Warning Events
	}{
		// Aliases the policy refuses: each names spec.externalName.
		{name: "alias to another namespace's Service", spec: aliasOf("secret-svc.other-ns.svc.cluster.local"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied},
			message: []string{"spec.externalName: secret-svc.other-ns.svc.cluster.local", "no Service is written"}},
		{name: "alias to GCP metadata", spec: aliasOf("metadata.google.internal"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied},
			message: []string{"spec.externalName: metadata.google.internal"}},
		{name: "alias to GCP metadata, upper case with a trailing dot", spec: aliasOf("METADATA.Google.Internal."),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied},
			message: []string{"spec.externalName: METADATA.Google.Internal."}},
		{name: "alias to AWS metadata", spec: aliasOf("instance-data.ec2.internal"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied}},
		{name: "alias to a Pod name that encodes an address", spec: aliasOf("169-254-169-254.prod.pod.cluster.local"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied}},
		{name: "alias to the API server by its search-list name", spec: aliasOf("kubernetes.default.svc"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied}},
		{name: "alias to a single label", spec: aliasOf("kubernetes"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied}},
		{name: "alias to localhost", spec: aliasOf("localhost"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied}},
		{name: "alias to a name under localhost", spec: aliasOf("evil.localhost"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied}},
		{name: "alias to a name a resolver reads as 127.0.0.1", spec: aliasOf("127.1"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied}},
		{name: "alias to a hex-encoded loopback", spec: aliasOf("0x7f.0.0.1"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied}},
		{name: "alias to the cluster domain itself", spec: aliasOf("cluster.local"),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonAliasDenied, refused: true, events: []string{v1alpha1.EventAddressDenied}},
		{name: "alias to a Service of its own namespace is allowed", spec: aliasOf("db-primary.prod.svc.cluster.local"),
			readyStatus: metav1.ConditionTrue, ready: v1alpha1.ReasonAliasConfigured},

		// Service types the cluster does not accept.
		{name: "NodePort where only ClusterIP is allowed", spec: ofType(corev1.ServiceTypeNodePort, addresses("192.0.2.1")), limits: onlyClusterIP,
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonServiceTypeNotAllowed, refused: true, events: []string{v1alpha1.EventServiceTypeNotAllowed},
			message: []string{"spec.serviceType: NodePort is not allowed", "--allowed-service-types is ClusterIP"}},
		{name: "LoadBalancer where it is not allowed", spec: ofType(corev1.ServiceTypeLoadBalancer, addresses("192.0.2.1")), limits: noLoadBalancer,
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonServiceTypeNotAllowed, refused: true, events: []string{v1alpha1.EventServiceTypeNotAllowed},
			message: []string{"spec.serviceType: LoadBalancer", "--allowed-service-types is ClusterIP,NodePort"}},
		{name: "an unset type is ClusterIP", spec: ofType("", addresses("192.0.2.1")), limits: onlyClusterIP,
			readyStatus: metav1.ConditionTrue, ready: v1alpha1.ReasonEndpointsReady, published: 1},
		{name: "LoadBalancer under the default flags", spec: ofType(corev1.ServiceTypeLoadBalancer, addresses("192.0.2.1")),
			readyStatus: metav1.ConditionTrue, ready: v1alpha1.ReasonEndpointsReady, published: 1},

		// Too many endpoints: the first 1000 in spec order.
		{name: "1500 literal addresses", spec: addresses(manyAddresses(1500)...),
			readyStatus: metav1.ConditionTrue, ready: v1alpha1.ReasonTooManyEndpoints, published: 1000, events: []string{v1alpha1.EventTooManyEndpoints},
			message: []string{"1000/1000 endpoints ready", "1500 distinct addresses, more than the operator's --max-endpoints-per-backend=1000"}},
		{name: "a name answering 5000 addresses", spec: addresses("many.example.com"), names: []Name{many},
			readyStatus: metav1.ConditionTrue, ready: v1alpha1.ReasonTooManyEndpoints, published: 1000, events: []string{v1alpha1.EventTooManyEndpoints},
			message: []string{"5000 distinct addresses"}},
		{name: "one address repeated 4000 times counts once", spec: addresses(slicesRepeat("192.0.2.1", 4000)...),
			readyStatus: metav1.ConditionTrue, ready: v1alpha1.ReasonEndpointsReady, published: 1},
		{name: "an address and its IPv4-mapped form count once", spec: addresses("192.0.2.1", "::ffff:192.0.2.1"),
			limits:      withLimits(defaultLimits, func(l *Limits) { l.MaxEndpoints = 1 }),
			readyStatus: metav1.ConditionTrue, ready: v1alpha1.ReasonEndpointsReady, published: 1},
		{name: "denied addresses use up the bound too, so the status stays bounded", spec: addresses("127.0.0.1", "127.0.0.2", "192.0.2.1"),
			limits:      withLimits(defaultLimits, func(l *Limits) { l.MaxEndpoints = 2 }),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonTooManyEndpoints, published: 0, events: []string{v1alpha1.EventTooManyEndpoints, v1alpha1.EventAddressDenied},
			message: []string{"0/0 endpoints ready", "only the first 2"}},

		// Too many endpoint ports: refused, naming both numbers.
		{name: "101 endpoints x 100 ports", spec: withPorts(100, addresses(manyAddresses(101)...)),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonTooManyEndpointPorts, refused: true, events: []string{v1alpha1.EventTooManyEndpointPorts},
			message: []string{"101 endpoints x 100 ports = 10100 endpoint ports, more than the operator's --max-endpoint-ports=10000"}},
		{name: "1000 endpoints x 11 ports", spec: withPorts(11, addresses(manyAddresses(1000)...)),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonTooManyEndpointPorts, refused: true, events: []string{v1alpha1.EventTooManyEndpointPorts},
			message: []string{"1000 endpoints x 11 ports = 11000"}},
		{name: "exactly at the bound: 100 endpoints x 100 ports", spec: withPorts(100, addresses(manyAddresses(100)...)),
			readyStatus: metav1.ConditionTrue, ready: v1alpha1.ReasonEndpointsReady, published: 100},
		{name: "denied addresses are not endpoints", spec: withPorts(100, addresses(append(manyAddresses(100), "127.0.0.1", "127.0.0.2")...)),
			readyStatus: metav1.ConditionTrue, ready: v1alpha1.ReasonEndpointsReady, published: 100, events: []string{v1alpha1.EventAddressDenied}},
		{name: "a name's answer past the endpoint-port bound", spec: withPorts(3, addresses("many.example.com")), names: []Name{many},
			limits:      withLimits(defaultLimits, func(l *Limits) { l.MaxEndpoints = 5000 }),
			readyStatus: metav1.ConditionFalse, ready: v1alpha1.ReasonTooManyEndpointPorts, refused: true, events: []string{v1alpha1.EventTooManyEndpointPorts},
			message: []string{"5000 endpoints x 3 ports = 15000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xb := backend(tt.spec)
			in := Inputs{Allow: allow, Now: now, Limits: tt.limits, Names: tt.names}
			if tt.limits.MaxEndpoints == 0 && tt.limits.AllowedServiceTypes == nil {
				in.Limits = defaultLimits
			}
			if tt.spec.ExternalName != "" {
				in.AliasErr = addressPolicy.CheckExternalName(xb.Namespace, tt.spec.ExternalName)
			}
			res := Compute(xb, in)
			st := res.Status(nil)
			ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if ready.Status != tt.readyStatus || ready.Reason != tt.ready {
				t.Fatalf("Ready %s %s (%s), want %s %s", ready.Status, ready.Reason, ready.Message, tt.readyStatus, tt.ready)
			}
			for _, m := range tt.message {
				if !strings.Contains(ready.Message, m) {
					t.Errorf("Ready message %q, want it to contain %q", ready.Message, m)
				}
			}
			if len(res.Endpoints) != tt.published {
				t.Errorf("%d endpoints published, want %d", len(res.Endpoints), tt.published)
			}
			if got := res.Refused != ""; got != tt.refused {
				t.Errorf("refused %q, want refused: %v", res.Refused, tt.refused)
			}
			if tt.refused && (res.Rows != nil || st.ServiceName != "" || st.Ready != "0/0" || ProbeTargets(xb, in) != nil) {
				t.Errorf("a refused backend shows rows %d, service %q, ready %s, probes %v", len(res.Rows), st.ServiceName, st.Ready, ProbeTargets(xb, in))
			}
			if len(res.Rows) > max(in.Limits.MaxEndpoints, 0) && in.Limits.MaxEndpoints > 0 {
				t.Errorf("%d status rows, more than the bound %d", len(res.Rows), in.Limits.MaxEndpoints)
			}
			var warnings []string
			for _, e := range res.Events {
				if e.Type == corev1.EventTypeWarning {
					warnings = append(warnings, e.Reason)
				}
			}
			if fmt.Sprint(warnings) != fmt.Sprint(tt.events) {
				t.Errorf("Warning Events %v, want %v", warnings, tt.events)
			}

			// Once reported, the same verdict is not reported again.
			xb.Status = st
			if again := Compute(xb, in).Events; len(again) > 0 {
				t.Errorf("reported again on the next reconcile: %v", again)
			}
		})
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestTooManyEndpointsKeepsTheFirstInSpecOrder(t *testing.T) {
	limits := withLimits(defaultLimits, func(l *Limits) { l.MaxEndpoints = 3 })
	xb := backend(addresses("192.0.2.9", "db.example.com", "192.0.2.1"))
	in := Inputs{Allow: allow, Now: now, Limits: limits,
		Names: []Name{resolved("db.example.com", "198.18.0.1", "198.18.0.2", "198.18.0.3")}}
	var got []string
	for _, e := range Compute(xb, in).Endpoints {
		got = append(got, e.Address.String())
	}
	// The literal first, then the name's addresses sorted (as the resolver
	// hands them); 192.0.2.1, last in the spec, is left out.
	if want := "192.0.2.9 198.18.0.1 198.18.0.2"; strings.Join(got, " ") != want {
		t.Errorf("published %v, want %s", got, want)
	}
}

func TestAnswersTruncated(t *testing.T) {
	xb := backend(addresses("big.example.com", "small.example.com"))
	big := resolved("big.example.com", "198.18.0.1", "198.18.0.2")
	big.State.Omitted = 250
	in := Inputs{Allow: allow, Now: now, Limits: defaultLimits, Names: []Name{big, resolved("small.example.com", "192.0.2.1")}}
	c := meta.FindStatusCondition(Compute(xb, in).Status(nil).Conditions, v1alpha1.ConditionResolved)
	want := "2 name(s) resolved to 3 address(es); answers hold more records than the operator's --max-records-per-answer, the smallest addresses are kept: big.example.com: 250 record(s) left out"
	if c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonAnswersTruncated || c.Message != want {
		t.Errorf("Resolved %s %s %q, want True %s %q", c.Status, c.Reason, c.Message, v1alpha1.ReasonAnswersTruncated, want)
	}
}

// Text a backend or a DNS server controls reaches status and Events only
// cut short and without control characters.
func TestBackendTextIsExcerpted(t *testing.T) {
	hostile := map[string]string{
		"a huge status line":      "HTTP GET http://192.0.2.1/: status 200 " + strings.Repeat("A", 100_000),
		"terminal escapes":        "status 500 \x1b[2J\x1b[31mPWNED\x1b[0m",
		"header injection":        "status 500 OK\r\nSet-Cookie: a=b\r\n\r\n<html>",
		"invalid UTF-8":           "status 500 \xff\xfe\xfd",
		"NUL bytes":               "status 500 \x00\x00\x00",
		"multi-byte at the cut":   strings.Repeat("é", 200),
		"right-to-left override":  "status 500 \u202egnp.exe",
		"a long CNAME chain text": strings.Repeat("a-very-long-label-of-a-cname-target.", 50),
	}
	for name, text := range hostile {
		t.Run(name, func(t *testing.T) {
			xb := backend(withHealthCheck(addresses("192.0.2.1", "evil.example.com")))
			evil := failing("evil.example.com", v1alpha1.ReasonServerFailure)
			evil.State.Err.Message = text
			in := Inputs{Allow: allow, Now: now, Limits: defaultLimits, Names: []Name{evil},
				Health: map[netip.Addr]probe.Status{netip.MustParseAddr("192.0.2.1"): {Known: true, LastError: text}}}
			st := Compute(xb, in).Status(nil)
			resolved := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionResolved)
			for what, got := range map[string]string{"row": st.Endpoints[0].Message, "Resolved": resolved.Message} {
				if len(got) > maxMessage+len("evil.example.com: ") {
					t.Errorf("%s message of %d bytes", what, len(got))
				}
				if !utf8.ValidString(got) {
					t.Errorf("%s message is not UTF-8: %q", what, got)
				}
				if strings.ContainsFunc(got, unicode.IsControl) {
					t.Errorf("%s message holds control characters: %q", what, got)
				}
			}
		})
	}
	if got := text.Excerpt("status 503 Service Unavailable", maxMessage); got != "status 503 Service Unavailable" {
		t.Errorf("a plain message changed: %q", got)
	}
}
