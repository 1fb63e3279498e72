package outpost

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/cache"
)

// index holds the shrunk objects keyed the way queries ask for them:
// namespace, then Service name (the two labels left of "svc" in a query
// name) to the Service and its EndpointSlices; namespaces by name; and
// ClusterIPs and endpoint IPs for reverse lookups. Readers hold the read
// lock only while they copy out what an answer needs; objects in the index
// are never mutated, only replaced.
type index struct {
	mu         sync.RWMutex
	services   map[string]map[string]*entry // namespace -> service name
	namespaces map[string]struct{}
	clusterIPs map[netip.Addr]*Service
	// Endpoint IPs, the largest map (five per Service): IPv4 keyed by
	// uint32 (12-byte slots instead of 32), IPv6 by netip.Addr.
	endpointIPv4 map[uint32]*EndpointSlice
	endpointIPv6 map[netip.Addr]*EndpointSlice
	// moreEndpointIPs holds the further slices of an IP that is in more
	// than one (rare), so the common case costs one map slot.
	moreEndpointIPs map[netip.Addr][]*EndpointSlice
	// slicesByName finds a slice by namespace and name whatever Service it
	// is filed under: an update that changes a slice's service-name label,
	// and a deletion, must take it out of its old Service's entry.
	slicesByName map[string]map[string]*EndpointSlice

	// modified is the Unix time of the last Service or EndpointSlice
	// change, the zone's SOA serial (as in the kubernetes plugin).
	modified atomic.Int64
	// generation counts every change, namespaces included; the snapshot
	// writer compares it to know whether the index changed since it last
	// wrote. Seconds cannot tell a change made in the second of a write.
	generation atomic.Uint64
}

// entry is a Service name's data: the Service (nil if only slices exist)
// and its EndpointSlices (most Services have one).
type entry struct {
	svc    *Service
	slices []*EndpointSlice
}

func newIndex() *index {
	return &index{
		services:        map[string]map[string]*entry{},
		namespaces:      map[string]struct{}{},
		clusterIPs:      map[netip.Addr]*Service{},
		endpointIPv4:    map[uint32]*EndpointSlice{},
		endpointIPv6:    map[netip.Addr]*EndpointSlice{},
		moreEndpointIPs: map[netip.Addr][]*EndpointSlice{},
		slicesByName:    map[string]map[string]*EndpointSlice{},
	}
}

// touch records a change of the answers. Callers hold x.mu for writing, so
// that a reader of contents sees the generation of what it copied.
func (x *index) touch() {
	x.modified.Store(time.Now().Unix())
	x.generation.Add(1)
}

// serial is the SOA serial: the time of the last change.
func (x *index) serial() uint32 { return uint32(x.modified.Load()) } // #nosec G115 -- Unix time as serial, as the kubernetes plugin does

// lookup returns the entry of a Service name. Callers hold x.mu.
func (x *index) lookup(namespace, name string) *entry { return x.services[namespace][name] }

// entryFor returns the entry of a Service name, creating it. Callers hold x.mu for writing.
func (x *index) entryFor(namespace, name string) *entry {
	byName := x.services[namespace]
	if byName == nil {
		byName = map[string]*entry{}
		x.services[namespace] = byName
	}
	e := byName[name]
	if e == nil {
		e = &entry{}
		byName[name] = e
	}
	return e
}

// dropIfEmpty removes an entry with neither Service nor slices.
func (x *index) dropIfEmpty(namespace, name string) {
	if e := x.lookup(namespace, name); e != nil && e.svc == nil && len(e.slices) == 0 {
		delete(x.services[namespace], name)
		if len(x.services[namespace]) == 0 {
			delete(x.services, namespace)
		}
	}
}

func (x *index) setService(s *Service) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setServiceLocked(s)
	x.touch()
}

func (x *index) setServiceLocked(s *Service) {
	e := x.entryFor(s.Namespace, s.Name)
	if e.svc != nil {
		x.unindexClusterIPs(e.svc)
	}
	e.svc = s
	for _, ip := range s.ips {
		if ip.ok {
			x.clusterIPs[ip.addr()] = s
		}
	}
}

func (x *index) deleteService(s *Service) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.lookup(s.Namespace, s.Name); e != nil && e.svc != nil {
		x.unindexClusterIPs(e.svc)
		e.svc = nil
		x.dropIfEmpty(s.Namespace, s.Name)
	}
	x.touch()
}

func (x *index) unindexClusterIPs(s *Service) {
	for _, ip := range s.ips {
		if ip.ok && x.clusterIPs[ip.addr()] == s {
			delete(x.clusterIPs, ip.addr())
		}
	}
}

func (x *index) setSlice(es *EndpointSlice) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setSliceLocked(es)
	x.touch()
}

func (x *index) setSliceLocked(es *EndpointSlice) {
	byName := x.slicesByName[es.Namespace]
	if byName == nil {
		byName = map[string]*EndpointSlice{}
		x.slicesByName[es.Namespace] = byName
	}
	e := x.entryFor(es.Namespace, es.Service)
	if old := byName[es.Name]; old != nil && old.Service == es.Service {
		x.unindexEndpointIPs(old)
		e.slices[slices.Index(e.slices, old)] = es
	} else {
		if old != nil { // its service-name label changed
			x.removeSliceLocked(old)
		}
		e.slices = append(e.slices, es)
	}
	byName[es.Name] = es
	for i := range es.Endpoints {
		ip := es.Endpoints[i].Addr.addr()
		if x.firstSliceWithIP(ip) != nil {
			x.moreEndpointIPs[ip] = append(x.moreEndpointIPs[ip], es)
		} else {
			x.setFirstSliceWithIP(ip, es)
		}
	}
}

// removeSliceLocked takes a slice out of its Service's entry and the
// reverse maps; slicesByName is the caller's to update.
func (x *index) removeSliceLocked(es *EndpointSlice) {
	x.unindexEndpointIPs(es)
	if e := x.lookup(es.Namespace, es.Service); e != nil {
		if i := slices.Index(e.slices, es); i >= 0 {
			e.slices = slices.Delete(e.slices, i, i+1)
		}
		x.dropIfEmpty(es.Namespace, es.Service)
	}
}

func (x *index) firstSliceWithIP(ip netip.Addr) *EndpointSlice {
	if ip.Is4() {
		return x.endpointIPv4[v4Key(ip)]
	}
	return x.endpointIPv6[ip]
}

// setFirstSliceWithIP sets (es non-nil) or deletes the first slice of ip.
func (x *index) setFirstSliceWithIP(ip netip.Addr, es *EndpointSlice) {
	switch {
	case ip.Is4() && es != nil:
		x.endpointIPv4[v4Key(ip)] = es
	case ip.Is4():
		delete(x.endpointIPv4, v4Key(ip))
	case es != nil:
		x.endpointIPv6[ip] = es
	default:
		delete(x.endpointIPv6, ip)
	}
}

func v4Key(ip netip.Addr) uint32 {
	b := ip.As4()
	return binary.BigEndian.Uint32(b[:])
}

// deleteSlice removes the slice of es's namespace and name, filed under
// whichever Service the index has it under.
func (x *index) deleteSlice(es *EndpointSlice) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old := x.slicesByName[es.Namespace][es.Name]; old != nil {
		x.removeSliceLocked(old)
		delete(x.slicesByName[es.Namespace], es.Name)
		if len(x.slicesByName[es.Namespace]) == 0 {
			delete(x.slicesByName, es.Namespace)
		}
	}
	x.touch()
}

func (x *index) unindexEndpointIPs(es *EndpointSlice) {
	for i := range es.Endpoints {
		ip := es.Endpoints[i].Addr.addr()
		more := x.moreEndpointIPs[ip]
		if x.firstSliceWithIP(ip) == es {
			if len(more) == 0 {
				x.setFirstSliceWithIP(ip, nil)
				continue
			}
			x.setFirstSliceWithIP(ip, more[0])
			more = more[1:]
		} else if j := slices.Index(more, es); j >= 0 {
			more = slices.Delete(more, j, j+1)
		}
		if len(more) == 0 {
			delete(x.moreEndpointIPs, ip)
		} else {
			x.moreEndpointIPs[ip] = more
		}
	}
}

// slicesWithIP returns the EndpointSlices holding ip as a ready address.
// Callers hold x.mu.
func (x *index) slicesWithIP(ip netip.Addr) []*EndpointSlice {
	first := x.firstSliceWithIP(ip)
	if first == nil {
		return nil
	}
	return append([]*EndpointSlice{first}, x.moreEndpointIPs[ip]...)
}

func (x *index) setNamespace(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.namespaces[name] = struct{}{}
	x.generation.Add(1) // not touch: the SOA serial follows Services and slices only, as in the kubernetes plugin
}

func (x *index) deleteNamespace(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.namespaces, name)
	x.generation.Add(1)
}

// replace swaps the whole content, when a snapshot is loaded.
func (x *index) replace(services []*Service, slices []*EndpointSlice, namespaces []string) {
	fresh := newIndex()
	for _, s := range services {
		fresh.setServiceLocked(s)
	}
	for _, e := range slices {
		fresh.setSliceLocked(e)
	}
	for _, n := range namespaces {
		fresh.namespaces[n] = struct{}{}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.services, x.namespaces = fresh.services, fresh.namespaces
	x.clusterIPs, x.endpointIPv4, x.endpointIPv6, x.moreEndpointIPs = fresh.clusterIPs, fresh.endpointIPv4, fresh.endpointIPv6, fresh.moreEndpointIPs
	x.slicesByName = fresh.slicesByName
	x.touch()
}

// contents returns everything in the index and the generation it is, for
// snapshots.
func (x *index) contents() (services []*Service, slices []*EndpointSlice, namespaces []string, generation uint64) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, byName := range x.services {
		for _, e := range byName {
			if e.svc != nil {
				services = append(services, e.svc)
			}
			slices = append(slices, e.slices...)
		}
	}
	for n := range x.namespaces {
		namespaces = append(namespaces, n)
	}
	return services, slices, namespaces, x.generation.Load()
}

// indexKeys shows a list-watch queue what the index holds of its kind
// (cache.KeyListerGetter), keyed as cache.MetaNamespaceKeyFunc keys: when a
// relist lacks some of it, the queue turns those into deletions.
type indexKeys struct {
	x    *index
	kind string
}

func (k indexKeys) ListKeys() []string {
	k.x.mu.RLock()
	defer k.x.mu.RUnlock()
	var keys []string
	if k.kind == kindNamespace {
		for n := range k.x.namespaces {
			keys = append(keys, n)
		}
		return keys
	}
	if k.kind == kindEndpointSlice {
		for namespace, byName := range k.x.slicesByName {
			for name := range byName {
				keys = append(keys, namespace+"/"+name)
			}
		}
		return keys
	}
	for namespace, byName := range k.x.services {
		for name, e := range byName {
			if e.svc != nil {
				keys = append(keys, namespace+"/"+name)
			}
		}
	}
	return keys
}

func (k indexKeys) GetByKey(key string) (any, bool, error) {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, false, err
	}
	k.x.mu.RLock()
	defer k.x.mu.RUnlock()
	switch k.kind {
	case kindNamespace:
		_, ok := k.x.namespaces[name]
		return &Namespace{Name: name}, ok, nil
	case kindService:
		if e := k.x.lookup(namespace, name); e != nil && e.svc != nil {
			return e.svc, true, nil
		}
	case kindEndpointSlice:
		if es := k.x.slicesByName[namespace][name]; es != nil {
			return es, true, nil
		}
	}
	return nil, false, nil
}

// counts returns the number of Services and EndpointSlices, for metrics.
func (x *index) counts() (services, slices int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, byName := range x.services {
		for _, e := range byName {
			if e.svc != nil {
				services++
			}
			slices += len(e.slices)
		}
	}
	return services, slices
}
