package outpost

import (
	"net/netip"

	"github.com/coredns/coredns/plugin/pkg/dnsutil"
	"github.com/miekg/dns"
)

// ptr answers PTR queries: a ClusterIP names its Service, an endpoint IP
// names every endpoint carrying it. The names are in the primary (first
// non-reverse) zone.
func (o *Outpost) ptr(q *question) ([]dns.RR, error) {
	ip := dnsutil.ExtractAddressFromReverse(q.name)
	if ip == "" {
		// Not a full reverse name: the name itself decides NODATA/NXDOMAIN.
		_, err := o.records(q)
		return nil, err
	}
	targets := o.reverseNames(ip)
	if len(targets) == 0 {
		return nil, errNoItems
	}
	rrs := make([]dns.RR, 0, len(targets))
	seen := make(map[string]struct{}, len(targets))
	for _, t := range targets {
		if _, dup := seen[t]; dup {
			continue
		}
		seen[t] = struct{}{}
		rrs = append(rrs, &dns.PTR{Hdr: o.hdr(q.qname, dns.TypePTR), Ptr: t})
	}
	return rrs, nil
}

// reverseNames returns the names an IP belongs to: its Service if it is a
// ClusterIP, else its endpoints' names. The namespaces directive filters
// them; as in the kubernetes plugin, namespace existence is checked only
// when that directive is set.
func (o *Outpost) reverseNames(s string) []string {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return nil
	}
	zone := o.Zones[o.primaryZone]
	o.idx.mu.RLock()
	defer o.idx.mu.RUnlock()
	if svc, ok := o.idx.clusterIPs[ip]; ok && (len(o.namespaces) == 0 || o.namespaceExposed(svc.Namespace)) {
		return []string{svc.Name + "." + svc.Namespace + "." + svcLabel + "." + zone}
	}
	var names []string
	for _, es := range o.idx.slicesWithIP(ip) {
		if len(o.namespaces) > 0 && !o.namespaceExposed(es.Namespace) {
			continue
		}
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			if ep.Addr.addr() == ip {
				names = append(names, ep.name(o.podNames)+"."+es.Service+"."+es.Namespace+"."+svcLabel+"."+zone)
			}
		}
	}
	return names
}
