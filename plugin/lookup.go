package outpost

import (
	"errors"
	"net"
	"slices"
	"strings"

	"github.com/coredns/coredns/plugin/pkg/dnsutil"
	"github.com/miekg/dns"
)

// The lookups below decide, for a query name, which addresses or names
// answer it and whether the name exists at all. They follow the kubernetes
// plugin's Services/Records/findServices step by step, because "NODATA vs
// NXDOMAIN exactly as the kubernetes plugin" is part of the contract; the
// difference is what they read: an index keyed by "service.namespace" with
// pre-parsed IPs and ports, instead of informer indexers that return fresh
// slices and strings parsed again on every query.

var (
	// errNoItems marks a name that does not exist (NXDOMAIN); the
	// kubernetes plugin's errNoItems, errNsNotExposed and
	// errInvalidRequest all mean that.
	errNoItems = errors.New("no items found")
)

func isNameError(err error) bool { return errors.Is(err, errNoItems) }

// record is one thing a name resolves to: an address (with a port, for SRV)
// or, for ExternalName Services, another name. It plays the part of
// msg.Service in the kubernetes plugin.
type record struct {
	ip   net.IP // nil means target is a name (CNAME)
	port int32
	// target is the CNAME target of an ExternalName Service; for NS
	// records, the name server's full name.
	target string
	// service, namespace and endpoint name the record for SRV targets and
	// glue: [endpoint.]service.namespace.svc.<zone>.
	service, namespace string
	endpoint           *Endpoint
	text               string // TXT data (dns-version)
}

// question is a query as the lookups see it.
type question struct {
	qname string // as asked, case preserved
	name  string // lower case
	zone  string // the matched zone, in the query's case
	qtype uint16
}

func (q question) with(name string, qtype uint16) question {
	name = dns.Fqdn(name)
	return question{qname: name, name: strings.ToLower(name), zone: q.zone, qtype: qtype}
}

// parsed is a query name split into the parts of the Kubernetes DNS schema.
type parsed struct {
	port, protocol, endpoint string
	service, namespace       string
	podOrSvc                 string
}

const (
	svcLabel = "svc"
	podLabel = "pod"
	// DNSSchemaVersion is the schema version answered at dns-version.<zone>.
	DNSSchemaVersion = "1.1.0"
)

// parseName splits name (lower case) below zone, as the kubernetes plugin's
// parseRequest does without multicluster and zonal names:
// [_port._protocol.|endpoint.]service.namespace.svc.zone.
// The labels are substrings of name: parsing allocates nothing unless the
// name has escaped characters. It fills r rather than returning it: on the
// stack of every query, a returned parsed would be copied through the
// caller's frame.
func parseName(name, zone string, r *parsed) error {
	base, _ := dnsutil.TrimZone(name, zone)
	if base == "" || base == svcLabel || base == podLabel {
		return nil // the apex and the svc/pod subtrees exist, with no data
	}
	if strings.IndexByte(base, '\\') >= 0 {
		return fromLabels(dns.SplitDomainName(base), r)
	}
	var buf [maxLabels]string
	segs := buf[:0]
	for rest := base; ; {
		if len(segs) == maxLabels {
			return errNoItems // too long
		}
		i := strings.LastIndexByte(rest, '.')
		segs = append(segs, rest[i+1:])
		if i < 0 {
			break
		}
		rest = rest[:i]
	}
	slices.Reverse(segs)
	return fromLabels(segs, r)
}

// maxLabels is the longest name below a zone: _port._protocol.service.namespace.svc.
const maxLabels = 5

// fromLabels assigns the labels (in name order) to the schema's parts.
func fromLabels(segs []string, r *parsed) error {
	last := len(segs) - 1
	if last < 0 {
		return nil
	}
	r.podOrSvc = segs[last]
	if r.podOrSvc != podLabel && r.podOrSvc != svcLabel {
		return errNoItems
	}
	last--
	if last < 0 {
		return nil
	}
	r.namespace = segs[last]
	last--
	if last < 0 {
		return nil
	}
	r.service = segs[last]
	last--
	if last < 0 {
		return nil
	}
	switch last {
	case 0:
		r.endpoint = segs[0]
	case 1:
		r.protocol = strings.TrimPrefix(segs[1], "_")
		r.port = strings.TrimPrefix(segs[0], "_")
	default:
		return errNoItems // too long
	}
	return nil
}

// namespaceExposed reports whether answers may come from namespace: it must
// be allowed by the namespaces directive and exist. Callers hold x.mu.
func (o *Outpost) namespaceExposed(namespace string) bool {
	if len(o.namespaces) > 0 {
		if _, ok := o.namespaces[namespace]; !ok {
			return false
		}
	}
	_, ok := o.idx.namespaces[namespace]
	return ok
}

// services is the kubernetes plugin's Services: the records for q, with the
// special names dns-version (TXT), the apex NS and ns.dns.<zone>.
func (o *Outpost) services(q *question) ([]record, error) {
	if q.qtype == dns.TypeTXT || q.qtype == dns.TypeNS || isDefaultNS(q.name, q.zone) {
		return o.specialServices(q)
	}
	recs, err := o.records(q)
	if q.qtype != dns.TypeSRV {
		return recs, err
	}
	// ExternalName Services have no SRV records.
	internal := recs[:0]
	for _, r := range recs {
		if r.ip != nil {
			internal = append(internal, r)
		}
	}
	return internal, err
}

// specialServices is services for TXT, NS and ns.dns.<zone>. Out of line:
// its frame would otherwise be on the stack of every query.
//
//go:noinline
func (o *Outpost) specialServices(q *question) ([]record, error) {
	switch q.qtype {
	case dns.TypeTXT:
		t, _ := dnsutil.TrimZone(q.name, q.zone)
		if t == "dns-version" {
			return []record{{text: DNSSchemaVersion}}, nil
		}
		recs, _ := o.records(q)
		if len(recs) > 0 {
			return nil, nil
		}
		return nil, errNoItems
	case dns.TypeNS:
		return o.nsRecords(q.zone), nil
	}
	var out []record // ns.dns.<zone>: the name servers of the query's family
	for _, r := range o.nsRecords(q.zone) {
		if (q.qtype == dns.TypeA && r.ip.To4() != nil) || (q.qtype == dns.TypeAAAA && r.ip.To4() == nil) {
			out = append(out, r)
		}
	}
	return out, nil
}

// isDefaultNS matches ns.dns.<zone> the way the kubernetes plugin does (the
// first occurrence of the zone must follow "ns.dns."), but compares the zone
// case-insensitively (see README, "Deliberate differences").
func isDefaultNS(name, zone string) bool {
	return strings.HasPrefix(name, defaultNSName) && strings.Index(name, strings.ToLower(zone)) == len(defaultNSName)
}

const defaultNSName = "ns.dns."

// records is the kubernetes plugin's Records + findServices.
func (o *Outpost) records(q *question) ([]record, error) {
	var r parsed
	if err := parseName(q.name, q.zone, &r); err != nil {
		return nil, err
	}
	if r.podOrSvc == "" {
		return nil, nil
	}
	if dnsutil.IsReverse(q.name) > 0 {
		return nil, errNoItems
	}

	o.idx.mu.RLock()
	defer o.idx.mu.RUnlock()
	if !o.namespaceExposed(r.namespace) {
		return nil, errNoItems
	}
	if r.podOrSvc == podLabel {
		return nil, errNoItems // pod records are not served (README, "Bugs")
	}
	if r.service == "" {
		return nil, nil // an existing namespace: NODATA
	}
	e := o.idx.lookup(r.namespace, r.service)
	if e == nil || e.svc == nil {
		return nil, errNoItems
	}
	svc := e.svc

	if o.ignoreEmptyService && !svc.IsExternal && !svc.Headless() && readyAddresses(e.slices) == 0 {
		return nil, errNoItems
	}

	if svc.IsExternal {
		return externalRecords(svc, &r)
	}
	if svc.Headless() || r.endpoint != "" {
		return o.endpointRecords(e, &r)
	}
	return clusterIPRecords(svc, &r)
}

// clusterIPRecords returns a ClusterIP Service's addresses with the ports
// the query asks for. Out of line, like endpointRecords.
//
//go:noinline
func clusterIPRecords(svc *Service, r *parsed) (out []record, err error) {
	err = errNoItems
	for _, p := range svc.Ports {
		if !matchPortAndProtocol(r.port, p.Name, r.protocol, p.Protocol) {
			continue
		}
		err = nil
		for i := range svc.ips {
			if out == nil {
				out = make([]record, 0, len(svc.ips)*len(svc.Ports))
			}
			out = append(out, record{ip: svc.ips[i].ip(), port: p.Port, service: svc.Name, namespace: svc.Namespace})
		}
	}
	return out, err
}

// externalRecords returns the CNAME target of an ExternalName Service.
// Out of line, like endpointRecords.
//
//go:noinline
func externalRecords(svc *Service, r *parsed) ([]record, error) {
	if r.endpoint != "" || r.port != "" || r.protocol != "" {
		return nil, errNoItems
	}
	if net.ParseIP(svc.ExternalName) != nil {
		return nil, errNoItems // an IP is not a CNAME target
	}
	return []record{{target: svc.ExternalName}}, nil
}

// endpointRecords returns the ready endpoints of a headless Service, or the
// endpoint a query names. Kept out of line: the common ClusterIP lookup
// then runs with a smaller stack frame. Callers hold o.idx.mu.
//
//go:noinline
func (o *Outpost) endpointRecords(e *entry, r *parsed) (out []record, err error) {
	svc := e.svc
	err = errNoItems
	for _, es := range e.slices {
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			if r.endpoint != "" && !ep.hasName(r.endpoint, o.podNames) {
				continue
			}
			for _, p := range es.Ports {
				if !matchPortAndProtocol(r.port, p.Name, r.protocol, p.Protocol) {
					continue
				}
				if out == nil {
					out = make([]record, 0, len(es.Endpoints)*len(es.Ports))
				}
				out = append(out, record{ip: ep.Addr.ip(), port: p.Port, service: svc.Name, namespace: svc.Namespace, endpoint: ep})
				err = nil
			}
		}
	}
	return out, err
}

func readyAddresses(slices []*EndpointSlice) (n int) {
	for _, es := range slices {
		n += len(es.Endpoints)
	}
	return n
}

// matchPortAndProtocol matches a query's port and protocol (empty matches
// anything) against a port's, case-insensitively.
func matchPortAndProtocol(qPort, port, qProtocol, protocol string) bool {
	return (qPort == "" || strings.EqualFold(qPort, port)) && (qProtocol == "" || strings.EqualFold(qProtocol, protocol))
}
