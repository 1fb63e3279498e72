package outpost

import (
	"sync"
	"sync/atomic"
	"time"
)

// index holds the shrunk objects keyed the way queries ask for them: Services
// and their EndpointSlices by "service.namespace" (the two labels left of
// "svc" in a query name), namespaces by name, and cluster and endpoint IPs for
// reverse lookups. Readers hold the read lock only while they copy out an
// answer; objects in the index are never mutated, only replaced.
type index struct {
	mu          sync.RWMutex
	services    map[string]*Service
	slices      map[string]map[string]*EndpointSlice // service key -> slice name -> slice
	namespaces  map[string]struct{}
	clusterIPs  map[string]*Service
	endpointIPs map[string][]*EndpointSlice

	// modified is the Unix time of the last change, the zone's SOA serial
	// (as in the kubernetes plugin).
	modified atomic.Int64
}

func newIndex() *index {
	return &index{
		services:    map[string]*Service{},
		slices:      map[string]map[string]*EndpointSlice{},
		namespaces:  map[string]struct{}{},
		clusterIPs:  map[string]*Service{},
		endpointIPs: map[string][]*EndpointSlice{},
	}
}

func (x *index) touch() { x.modified.Store(time.Now().Unix()) }

// serial is the SOA serial: the time of the last change.
func (x *index) serial() uint32 { return uint32(x.modified.Load()) } // #nosec G115 -- Unix time as serial, as the kubernetes plugin does

func (x *index) setService(s *Service) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setServiceLocked(s)
	x.touch()
}

func (x *index) setServiceLocked(s *Service) {
	k := s.key()
	if old, ok := x.services[k]; ok {
		x.unindexClusterIPs(old)
	}
	x.services[k] = s
	for _, ip := range s.ClusterIPs {
		x.clusterIPs[ip] = s
	}
}

func (x *index) deleteService(s *Service) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := s.key()
	if old, ok := x.services[k]; ok {
		x.unindexClusterIPs(old)
		delete(x.services, k)
	}
	x.touch()
}

func (x *index) unindexClusterIPs(s *Service) {
	for _, ip := range s.ClusterIPs {
		if x.clusterIPs[ip] == s {
			delete(x.clusterIPs, ip)
		}
	}
}

func (x *index) setSlice(e *EndpointSlice) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setSliceLocked(e)
	x.touch()
}

func (x *index) setSliceLocked(e *EndpointSlice) {
	k := e.serviceKey()
	m := x.slices[k]
	if m == nil {
		m = map[string]*EndpointSlice{}
		x.slices[k] = m
	}
	if old, ok := m[e.Name]; ok {
		x.unindexEndpointIPs(old)
	}
	m[e.Name] = e
	for _, ep := range e.Endpoints {
		x.endpointIPs[ep.IP] = append(x.endpointIPs[ep.IP], e)
	}
}

func (x *index) deleteSlice(e *EndpointSlice) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := e.serviceKey()
	if old, ok := x.slices[k][e.Name]; ok {
		x.unindexEndpointIPs(old)
		delete(x.slices[k], e.Name)
		if len(x.slices[k]) == 0 {
			delete(x.slices, k)
		}
	}
	x.touch()
}

func (x *index) unindexEndpointIPs(e *EndpointSlice) {
	for _, ep := range e.Endpoints {
		list := x.endpointIPs[ep.IP]
		kept := list[:0:0]
		for _, s := range list {
			if s != e {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			delete(x.endpointIPs, ep.IP)
		} else {
			x.endpointIPs[ep.IP] = kept
		}
	}
}

func (x *index) setNamespace(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.namespaces[name] = struct{}{}
}

func (x *index) deleteNamespace(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.namespaces, name)
}

// replace swaps the whole content, used when the informers have synced (to
// drop what a snapshot held but the API no longer has) and when a snapshot
// is loaded.
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
	x.services, x.slices, x.namespaces = fresh.services, fresh.slices, fresh.namespaces
	x.clusterIPs, x.endpointIPs = fresh.clusterIPs, fresh.endpointIPs
	x.touch()
}

// contents returns everything in the index, for snapshots.
func (x *index) contents() (services []*Service, slices []*EndpointSlice, namespaces []string) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, s := range x.services {
		services = append(services, s)
	}
	for _, m := range x.slices {
		for _, e := range m {
			slices = append(slices, e)
		}
	}
	for n := range x.namespaces {
		namespaces = append(namespaces, n)
	}
	return services, slices, namespaces
}

// counts returns the number of Services and EndpointSlices, for metrics.
func (x *index) counts() (services, slices int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, m := range x.slices {
		slices += len(m)
	}
	return len(x.services), slices
}
