package render

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/outpost-dev/outpost/operator/syncer/rules"
)

// Entry is one dispatch rule of a service: a rule body (everything after
// "-A <chain> ") and the key the dispatch trie sorts it by (the destination
// address, or the node port).
type Entry struct {
	Addr  netip.Addr // destination address; zero for node-port entries
	Port  int        // node port for node-port entries
	Proto string
	Rule  string
}

// ServiceRules is everything one service port contributes: its own nat
// chains and the entries the shared dispatch chains collect. The syncer
// caches it per service port and re-renders only ports whose Service or
// EndpointSlices changed.
type ServiceRules struct {
	Key    string
	Chains []*rules.Chain
	// nat: to <P>-SERVICES by destination, to <P>-NODEPORTS by port.
	NATDest      []Entry
	NATNodePorts []Entry
	// filter: REJECT/DROP to <P>-SERVICES (cluster IPs) and
	// <P>-EXTERNAL-SERVICES (external and LB IPs by address, node ports).
	FilterDest         []Entry
	FilterExtDest      []Entry
	FilterExtNodePorts []Entry
	// filter: DROP of load-balancer traffic the firewall chain did not
	// accept, to <P>-PROXY-FIREWALL by destination; ACCEPT of the health
	// check node port, to <P>-NODEPORTS by port.
	FilterFirewall     []Entry
	FilterHealthChecks []Entry
}

// SameDispatch reports whether two renderings of a service contribute the
// same dispatch entries, so the shared dispatch chains need no rewrite.
func SameDispatch(a, b []*ServiceRules) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !slices.Equal(x.NATDest, y.NATDest) || !slices.Equal(x.NATNodePorts, y.NATNodePorts) ||
			!slices.Equal(x.FilterDest, y.FilterDest) || !slices.Equal(x.FilterExtDest, y.FilterExtDest) ||
			!slices.Equal(x.FilterExtNodePorts, y.FilterExtNodePorts) ||
			!slices.Equal(x.FilterFirewall, y.FilterFirewall) || !slices.Equal(x.FilterHealthChecks, y.FilterHealthChecks) {
			return false
		}
	}
	return true
}

// Renderer renders services for one Config. It keeps small caches
// (probability strings) and is not safe for concurrent use.
type Renderer struct {
	cfg   Config
	names Names
	// localCIDR is the first cluster CIDR ("" without one).
	localCIDR     string
	probabilities []string
}

// NewRenderer validates cfg and returns a renderer for it.
func NewRenderer(cfg Config) (*Renderer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Renderer{cfg: cfg, names: Names{cfg.Prefix}}
	if len(cfg.ClusterCIDRs) > 0 {
		r.localCIDR = cfg.ClusterCIDRs[0].String()
	}
	return r, nil
}

// Config returns the renderer's configuration.
func (r *Renderer) Config() Config { return r.cfg }

// Names returns the chain namer.
func (r *Renderer) Names() Names { return r.names }

// probability is kube-proxy's computeProbability: 1/n with ten decimals.
func (r *Renderer) probability(n int) string {
	for len(r.probabilities) <= n {
		i := len(r.probabilities)
		if i == 0 {
			r.probabilities = append(r.probabilities, "<bad value>")
			continue
		}
		r.probabilities = append(r.probabilities, strconv.FormatFloat(1.0/float64(i), 'f', 10, 64))
	}
	return r.probabilities[n]
}

// comment returns the words of a comment match, quoted like kube-proxy.
func comment(text string) string {
	if strings.ContainsAny(text, " ") {
		return `-m comment --comment "` + text + `"`
	}
	return "-m comment --comment " + text
}

// masqTarget is the jump that requests SNAT: kube-proxy jumps to
// KUBE-MARK-MASQ; the compact layout sets the mark inline (one chain
// fewer to walk).
func (r *Renderer) masqTarget() string {
	if r.cfg.Layout == KubeProxy {
		return "-j " + r.names.MarkMasq()
	}
	return "-j MARK --or-mark " + r.cfg.mark()
}

// Service renders one service port with its endpoints (of this family).
// The endpoints must be sorted by String(); Endpoints in the slice are not
// modified.
func (r *Renderer) Service(sp *ServicePort, eps []Endpoint) *ServiceRules {
	out := &ServiceRules{Key: sp.Key()}
	key, proto := out.Key, sp.Protocol
	n := r.names
	cluster, local, reachable, hasEndpoints := categorize(sp, eps, r.cfg.NodeName)

	svcChain := n.ServiceChain(key, proto)
	svlChain := n.LocalChain(key, proto)
	extChain := n.ExternalChain(key, proto)
	usesClusterChain := len(cluster) > 0 && usesClusterEndpoints(sp)
	usesLocalChain := len(local) > 0 && usesLocalEndpoints(sp)

	internalChain, hasInternal := svcChain, hasEndpoints
	if sp.InternalPolicyLocal {
		internalChain = svlChain
		hasInternal = len(local) > 0
	}
	externalPolicyChain, hasExternal := svcChain, hasEndpoints
	if sp.ExternalPolicyLocal {
		externalPolicyChain = svlChain
		hasExternal = len(local) > 0
	}
	usesExtChain := hasEndpoints && sp.ExternallyAccessible
	// With source ranges, load-balancer traffic goes through the firewall
	// chain: allowed sources continue to the external chain, the others
	// fall through un-DNATed and the filter table drops them.
	fwChain := n.FirewallChain(key, proto)
	usesFWChain := hasEndpoints && len(sp.LoadBalancerIPs) > 0 && len(sp.LoadBalancerSourceRanges) > 0
	lbChain := extChain
	if usesFWChain {
		lbChain = fwChain
	}

	var internalTarget, internalComment, externalTarget, externalComment string
	if !hasEndpoints {
		internalTarget, externalTarget = "REJECT", "REJECT"
		internalComment = key + " has no endpoints"
		externalComment = internalComment
	} else {
		if !hasInternal {
			internalTarget, internalComment = "DROP", key+" has no local endpoints"
		}
		if !hasExternal {
			externalTarget, externalComment = "DROP", key+" has no local endpoints"
		}
	}

	protoMatch := "-m " + proto + " -p " + proto
	port := strconv.Itoa(sp.Port)
	dest := func(ip netip.Addr, p string) string { return protoMatch + " -d " + ip.String() + " --dport " + p }

	// Cluster IP.
	if sp.ClusterIP.IsValid() {
		if hasInternal {
			out.NATDest = append(out.NATDest, Entry{Addr: sp.ClusterIP, Proto: proto,
				Rule: comment(key+" cluster IP") + " " + dest(sp.ClusterIP, port) + " -j " + internalChain})
		} else {
			out.FilterDest = append(out.FilterDest, Entry{Addr: sp.ClusterIP, Proto: proto,
				Rule: comment(internalComment) + " " + dest(sp.ClusterIP, port) + " -j " + internalTarget})
		}
	}
	// External IPs.
	for _, ip := range sp.ExternalIPs {
		if hasEndpoints {
			out.NATDest = append(out.NATDest, Entry{Addr: ip, Proto: proto,
				Rule: comment(key+" external IP") + " " + dest(ip, port) + " -j " + extChain})
		}
		if !hasExternal {
			out.FilterExtDest = append(out.FilterExtDest, Entry{Addr: ip, Proto: proto,
				Rule: comment(externalComment) + " " + dest(ip, port) + " -j " + externalTarget})
		}
	}
	// Load-balancer ingress IPs.
	for _, ip := range sp.LoadBalancerIPs {
		if hasEndpoints {
			out.NATDest = append(out.NATDest, Entry{Addr: ip, Proto: proto,
				Rule: comment(key+" loadbalancer IP") + " " + dest(ip, port) + " -j " + lbChain})
		}
		if usesFWChain {
			out.FilterFirewall = append(out.FilterFirewall, Entry{Addr: ip, Proto: proto,
				Rule: comment(key+" traffic not accepted by "+fwChain) + " " + dest(ip, port) + " -j DROP"})
		}
	}
	for _, ip := range sp.LoadBalancerIPs {
		if !hasExternal {
			out.FilterExtDest = append(out.FilterExtDest, Entry{Addr: ip, Proto: proto,
				Rule: comment(externalComment) + " " + dest(ip, port) + " -j " + externalTarget})
		}
	}
	// Node port.
	if sp.NodePort != 0 {
		np := strconv.Itoa(sp.NodePort)
		if hasEndpoints {
			out.NATNodePorts = append(out.NATNodePorts, Entry{Port: sp.NodePort, Proto: proto,
				Rule: comment(key) + " " + protoMatch + " --dport " + np + " -j " + extChain})
		}
		if !hasExternal {
			out.FilterExtNodePorts = append(out.FilterExtNodePorts, Entry{Port: sp.NodePort, Proto: proto,
				Rule: comment(externalComment) + " -m addrtype --dst-type LOCAL " + protoMatch + " --dport " + np + " -j " + externalTarget})
		}
	}

	// Health check node port: accepted whether or not this node has
	// endpoints, so that the load balancer learns which nodes have.
	if sp.HealthCheckNodePort != 0 {
		hc := strconv.Itoa(sp.HealthCheckNodePort)
		text := key + " health check node port"
		if r.cfg.Layout != KubeProxy {
			// Identical for every port of the Service: written once.
			text = sp.Namespace + "/" + sp.Name + " health check node port"
		}
		out.FilterHealthChecks = append(out.FilterHealthChecks, Entry{Port: sp.HealthCheckNodePort, Proto: "tcp",
			Rule: comment(text) + " -m tcp -p tcp --dport " + hc + " -j ACCEPT"})
	}

	if !hasEndpoints {
		return out
	}
	chains := map[string]*rules.Chain{}
	chain := func(name string) *rules.Chain {
		c, ok := chains[name]
		if !ok {
			c = &rules.Chain{ChainRef: rules.ChainRef{Table: rules.NAT, Name: name}}
			chains[name] = c
			out.Chains = append(out.Chains, c)
		}
		return c
	}

	// Internal traffic: masquerade what comes from outside the pod range.
	if hasInternal && sp.ClusterIP.IsValid() {
		match := comment(key+" cluster IP") + " " + dest(sp.ClusterIP, port)
		if r.cfg.MasqueradeAll {
			chain(internalChain).Rules.Write("-A", internalChain, match, r.masqTarget())
		} else if r.localCIDR != "" {
			chain(internalChain).Rules.Write("-A", internalChain, match, "! -s", r.localCIDR, r.masqTarget())
		}
	}

	// External traffic.
	if usesExtChain {
		ext := &chain(extChain).Rules
		if !sp.ExternalPolicyLocal {
			ext.Write("-A", extChain, comment("masquerade traffic for "+key+" external destinations"), r.masqTarget())
		} else {
			if r.localCIDR != "" {
				ext.Write("-A", extChain, comment("pod traffic for "+key+" external destinations"), "-s", r.localCIDR, "-j", svcChain)
			}
			ext.Write("-A", extChain, comment("masquerade LOCAL traffic for "+key+" external destinations"), "-m addrtype --src-type LOCAL", r.masqTarget())
			ext.Write("-A", extChain, comment("route LOCAL traffic for "+key+" external destinations"), "-m addrtype --src-type LOCAL -j", svcChain)
		}
		if hasExternal {
			ext.Write("-A", extChain, "-j", externalPolicyChain)
		}
	}

	if usesFWChain {
		r.writeFirewall(&chain(fwChain).Rules, sp, key, extChain)
	}

	// Pod traffic to a Local-policy external destination goes to the
	// cluster chain from any node (kube-proxy's "pod traffic" rule).
	remotePods := usesExtChain && sp.ExternalPolicyLocal && r.localCIDR != ""
	if usesClusterChain {
		r.writeEndpointDispatch(chain(svcChain), sp, key, cluster, remotePods, chain)
	}
	if usesLocalChain {
		r.writeEndpointDispatch(chain(svlChain), sp, key, local, false, chain)
	}
	if r.cfg.Layout == KubeProxy {
		for i := range reachable {
			ep := &reachable[i]
			epStr := ep.String()
			sep := n.EndpointChain(key, proto, epStr)
			c := &chain(sep).Rules
			c.Write("-A", sep, comment(key), "-s", ep.IP.String(), "-j", n.MarkMasq())
			if sp.AffinitySeconds > 0 {
				c.Write("-A", sep, comment(key), "-m recent --name", sep, "--set", protoMatch, "-j DNAT --to-destination", epStr)
			} else {
				c.Write("-A", sep, comment(key), protoMatch, "-j DNAT --to-destination", epStr)
			}
		}
	}
	return out
}

// writeFirewall writes the firewall chain: sources in the ranges continue
// to the external chain; so do the load-balancer IPs themselves when the
// node is in a range (a node reaching a VIP bound to one of its own
// addresses sends from the VIP). Everything else falls off the end
// un-DNATed, and <P>-PROXY-FIREWALL in the filter table drops it.
func (r *Renderer) writeFirewall(b *rules.LineBuffer, sp *ServicePort, key, extChain string) {
	name := r.names.FirewallChain(key, sp.Protocol)
	match := comment(key + " loadbalancer IP")
	allowFromNode := false
	node := r.cfg.primaryNodeIP()
	for _, p := range sp.LoadBalancerSourceRanges {
		b.Write("-A", name, match, "-s", p.String(), "-j", extChain)
		allowFromNode = allowFromNode || node.IsValid() && p.Contains(node)
	}
	if allowFromNode {
		for _, ip := range sp.LoadBalancerIPs {
			b.Write("-A", name, match, "-s", ip.String(), "-j", extChain)
		}
	}
	if r.cfg.Layout == KubeProxy {
		// A rule without a target, for the reader of iptables-save;
		// the compact layout spares the packet the walk over it.
		b.Write("-A", name, comment("other traffic to "+key+" will be dropped by "+r.names.Firewall()))
	}
}

// writeEndpointDispatch writes the rules choosing one of eps, uniformly at
// random (each rule takes 1/k of what the rules before it left), after the
// session-affinity rules that send a known client back to its endpoint.
// remotePods tells whether pods of other nodes reach the chain too (pod
// traffic to an externalTrafficPolicy: Local node port or external IP).
func (r *Renderer) writeEndpointDispatch(c *rules.Chain, sp *ServicePort, key string, eps []Endpoint, remotePods bool, hairpin func(name string) *rules.Chain) {
	name, proto := c.Name, sp.Protocol
	b := &c.Rules
	kube := r.cfg.Layout == KubeProxy
	affinity := strconv.Itoa(sp.AffinitySeconds)
	sticky := sp.AffinitySeconds > 0
	// Endpoint chain names are sha256 hashes: only compute them when the
	// layout, session affinity or a hairpin chain needs them.
	sepNames := make([]string, len(eps))
	// viaChain: the endpoint is reached through its own chain, which
	// masquerades the endpoint calling itself (hairpin: it would otherwise
	// answer itself directly, from the wrong address). kube-proxy has one
	// for every endpoint; the compact layout only for endpoints that can
	// send such a packet here unmasqueraded, so the others keep one rule
	// and every other source walks no hairpin rule.
	viaChain := make([]bool, len(eps))
	for i := range eps {
		viaChain[i] = kube || r.mayHairpin(&eps[i], remotePods)
		if kube || sticky || viaChain[i] {
			sepNames[i] = r.names.EndpointChain(key, proto, eps[i].String())
		}
	}
	if !kube {
		for i := range eps {
			if viaChain[i] {
				r.writeHairpinChain(hairpin(sepNames[i]), sp, &eps[i])
			}
		}
	}
	if sticky {
		for i := range eps {
			epStr, sep := eps[i].String(), sepNames[i]
			switch {
			case kube:
				b.Write("-A", name, comment(key+" -> "+epStr), "-m recent --name", sep, "--rcheck --seconds", affinity, "--reap -j", sep)
			case viaChain[i]:
				b.Write("-A", name, "-m recent --name", sep, "--rcheck --seconds", affinity, "--reap -j", sep)
			default:
				b.Write("-A", name, "-m recent --name", sep, "--rcheck --seconds", affinity, "--reap -m recent --name", sep, "--set -p", proto, "-j DNAT --to-destination", epStr)
			}
		}
	}
	b.Grow(len(eps) * (len(name) + 96))
	for i := range eps {
		ep := &eps[i]
		b.Start("-A", name)
		if kube {
			b.Word(comment(key + " -> " + ep.String()))
		}
		if i < len(eps)-1 {
			b.Word("-m statistic --mode random --probability", r.probability(len(eps)-i))
		}
		if viaChain[i] {
			b.Word("-j", sepNames[i]).End()
			continue
		}
		if sticky {
			b.Word("-m recent --name", sepNames[i], "--set")
		}
		b.Word("-p", proto, "-j DNAT --to-destination").AddrPort(netip.AddrPortFrom(ep.IP, uint16(ep.Port))).End()
	}
}

// writeHairpinChain writes the compact layout's chain of one endpoint
// that may call itself: kube-proxy's KUBE-SEP chain with the mark set
// inline.
func (r *Renderer) writeHairpinChain(c *rules.Chain, sp *ServicePort, ep *Endpoint) {
	if c.Rules.Lines() > 0 {
		return // the endpoint is in both the cluster and the local chain
	}
	c.Rules.Write("-A", c.Name, "-s", ep.IP.String(), r.masqTarget())
	c.Rules.Start("-A", c.Name)
	if sp.AffinitySeconds > 0 {
		c.Rules.Word("-m recent --name", c.Name, "--set")
	}
	c.Rules.Word("-p", sp.Protocol, "-j DNAT --to-destination").AddrPort(netip.AddrPortFrom(ep.IP, uint16(ep.Port))).End()
}

// mayHairpin reports whether a first packet from ep itself can reach a
// chain of this node unmasqueraded, so that landing on ep must masquerade
// it: pods of this node (and of unknown node in the pod range, or
// anywhere without a pod range) through the cluster IP; pods of other
// nodes only through external destinations when remotePods. Sources
// outside the pod range are masqueraded by the cluster IP rule, the
// external chain masquerades the node itself and, with Cluster policy,
// everyone.
func (r *Renderer) mayHairpin(ep *Endpoint, remotePods bool) bool {
	if ep.NodeName != "" && ep.NodeName == r.cfg.NodeName {
		return true
	}
	inPodRange := len(r.cfg.ClusterCIDRs) == 0 || slices.ContainsFunc(r.cfg.ClusterCIDRs, func(p netip.Prefix) bool { return p.Contains(ep.IP) })
	if ep.NodeName == "" {
		return inPodRange
	}
	return remotePods && len(r.cfg.ClusterCIDRs) > 0 && inPodRange
}

func usesClusterEndpoints(sp *ServicePort) bool {
	return !sp.InternalPolicyLocal || sp.ExternallyAccessible
}

func usesLocalEndpoints(sp *ServicePort) bool {
	return sp.InternalPolicyLocal || (sp.ExternalPolicyLocal && sp.ExternallyAccessible)
}

// categorize is kube-proxy's CategorizeEndpoints without topology hints:
// ready endpoints, or serving terminating ones when none is ready.
func categorize(sp *ServicePort, eps []Endpoint, node string) (cluster, local, reachable []Endpoint, hasAny bool) {
	if len(eps) == 0 {
		return
	}
	isLocal := func(ep *Endpoint) bool { return node != "" && ep.NodeName == node }
	if usesClusterEndpoints(sp) {
		for _, ep := range eps {
			if ep.Ready {
				cluster = append(cluster, ep)
			}
		}
		if len(cluster) == 0 {
			for _, ep := range eps {
				if ep.Serving && ep.Terminating {
					cluster = append(cluster, ep)
				}
			}
		}
		hasAny = len(cluster) > 0
	}
	if !usesLocalEndpoints(sp) {
		return cluster, nil, cluster, hasAny
	}
	var localReady, localTerminating bool
	for i := range eps {
		ep := &eps[i]
		if ep.Ready {
			hasAny = true
			localReady = localReady || isLocal(ep)
		} else if ep.Serving && ep.Terminating {
			hasAny = true
			localTerminating = localTerminating || isLocal(ep)
		}
	}
	useTerminating := false
	for i := range eps {
		ep := &eps[i]
		if !isLocal(ep) {
			continue
		}
		if localReady && ep.Ready {
			local = append(local, *ep)
		} else if !localReady && localTerminating && ep.Serving && ep.Terminating {
			useTerminating = true
			local = append(local, *ep)
		}
	}
	if !usesClusterEndpoints(sp) {
		return nil, local, local, hasAny
	}
	if !useTerminating {
		// cluster holds every ready endpoint, a superset of local.
		return cluster, local, cluster, hasAny
	}
	seen := map[string]bool{}
	for _, list := range [][]Endpoint{cluster, local} {
		for _, ep := range list {
			if s := ep.String(); !seen[s] {
				seen[s] = true
				reachable = append(reachable, ep)
			}
		}
	}
	return cluster, local, reachable, hasAny
}
