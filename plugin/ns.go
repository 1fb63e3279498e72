package outpost

import (
	"net"
	"net/netip"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

// nsRecords returns the addresses behind the zone's NS record, as the
// kubernetes plugin's nsAddrs does: the Services whose endpoints are the
// addresses this server is bound to (headless: the endpoints themselves),
// else ns.dns.<zone> with the bound addresses. Names carry zone as given.
func (o *Outpost) nsRecords(zone string) []record {
	o.idx.mu.RLock()
	defer o.idx.mu.RUnlock()
	var (
		out   []record
		found bool
	)
	for _, local := range o.localIPs {
		ip, ok := netip.AddrFromSlice(local)
		if !ok {
			continue
		}
		for _, es := range o.idx.slicesWithIP(ip.Unmap()) {
			found = true
			e := o.idx.lookup(es.Namespace, es.Service)
			if e == nil || e.svc == nil {
				continue
			}
			svc := e.svc
			name := svc.Name + "." + svc.Namespace + "." + svcLabel + "." + zone
			if svc.Headless() {
				for i := range es.Endpoints {
					ep := &es.Endpoints[i]
					out = append(out, record{ip: ep.Addr.ip(), target: ep.name(o.podNames) + "." + name})
				}
				continue
			}
			for i := range svc.ips {
				out = append(out, record{ip: svc.ips[i].ip(), target: name})
			}
		}
	}
	if !found {
		for _, ip := range o.localIPs {
			out = append(out, record{ip: ip, target: defaultNSName + zone})
		}
	}
	return out
}

// boundIPs returns the non-loopback addresses the server block listens on
// (all interface addresses when it binds to none), as the kubernetes plugin
// computes them.
func boundIPs(c *caddy.Controller) (ips []net.IP) {
	hosts := dnsserver.GetConfig(c).ListenHosts
	if len(hosts) == 0 || hosts[0] == "" {
		hosts = nil
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil
		}
		for _, addr := range addrs {
			hosts = append(hosts, addr.String())
		}
	}
	for _, host := range hosts {
		ip, _, _ := net.ParseCIDR(host)
		if ip4 := ip.To4(); ip4 != nil && !ip4.IsLoopback() {
			ips = append(ips, ip4)
			continue
		}
		if ip6 := ip.To16(); ip6 != nil && !ip6.IsLoopback() {
			ips = append(ips, ip6)
		}
	}
	return ips
}
