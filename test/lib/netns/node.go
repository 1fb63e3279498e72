package netns

import (
	"fmt"
	"os"
	"slices"
	"testing"
)

// NodeNetwork is one Kubernetes node as the datapath tests build it, each
// part a namespace of its own: a client (a pod, or a machine outside) whose
// default route is the node across a veth pair, and backends on a bridge in
// the node. The node routes like a real one (RouteLikeANode), so the rules a
// syncer writes there see what they would on a node.
type NodeNetwork struct {
	Node, Client *NS
	Backends     []Backend
}

// Backend is a machine behind the node, on its bridge.
type Backend struct {
	Name string // b1, b2, ...
	IP   string // 198.51.100.11, .12, ...
	NS   *NS
}

// NodeNetworkSpec says how to build a NodeNetwork.
type NodeNetworkSpec struct {
	// Prefix names the namespaces (PREFIX-node, PREFIX-client, PREFIX-b1)
	// and, with the pid, the links; two or three letters, so link names
	// stay within 15 characters.
	Prefix string
	// ClientIP and NodeIP are the ends of the client's link, BridgeIP the
	// node's address on the backends' bridge; each is on a /24.
	ClientIP, NodeIP, BridgeIP string
	// Backends is how many backends to make.
	Backends int
	// NoRouteBack lists backends (1-based) without a default route: they
	// can answer the client only when the node masquerades.
	NoRouteBack []int
}

// NewNodeNetwork builds the namespaces and links of spec; they are deleted
// when the test ends.
func NewNodeNetwork(t testing.TB, spec NodeNetworkSpec) *NodeNetwork {
	t.Helper()
	n := &NodeNetwork{Node: New(t, spec.Prefix+"-node"), Client: New(t, spec.Prefix+"-client")}
	short := fmt.Sprint(os.Getpid() % 100000)

	clientLink, nodeLink := spec.Prefix+"c"+short, spec.Prefix+"n"+short
	Must(t, "ip", "link", "add", clientLink, "netns", n.Client.Name, "type", "veth", "peer", "name", nodeLink, "netns", n.Node.Name)
	n.Client.Must(t, "ip", "addr", "add", spec.ClientIP+"/24", "dev", clientLink)
	n.Client.Must(t, "ip", "link", "set", clientLink, "up")
	n.Client.Must(t, "ip", "route", "add", "default", "via", spec.NodeIP)
	n.Node.Must(t, "ip", "addr", "add", spec.NodeIP+"/24", "dev", nodeLink)
	n.Node.Must(t, "ip", "link", "set", nodeLink, "up")
	n.Node.RouteLikeANode(t)
	n.Node.Must(t, "ip", "link", "add", "br0", "type", "bridge")
	n.Node.Must(t, "ip", "addr", "add", spec.BridgeIP+"/24", "dev", "br0")
	n.Node.Must(t, "ip", "link", "set", "br0", "up")

	for i := 1; i <= spec.Backends; i++ {
		b := Backend{Name: fmt.Sprintf("b%d", i), IP: fmt.Sprintf("198.51.100.%d", 10+i)}
		b.NS = New(t, spec.Prefix+"-"+b.Name)
		inner, outer := fmt.Sprintf("%sb%d%s", spec.Prefix, i, short), fmt.Sprintf("%sx%d%s", spec.Prefix, i, short)
		Must(t, "ip", "link", "add", inner, "netns", b.NS.Name, "type", "veth", "peer", "name", outer, "netns", n.Node.Name)
		n.Node.Must(t, "ip", "link", "set", outer, "master", "br0")
		n.Node.Must(t, "ip", "link", "set", outer, "up")
		b.NS.Must(t, "ip", "addr", "add", b.IP+"/24", "dev", inner)
		b.NS.Must(t, "ip", "link", "set", inner, "up")
		if !slices.Contains(spec.NoRouteBack, i) {
			b.NS.Must(t, "ip", "route", "add", "default", "via", spec.BridgeIP)
		}
		n.Backends = append(n.Backends, b)
	}
	return n
}
