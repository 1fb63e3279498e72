package conntrack

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/outpost-dev/outpost/operator/syncer/render"
)

var (
	clusterIP = netip.MustParseAddr("10.96.0.10")
	extIP     = netip.MustParseAddr("192.0.2.7")
	lbIP      = netip.MustParseAddr("192.0.2.8")
	ep1       = netip.MustParseAddrPort("10.244.1.1:5353")
	ep2       = netip.MustParseAddrPort("10.244.1.2:5353")
	client    = netip.MustParseAddrPort("10.244.9.9:40000")
)

func udpService(eps ...netip.AddrPort) Targets {
	sp := &render.ServicePort{Namespace: "ns", Name: "dns", Protocol: "udp", ClusterIP: clusterIP, Port: 53, NodePort: 30053,
		ExternalIPs: []netip.Addr{extIP}, LoadBalancerIPs: []netip.Addr{lbIP}}
	var list []render.Endpoint
	for _, ep := range eps {
		list = append(list, render.Endpoint{IP: ep.Addr(), Port: int(ep.Port()), Ready: true, Serving: true})
	}
	// A terminating endpoint that no longer serves does not keep entries.
	list = append(list, render.Endpoint{IP: netip.MustParseAddr("10.244.1.99"), Port: 5353, Terminating: true})
	t := Targets{}
	t.Add(sp, list)
	return t
}

func flow(dst string, replySrc netip.AddrPort) Flow {
	return Flow{Proto: unix.IPPROTO_UDP, OrigDst: netip.MustParseAddrPort(dst), ReplySrc: replySrc}
}

func TestTCPHasNoTargets(t *testing.T) {
	tg := Targets{}
	tg.Add(&render.ServicePort{Protocol: "tcp", ClusterIP: clusterIP, Port: 80}, []render.Endpoint{{IP: ep1.Addr(), Port: 80, Serving: true}})
	if len(tg) != 0 {
		t.Errorf("TCP port gave targets %v", tg)
	}
}

func TestRemovedEndpointMakesEveryFrontendStale(t *testing.T) {
	stale := Stale(udpService(ep1, ep2), udpService(ep2), true)
	for _, dst := range []string{"10.96.0.10:53", "192.0.2.7:53", "192.0.2.8:53", "203.0.113.1:30053"} {
		if !stale.Stale(flow(dst, ep1)) {
			t.Errorf("flow to %s answered by the removed %s is kept", dst, ep1)
		}
		if stale.Stale(flow(dst, ep2)) {
			t.Errorf("flow to %s answered by the serving %s is deleted", dst, ep2)
		}
	}
	if stale.Stale(flow("10.96.0.10:54", ep1)) {
		t.Error("flow to another port of the cluster IP is deleted")
	}
	if stale.Stale(Flow{Proto: unix.IPPROTO_TCP, OrigDst: netip.MustParseAddrPort("10.96.0.10:53"), ReplySrc: ep1}) {
		t.Error("TCP flow is deleted")
	}
}

func TestFirstEndpointClearsBlackHoledFlows(t *testing.T) {
	stale := Stale(udpService(), udpService(ep1), true)
	// Not DNATed: the reply would come from the cluster IP itself.
	if !stale.Stale(flow("10.96.0.10:53", netip.AddrPortFrom(clusterIP, 53))) {
		t.Error("flow sent while the Service had no endpoint is kept")
	}
}

func TestNoChangeThatStrandsAFlow(t *testing.T) {
	for name, c := range map[string]struct{ prev, next Targets }{
		"unchanged":      {udpService(ep1), udpService(ep1)},
		"endpoint added": {udpService(ep1), udpService(ep1, ep2)},
		"still empty":    {udpService(), udpService()},
	} {
		if got := Stale(c.prev, c.next, true); len(got) != 0 {
			t.Errorf("%s: stale frontends %v", name, got)
		}
	}
}

func TestUnknownPastChecksEverything(t *testing.T) {
	if got := Stale(nil, udpService(ep1), false); len(got) != 4 {
		t.Errorf("after a restart every frontend is checked, got %v", got)
	}
}

func TestDeletedServiceLosesItsFlows(t *testing.T) {
	stale := Stale(udpService(ep1), nil, true)
	if !stale.Stale(flow("10.96.0.10:53", ep1)) {
		t.Error("flow to a deleted Service's cluster IP is kept")
	}
	if stale.Stale(flow("203.0.113.1:30053", ep1)) {
		t.Error("a node port without serving endpoints matched a flow on the port alone")
	}
}

func TestPendingTakesTheLatestEndpoints(t *testing.T) {
	var p Pending
	p.Update(udpService(ep1, ep2), udpService(ep2), true) // ep1 removed, restore failed
	p.Update(udpService(ep2), udpService(ep1, ep2), true) // ep1 back before the retry
	if p.Stale(flow("10.96.0.10:53", ep1)) {
		t.Error("a flow to an endpoint serving again would be deleted")
	}
	if _, ok := p.Targets[Frontend{unix.IPPROTO_UDP, clusterIP, 53}]; !ok {
		t.Error("the pending frontend was dropped")
	}
}
