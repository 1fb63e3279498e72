package render

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Chain kinds. With prefix KUBE they are kube-proxy's names.
const (
	kindServiceCluster = "-SVC-" // endpoints for Cluster policy
	kindServiceLocal   = "-SVL-" // node-local endpoints for Local policy
	kindExternal       = "-EXT-" // external destinations (NodePort, external and LB IPs)
	kindEndpoint       = "-SEP-" // one endpoint (kube-proxy layout only)
	kindFirewall       = "-FW-"  // loadBalancerSourceRanges of a service port
	kindDestBucket     = "-DST-" // compact layout: bucket of destination addresses
	kindPortBucket     = "-NPB-" // compact layout: bucket of node ports
)

// ownedKinds are the per-object chain kinds; a chain of one of them that is
// not in the desired rule set is stale and deleted.
var ownedKinds = []string{kindServiceCluster, kindServiceLocal, kindExternal, kindEndpoint, kindDestBucket, kindPortBucket, kindFirewall}

// hash16 is kube-proxy's portProtoHash: base32(sha256(s))[:16].
func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:16]
}

// Names computes chain names for a prefix.
type Names struct{ Prefix string }

// Top-level chains.
func (n Names) Services() string         { return n.Prefix + "-SERVICES" }
func (n Names) ExternalServices() string { return n.Prefix + "-EXTERNAL-SERVICES" }
func (n Names) NodePorts() string        { return n.Prefix + "-NODEPORTS" }
func (n Names) Postrouting() string      { return n.Prefix + "-POSTROUTING" }
func (n Names) MarkMasq() string         { return n.Prefix + "-MARK-MASQ" }
func (n Names) Forward() string          { return n.Prefix + "-FORWARD" }

// Firewall is the filter chain dropping load-balancer traffic that the
// service's firewall chain did not accept (KUBE-PROXY-FIREWALL).
func (n Names) Firewall() string { return n.Prefix + "-PROXY-FIREWALL" }

// LocalnetFirewall is the filter chain dropping packets for 127.0.0.0/8
// from elsewhere, which route_localnet would otherwise let in
// (KUBE-FIREWALL, a copy of kubelet's).
func (n Names) LocalnetFirewall() string { return n.Prefix + "-FIREWALL" }

// Canary is an empty chain whose disappearance means someone flushed the
// table; its name matches kube-proxy's KUBE-PROXY-CANARY for prefix KUBE.
func (n Names) Canary() string { return n.Prefix + "-PROXY-CANARY" }

// ServiceChain is the Cluster-policy chain of a service port
// (KUBE-SVC-XPGD46QRK7WJZT7O for ns1/svc1:p80 tcp).
func (n Names) ServiceChain(svcKey, protocol string) string {
	return n.Prefix + kindServiceCluster + hash16(svcKey+protocol)
}

// LocalChain is the Local-policy chain of a service port.
func (n Names) LocalChain(svcKey, protocol string) string {
	return n.Prefix + kindServiceLocal + hash16(svcKey+protocol)
}

// ExternalChain is the external-destinations chain of a service port.
func (n Names) ExternalChain(svcKey, protocol string) string {
	return n.Prefix + kindExternal + hash16(svcKey+protocol)
}

// FirewallChain is the nat chain admitting the loadBalancerSourceRanges
// of a service port (KUBE-FW-...).
func (n Names) FirewallChain(svcKey, protocol string) string {
	return n.Prefix + kindFirewall + hash16(svcKey+protocol)
}

// EndpointChain is the chain of one endpoint of a service port
// (KUBE-SEP-SXIVWICOYRO3J4NJ for ns1/svc1:p80 tcp 10.180.0.1:80). The
// compact layout has no such chain but uses the name for the session
// affinity "recent" list, as kube-proxy does.
func (n Names) EndpointChain(svcKey, protocol, endpoint string) string {
	return n.Prefix + kindEndpoint + hash16(svcKey+protocol+endpoint)
}

func (n Names) bucket(kind, id string) string {
	return n.Prefix + kind + hash16(id)
}

// Owns reports whether a chain name is one of the per-object chains this
// prefix generates (and so may be deleted when no longer desired).
func (n Names) Owns(chain string) bool {
	rest, ok := strings.CutPrefix(chain, n.Prefix)
	if !ok {
		return false
	}
	for _, k := range ownedKinds {
		if strings.HasPrefix(rest, k) {
			return true
		}
	}
	return false
}
