// Package conntrack deletes the conntrack entries of UDP and SCTP flows that
// a Service's rules no longer send where the entry says, with kube-proxy
// v1.37's semantics (pkg/proxy/conntrack): an entry whose original
// destination is a Service frontend (cluster IP, external IP or load
// balancer IP with the Service port, or any address with the node port) and
// whose reply source is not one of the Service's serving endpoints is
// stale. The kernel keeps NAT decisions in conntrack, and a datagram flow
// refreshes its entry with every packet, so without the deletion a client
// sending from a fixed port keeps reaching a removed endpoint (or the black
// hole it hit while the Service had no endpoint) forever.
//
// Beyond kube-proxy v1.37, which reconciles every UDP Service after every
// sync, only frontends whose endpoints changed in a way that can strand a
// flow are checked (an endpoint stopped serving, the first endpoint
// appeared, the frontend went away), SCTP is handled like UDP (as
// kube-proxy did before v1.31), and a deleted Service's frontends are
// cleaned too.
//
// The decision (Targets, Stale, Pending) is pure; Netlink is the thin
// kernel side.
package conntrack

import (
	"maps"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/outpost-dev/outpost/operator/syncer/render"
)

// Frontend is where a client sends a Service's packets: an address and
// port, or (Addr invalid) a node port on any address.
type Frontend struct {
	Proto uint8 // unix.IPPROTO_UDP or unix.IPPROTO_SCTP
	Addr  netip.Addr
	Port  uint16
}

// Serving is the set of endpoints (ip:port) a frontend's packets may be
// DNATed to.
type Serving map[netip.AddrPort]struct{}

// Targets maps each frontend of one or more Services to its serving
// endpoints. The zero value is empty and ready to use.
type Targets map[Frontend]Serving

// protocol returns the protocol number of a render protocol name, and false
// for protocols without stale-entry trouble (TCP: a connection to a removed
// endpoint is reset, the next one is NATed afresh).
func protocol(p string) (uint8, bool) {
	switch p {
	case "udp":
		return unix.IPPROTO_UDP, true
	case "sctp":
		return unix.IPPROTO_SCTP, true
	}
	return 0, false
}

// Add records a Service port's frontends with its serving endpoints (as
// kube-proxy: traffic policies, topology and terminating state do not
// count; an entry to an endpoint still serving stays). TCP ports are
// ignored.
func (t Targets) Add(sp *render.ServicePort, eps []render.Endpoint) {
	proto, ok := protocol(sp.Protocol)
	if !ok {
		return
	}
	serving := Serving{}
	for _, ep := range eps {
		if ep.Serving {
			serving[netip.AddrPortFrom(ep.IP, uint16(ep.Port))] = struct{}{}
		}
	}
	port := uint16(sp.Port)
	if sp.ClusterIP.IsValid() {
		t[Frontend{proto, sp.ClusterIP, port}] = serving
	}
	for _, ip := range sp.ExternalIPs {
		t[Frontend{proto, ip, port}] = serving
	}
	for _, ip := range sp.LoadBalancerIPs {
		t[Frontend{proto, ip, port}] = serving
	}
	if sp.NodePort != 0 {
		t[Frontend{Proto: proto, Port: uint16(sp.NodePort)}] = serving
	}
}

// Stale returns the frontends of next whose conntrack entries may point
// where the rules no longer send, with next's serving endpoints: those
// where an endpoint of prev stopped serving, those that got their first
// endpoint (entries made while packets were rejected or black-holed), and
// (with no endpoints) those of prev that next no longer has. prevKnown
// false means the previous state is unknown (the syncer just started):
// every frontend of next is returned.
func Stale(prev, next Targets, prevKnown bool) Targets {
	out := Targets{}
	for f, now := range next {
		before, existed := prev[f]
		if !prevKnown || !existed || lostOrFirst(before, now) {
			out[f] = now
		}
	}
	for f := range prev {
		if _, ok := next[f]; !ok {
			out[f] = Serving{}
		}
	}
	return out
}

func lostOrFirst(before, now Serving) bool {
	if len(before) == 0 {
		return len(now) > 0
	}
	for ep := range before {
		if _, ok := now[ep]; !ok {
			return true
		}
	}
	return false
}

// Pending accumulates the frontends to clean until a cleanup succeeds:
// entries may only be deleted once the rules that replace them are in the
// kernel, and a failed restore postpones both.
type Pending struct{ Targets }

// Update records one Service's change from prev to next (see Stale). A
// frontend already pending takes next's serving endpoints, so a later
// change never deletes entries to an endpoint that serves again.
func (p *Pending) Update(prev, next Targets, prevKnown bool) {
	if p.Targets == nil {
		p.Targets = Targets{}
	}
	maps.Copy(p.Targets, Stale(prev, next, prevKnown))
	for f := range p.Targets {
		if now, ok := next[f]; ok {
			p.Targets[f] = now
		}
	}
}

// Flow is what the decision needs of a conntrack entry.
type Flow struct {
	Proto uint8
	// OrigDst is where the client sent the first packet; ReplySrc is who
	// answers (the endpoint when the flow was DNATed).
	OrigDst, ReplySrc netip.AddrPort
}

// Stale reports whether the flow's entry must go: it was sent to one of
// the frontends and is not answered by one of their serving endpoints. A
// node port without serving endpoints matches nothing (as in kube-proxy:
// node port entries are matched on the port alone, and with no endpoint to
// tell ours apart every flow to that port on any host would match).
func (t Targets) Stale(f Flow) bool {
	if serving, ok := t[Frontend{f.Proto, f.OrigDst.Addr(), f.OrigDst.Port()}]; ok {
		_, serves := serving[f.ReplySrc]
		return !serves
	}
	if serving, ok := t[Frontend{Proto: f.Proto, Port: f.OrigDst.Port()}]; ok && len(serving) > 0 {
		_, serves := serving[f.ReplySrc]
		return !serves
	}
	return false
}
