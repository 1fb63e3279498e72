// Package render turns services, endpoints and node configuration into the
// iptables rules of kube-proxy's iptables mode. It is pure: no I/O, no
// clock, no globals; the same input always gives the same rules.
//
// Two layouts are supported:
//   - KubeProxy reproduces kube-proxy v1.37's rules and chain names exactly
//     (with prefix KUBE): one flat KUBE-SERVICES chain walked linearly by
//     every first packet, a KUBE-SEP chain and three rules per endpoint.
//   - Compact (the default) keeps kube-proxy's semantics but dispatches
//     through a trie of bucket chains keyed by destination prefix (and by
//     node-port range), so a first packet walks a few dozen rules instead of
//     half the services, and a one-endpoint change rewrites only that
//     service's own chain. Endpoints are DNATed straight from the service
//     chain (one rule per endpoint instead of three); only an endpoint that
//     can call itself through this node gets kube-proxy's endpoint chain,
//     whose hairpin rule masquerades it when it lands on itself.
package render

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Layout selects the chain layout.
type Layout int

const (
	// Compact is the default: bucketed dispatch and inline DNAT.
	Compact Layout = iota
	// KubeProxy is kube-proxy's flat layout, rule for rule.
	KubeProxy
)

// ParseLayout parses a --layout flag value.
func ParseLayout(s string) (Layout, error) {
	switch s {
	case "compact", "":
		return Compact, nil
	case "kube-proxy":
		return KubeProxy, nil
	}
	return 0, fmt.Errorf("layout %q: must be compact or kube-proxy", s)
}

// Set makes *Layout a flag.Value for --layout.
func (l *Layout) Set(s string) error {
	v, err := ParseLayout(s)
	if err != nil {
		return err
	}
	*l = v
	return nil
}

func (l Layout) String() string {
	if l == KubeProxy {
		return "kube-proxy"
	}
	return "compact"
}

// MaxPrefixLen is the longest chain prefix: a service chain is
// "<prefix>-SVC-<16 chars>" and iptables limits chain names to 28 bytes.
const MaxPrefixLen = 7

// Config is the node-level configuration of one IP family's rules.
type Config struct {
	// Prefix starts every chain name ("OUTPOST", or "KUBE" to reproduce
	// kube-proxy's names).
	Prefix string
	Layout Layout
	// IPv6 selects the family; services and endpoints must be of it.
	IPv6 bool
	// NodeName decides which endpoints are local (EndpointSlice nodeName).
	NodeName string
	// NodeIPs restricts node ports to these destination addresses; empty
	// means every local address except loopback (see LocalhostNodePorts).
	NodeIPs []netip.Addr
	// LocalhostNodePorts answers node ports on 127.0.0.0/8 too, as
	// kube-proxy does by default (--iptables-localhost-nodeports): IPv4
	// only, and with NodeIPs only if one of them is a loopback address
	// (without it a loopback node IP is left out, as kube-proxy does). The
	// node must have route_localnet=1,
	// or the kernel drops a DNATed packet from loopback; the filter table
	// then drops what arrives for 127.0.0.0/8 from elsewhere (kube-proxy's
	// KUBE-FIREWALL rule, the mitigation of kubernetes#90259).
	LocalhostNodePorts bool
	// ClusterCIDRs is the pod range: traffic to a ClusterIP from outside
	// it is masqueraded. Empty disables that rule (as kube-proxy does
	// without a local-traffic detector).
	ClusterCIDRs []netip.Prefix
	// MasqueradeAll masquerades all ClusterIP traffic.
	MasqueradeAll bool
	// MasqueradeMark is the fwmark bit used to request SNAT ("0x4000").
	MasqueradeMark string
	// PrimaryNodeIP is the node's own address of this family (kube-proxy's
	// node IP); zero means the first of NodeIPs. When a
	// loadBalancerSourceRanges entry contains it, traffic whose source is
	// a load-balancer IP is allowed too: a node reaching a VIP that is one
	// of its local addresses loops back with the VIP as source.
	PrimaryNodeIP netip.Addr
}

// Validate reports a configuration error naming the field.
func (c *Config) Validate() error {
	if c.Prefix == "" || len(c.Prefix) > MaxPrefixLen {
		return fmt.Errorf("chain prefix %q: must be 1 to %d characters", c.Prefix, MaxPrefixLen)
	}
	if strings.ContainsAny(c.Prefix, " \t\"'-") {
		return fmt.Errorf("chain prefix %q: must not contain spaces, quotes or '-'", c.Prefix)
	}
	for _, ip := range c.NodeIPs {
		if ip.Is6() != c.IPv6 {
			return fmt.Errorf("node IP %s: wrong IP family", ip)
		}
	}
	if c.PrimaryNodeIP.IsValid() && c.PrimaryNodeIP.Is6() != c.IPv6 {
		return fmt.Errorf("primary node IP %s: wrong IP family", c.PrimaryNodeIP)
	}
	for _, p := range c.ClusterCIDRs {
		if p.Addr().Is6() != c.IPv6 {
			return fmt.Errorf("cluster CIDR %s: wrong IP family", p)
		}
	}
	return nil
}

// AnswersLocalhostNodePorts is LocalhostNodePorts where kube-proxy honours
// it: then the node needs route_localnet=1.
func (c *Config) AnswersLocalhostNodePorts() bool {
	if !c.LocalhostNodePorts || c.IPv6 {
		return false
	}
	return len(c.NodeIPs) == 0 || slices.ContainsFunc(c.NodeIPs, netip.Addr.IsLoopback)
}

// primaryNodeIP is PrimaryNodeIP, defaulted to the first node IP.
func (c *Config) primaryNodeIP() netip.Addr {
	if !c.PrimaryNodeIP.IsValid() && len(c.NodeIPs) > 0 {
		return c.NodeIPs[0]
	}
	return c.PrimaryNodeIP
}

func (c *Config) mark() string {
	if c.MasqueradeMark == "" {
		return "0x4000"
	}
	return c.MasqueradeMark
}

// ServicePort is one port of one Service, for one IP family, reduced to
// what the rules need.
type ServicePort struct {
	Namespace string
	Name      string
	// PortName is the Service port's name ("" for an unnamed single port).
	PortName string
	// Protocol is lower case: tcp, udp or sctp.
	Protocol  string
	ClusterIP netip.Addr
	Port      int
	NodePort  int
	// ExternalIPs and LoadBalancerIPs are of this family only.
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr
	// LoadBalancerSourceRanges (of this family, masked) restrict who may
	// reach LoadBalancerIPs: other sources are dropped. Empty allows
	// everyone, as does a range of length 0 (the caller drops the list
	// then, as kube-proxy does). Node ports and external IPs are not
	// restricted.
	LoadBalancerSourceRanges []netip.Prefix
	// HealthCheckNodePort is spec.healthCheckNodePort of a LoadBalancer
	// Service with externalTrafficPolicy: Local (0 otherwise): the filter
	// table accepts it so that the load balancer can probe the node.
	HealthCheckNodePort int
	// ExternalPolicyLocal is externalTrafficPolicy: Local on an externally
	// accessible service; InternalPolicyLocal is internalTrafficPolicy: Local.
	ExternalPolicyLocal bool
	InternalPolicyLocal bool
	// AffinitySeconds > 0 means ClientIP session affinity with that timeout.
	AffinitySeconds int
	// ExternallyAccessible is set for NodePort and LoadBalancer services
	// and for services with external IPs.
	ExternallyAccessible bool
}

// Key is kube-proxy's ServicePortName string: "ns/name:port" (or "ns/name"
// for an unnamed port). Chain hashes are computed from it.
func (s *ServicePort) Key() string {
	if s.PortName == "" {
		return s.Namespace + "/" + s.Name
	}
	return s.Namespace + "/" + s.Name + ":" + s.PortName
}

// Endpoint is one backend address of a service port.
type Endpoint struct {
	IP   netip.Addr
	Port int
	// Ready, Serving and Terminating are the EndpointSlice conditions with
	// their defaults applied (Ready nil = true, Serving nil = Ready,
	// Terminating nil = false).
	Ready       bool
	Serving     bool
	Terminating bool
	// NodeName is the node the endpoint runs on, "" if unknown or external.
	NodeName string
}

// String is "ip:port" ("[ip]:port" for IPv6), as kube-proxy hashes it.
func (e *Endpoint) String() string {
	return netip.AddrPortFrom(e.IP, uint16(e.Port)).String()
}
