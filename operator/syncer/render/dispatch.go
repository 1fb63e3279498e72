package render

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/outpost-dev/outpost/operator/syncer/rules"
)

// Dispatch trie parameters (compact layout). A chain holding more than
// leafSize entries is split on the next fanBits bits after the prefix its
// entries share, so a chain never holds more than 2^fanBits bucket jumps
// or leafSize entries and a first packet walks O(log n) rules. Groups of at
// most inlineMax entries are written in place instead of behind a jump.
const (
	fanBits   = 4
	leafSize  = 16
	inlineMax = 2
)

// trieKey is a dispatch key as a big-endian bit string of width bits,
// left-aligned in two words so keys compare with two integer compares.
type trieKey struct {
	hi, lo uint64
	width  int
}

func addrKey(a netip.Addr) trieKey {
	if a.Is4() {
		v4 := a.As4()
		return trieKey{hi: uint64(binary.BigEndian.Uint32(v4[:])) << 32, width: 32}
	}
	b := a.As16()
	return trieKey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), width: 128}
}

func portKey(p int) trieKey { return trieKey{hi: uint64(p) << 48, width: 16} }

// prefix returns k with all bits from n on cleared.
func (k trieKey) prefix(n int) trieKey {
	switch {
	case n <= 0:
		k.hi, k.lo = 0, 0
	case n < 64:
		k.hi &^= ^uint64(0) >> n
		k.lo = 0
	case n < 128:
		k.lo &^= ^uint64(0) >> (n - 64)
	}
	return k
}

func commonPrefixLen(a, b trieKey) int {
	if x := a.hi ^ b.hi; x != 0 {
		return min(bits.LeadingZeros64(x), a.width)
	}
	if x := a.lo ^ b.lo; x != 0 {
		return min(64+bits.LeadingZeros64(x), a.width)
	}
	return a.width
}

func compareKeyed(a, b keyed) int {
	if c := cmp.Compare(a.key.hi, b.key.hi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.key.lo, b.key.lo); c != 0 {
		return c
	}
	// Same address (several ports): a stable, input-independent order.
	return strings.Compare(a.e.Rule, b.e.Rule)
}

// keyed is an entry with its trie key.
type keyed struct {
	key trieKey
	e   *Entry
}

// trie writes dispatch entries into a chain and, in the compact layout, its
// bucket chains.
type trie struct {
	rs     *rules.Ruleset
	table  rules.Table
	names  Names
	kind   string
	flat   bool
	match  func(k trieKey, bits int) string // the match selecting a bucket
	bucket func(k trieKey, bits int) string // the bucket chain's identity
}

func (t *trie) build(root string, entries []keyed) {
	slices.SortFunc(entries, compareKeyed)
	t.emit(t.rs.Chain(t.table, root), entries)
}

func (t *trie) writeEntries(c *rules.Chain, entries []keyed) {
	for _, k := range entries {
		c.Rules.Write("-A", c.Name, k.e.Rule)
	}
}

func (t *trie) emit(c *rules.Chain, entries []keyed) {
	if t.flat || len(entries) <= leafSize {
		t.writeEntries(c, entries)
		return
	}
	first, last := entries[0].key, entries[len(entries)-1].key
	shared := commonPrefixLen(first, last)
	if shared == first.width {
		// One address with many ports: nothing left to split on.
		t.writeEntries(c, entries)
		return
	}
	split := min(shared+fanBits, first.width)
	for start := 0; start < len(entries); {
		p := entries[start].key.prefix(split)
		end := start + 1
		for end < len(entries) && entries[end].key.prefix(split) == p {
			end++
		}
		group := entries[start:end]
		if len(group) <= inlineMax {
			t.writeEntries(c, group)
		} else {
			child := t.names.bucket(t.kind, string(t.table)+"/"+t.bucket(p, split))
			c.Rules.Write("-A", c.Name, t.match(p, split), "-j", child)
			t.emit(t.rs.Chain(t.table, child), group)
		}
		start = end
	}
}

func addrPrefix(k trieKey, n int) netip.Prefix {
	var a netip.Addr
	if k.width == 32 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.hi>>32))
		a = netip.AddrFrom4(b)
	} else {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], k.hi)
		binary.BigEndian.PutUint64(b[8:], k.lo)
		a = netip.AddrFrom16(b)
	}
	return netip.PrefixFrom(a, n)
}

func (r *Renderer) destTrie(rs *rules.Ruleset, table rules.Table) *trie {
	return &trie{
		rs: rs, table: table, names: r.names, kind: kindDestBucket, flat: r.cfg.Layout == KubeProxy,
		match:  func(k trieKey, bits int) string { return "-d " + addrPrefix(k, bits).String() },
		bucket: func(k trieKey, bits int) string { return addrPrefix(k, bits).String() },
	}
}

// portTrie dispatches node ports of one protocol by port range.
func (r *Renderer) portTrie(rs *rules.Ruleset, table rules.Table, proto string) *trie {
	portRange := func(k trieKey, bits int) string {
		lo := int(k.hi >> 48)
		hi := lo | (1<<(16-bits) - 1)
		return strconv.Itoa(lo) + ":" + strconv.Itoa(hi)
	}
	return &trie{
		rs: rs, table: table, names: r.names, kind: kindPortBucket, flat: r.cfg.Layout == KubeProxy,
		match: func(k trieKey, bits int) string {
			return "-p " + proto + " -m " + proto + " --dport " + portRange(k, bits)
		},
		bucket: func(k trieKey, bits int) string { return proto + "/" + portRange(k, bits) },
	}
}

// Assemble builds the complete rule set from rendered services: the fixed
// chains, the dispatch chains and every service's own chains.
func (r *Renderer) Assemble(services []*ServiceRules) *rules.Ruleset {
	rs := rules.NewRuleset()
	n := r.names
	var natDest, filterDest, filterExtDest []keyed
	natPorts := map[string][]keyed{}
	var filterExtPorts, filterFirewall, healthChecks []keyed
	for _, s := range services {
		for _, c := range s.Chains {
			rs.Add(c)
		}
		for i := range s.NATDest {
			natDest = append(natDest, keyed{addrKey(s.NATDest[i].Addr), &s.NATDest[i]})
		}
		for i := range s.NATNodePorts {
			e := &s.NATNodePorts[i]
			natPorts[e.Proto] = append(natPorts[e.Proto], keyed{portKey(e.Port), e})
		}
		for i := range s.FilterDest {
			filterDest = append(filterDest, keyed{addrKey(s.FilterDest[i].Addr), &s.FilterDest[i]})
		}
		for i := range s.FilterExtDest {
			filterExtDest = append(filterExtDest, keyed{addrKey(s.FilterExtDest[i].Addr), &s.FilterExtDest[i]})
		}
		for i := range s.FilterExtNodePorts {
			e := &s.FilterExtNodePorts[i]
			filterExtPorts = append(filterExtPorts, keyed{portKey(e.Port), e})
		}
		for i := range s.FilterFirewall {
			filterFirewall = append(filterFirewall, keyed{addrKey(s.FilterFirewall[i].Addr), &s.FilterFirewall[i]})
		}
		for i := range s.FilterHealthChecks {
			e := &s.FilterHealthChecks[i]
			healthChecks = append(healthChecks, keyed{portKey(e.Port), e})
		}
	}

	// nat
	r.destTrie(rs, rules.NAT).build(n.Services(), natDest)
	r.writeNodePortsJump(rs.Chain(rules.NAT, n.Services()))
	rs.Chain(rules.NAT, n.NodePorts())
	for _, proto := range sortedKeys(natPorts) {
		r.portTrie(rs, rules.NAT, proto).build(n.NodePorts(), natPorts[proto])
	}
	mark := r.cfg.mark()
	post := &rs.Chain(rules.NAT, n.Postrouting()).Rules
	post.Write("-A", n.Postrouting(), "-m mark ! --mark", mark+"/"+mark, "-j RETURN")
	post.Write("-A", n.Postrouting(), "-j MARK --xor-mark", mark)
	post.Write("-A", n.Postrouting(), comment("kubernetes service traffic requiring SNAT"), "-j MASQUERADE --random-fully")
	rs.Chain(rules.NAT, n.MarkMasq()).Rules.Write("-A", n.MarkMasq(), "-j MARK --or-mark", mark)
	rs.Chain(rules.NAT, n.Canary())

	// filter
	r.destTrie(rs, rules.Filter).build(n.Services(), filterDest)
	r.destTrie(rs, rules.Filter).build(n.ExternalServices(), filterExtDest)
	slices.SortFunc(filterExtPorts, compareKeyed)
	ext := rs.Chain(rules.Filter, n.ExternalServices())
	for _, k := range filterExtPorts {
		ext.Rules.Write("-A", ext.Name, k.e.Rule)
	}
	r.destTrie(rs, rules.Filter).build(n.Firewall(), filterFirewall)
	// The ports of one Service share its health check node port; the
	// compact layout renders them as one rule.
	slices.SortFunc(healthChecks, compareKeyed)
	healthChecks = slices.CompactFunc(healthChecks, func(a, b keyed) bool { return a.e.Rule == b.e.Rule })
	r.portTrie(rs, rules.Filter, "tcp").build(n.NodePorts(), healthChecks)
	fwd := &rs.Chain(rules.Filter, n.Forward()).Rules
	fwd.Write("-A", n.Forward(), "-m conntrack --ctstate INVALID -j DROP")
	fwd.Write("-A", n.Forward(), comment("kubernetes forwarding rules"), "-m mark --mark", mark+"/"+mark, "-j ACCEPT")
	fwd.Write("-A", n.Forward(), comment("kubernetes forwarding conntrack rule"), "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
	r.writeLocalnetFirewall(rs)
	rs.Chain(rules.Filter, n.Canary())
	return rs
}

// writeNodePortsJump ends <P>-SERVICES with the jump to the node ports:
// to every local address (but loopback unless LocalhostNodePorts), or to
// the configured node IPs only.
func (r *Renderer) writeNodePortsJump(c *rules.Chain) {
	const note = "kubernetes service nodeports; NOTE: this must be the last rule in this chain"
	localhost := r.cfg.AnswersLocalhostNodePorts()
	if len(r.cfg.NodeIPs) == 0 {
		switch {
		case r.cfg.IPv6:
			c.Rules.Write("-A", c.Name, comment(note), "-m addrtype --dst-type LOCAL ! -d ::1/128 -j", r.names.NodePorts())
		case localhost:
			c.Rules.Write("-A", c.Name, comment(note), "-m addrtype --dst-type LOCAL -j", r.names.NodePorts())
		default:
			c.Rules.Write("-A", c.Name, comment(note), "-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j", r.names.NodePorts())
		}
		return
	}
	for _, ip := range r.cfg.NodeIPs {
		if ip.IsLoopback() && !localhost {
			continue // without route_localnet the kernel drops it anyway
		}
		c.Rules.Write("-A", c.Name, comment(note), "-d", ip.String(), "-j", r.names.NodePorts())
	}
}

// writeLocalnetFirewall drops what arrives for 127.0.0.0/8 from another
// address: route_localnet, which localhost node ports need, would let a
// neighbour reach services bound to the node's loopback (kubernetes#90259).
func (r *Renderer) writeLocalnetFirewall(rs *rules.Ruleset) {
	if !r.cfg.AnswersLocalhostNodePorts() {
		return
	}
	name := r.names.LocalnetFirewall()
	rs.Chain(rules.Filter, name).Rules.Write("-A", name, comment("block incoming localnet connections"),
		"-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Render is the whole pure function: services with their endpoints in, the
// complete rule set out. endpoints is keyed by ServicePort.Key()+"/"+protocol
// (see EndpointsKey); each list must be sorted by Endpoint.String().
func (r *Renderer) Render(services []ServicePort, endpoints map[string][]Endpoint) *rules.Ruleset {
	rendered := make([]*ServiceRules, 0, len(services))
	for i := range services {
		sp := &services[i]
		rendered = append(rendered, r.Service(sp, endpoints[EndpointsKey(sp)]))
	}
	return r.Assemble(rendered)
}

// EndpointsKey identifies a service port's endpoint list.
func EndpointsKey(sp *ServicePort) string { return sp.Key() + "/" + sp.Protocol }

// Jumps lists the built-in chain jumps, as kube-proxy installs them.
func (r *Renderer) Jumps() []rules.Jump {
	n := r.names
	newConn := []string{"-m", "conntrack", "--ctstate", "NEW"}
	j := func(t rules.Table, from, comment, to string, extra []string) rules.Jump {
		args := append(append([]string{}, extra...), "-m", "comment", "--comment", comment, "-j", to)
		return rules.Jump{Table: t, From: from, Args: args}
	}
	jumps := []rules.Jump{
		j(rules.Filter, "INPUT", "kubernetes externally-visible service portals", n.ExternalServices(), newConn),
		j(rules.Filter, "FORWARD", "kubernetes externally-visible service portals", n.ExternalServices(), newConn),
		j(rules.Filter, "INPUT", "kubernetes health check service ports", n.NodePorts(), nil),
		j(rules.Filter, "FORWARD", "kubernetes service portals", n.Services(), newConn),
		j(rules.Filter, "OUTPUT", "kubernetes service portals", n.Services(), newConn),
		j(rules.Filter, "FORWARD", "kubernetes forwarding rules", n.Forward(), nil),
		j(rules.Filter, "INPUT", "kubernetes load balancer firewall", n.Firewall(), newConn),
		j(rules.Filter, "OUTPUT", "kubernetes load balancer firewall", n.Firewall(), newConn),
		j(rules.Filter, "FORWARD", "kubernetes load balancer firewall", n.Firewall(), newConn),
		j(rules.NAT, "OUTPUT", "kubernetes service portals", n.Services(), nil),
		j(rules.NAT, "PREROUTING", "kubernetes service portals", n.Services(), nil),
		j(rules.NAT, "POSTROUTING", "kubernetes postrouting rules", n.Postrouting(), nil),
	}
	if r.cfg.AnswersLocalhostNodePorts() {
		// As kube-proxy installs kubelet's chain: no comment.
		for _, from := range []string{"INPUT", "OUTPUT"} {
			jumps = append(jumps, rules.Jump{Table: rules.Filter, From: from, Args: []string{"-j", n.LocalnetFirewall()}})
		}
	}
	return jumps
}
