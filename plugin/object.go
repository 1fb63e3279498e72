package outpost

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/coredns/coredns/plugin/kubernetes/object"
	api "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	meta "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The informers shrink every API object on ingest to the few fields DNS
// needs, so the cache holds small structs instead of full Services and
// EndpointSlices. Strings that repeat across objects (namespaces, port names
// and protocols) are interned; the others are copied, so that no live string
// pins the memory of a decoded API object and the initial list's memory can
// be handed back to the OS after the sync.

// Service is the part of a core/v1 Service that DNS answers depend on.
type Service struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// ClusterIPs as written by the API server; "None" for headless
	// Services, empty for ExternalName.
	ClusterIPs   []string `json:"clusterIPs,omitempty"`
	ExternalName string   `json:"externalName,omitempty"`
	IsExternal   bool     `json:"isExternal,omitempty"`
	Ports        []Port   `json:"ports"`

	ips []address // parsed ClusterIPs; not ok for "None" and ""

	*object.Empty `json:"-"`
}

// Port is a Service or EndpointSlice port. Port -1 stands for "no ports",
// as in the kubernetes plugin, so that the name still resolves.
type Port struct {
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Port     int32  `json:"port"`
}

// EndpointSlice is the part of a discovery/v1 EndpointSlice that DNS answers
// depend on: its Service, its ports and its ready addresses.
type EndpointSlice struct {
	Name      string     `json:"name"`
	Namespace string     `json:"namespace"`
	Service   string     `json:"service"`
	Ports     []Port     `json:"ports"`
	Endpoints []Endpoint `json:"endpoints,omitempty"`

	*object.Empty `json:"-"`
}

// Endpoint is one ready address of an EndpointSlice. There are five per
// Service in a typical cluster, so it is kept small: the address inline, no
// derived strings (the dashed name is written on demand).
type Endpoint struct {
	Addr          address
	Hostname      string
	TargetRefName string
}

// endpointJSON is Endpoint in snapshots.
type endpointJSON struct {
	IP            string `json:"ip"`
	Hostname      string `json:"hostname,omitempty"`
	TargetRefName string `json:"targetRef,omitempty"`
}

func (e Endpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(endpointJSON{IP: e.Addr.String(), Hostname: e.Hostname, TargetRefName: e.TargetRefName})
}

func (e *Endpoint) UnmarshalJSON(data []byte) error {
	var j endpointJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*e = Endpoint{Addr: parseAddress(j.IP), Hostname: j.Hostname, TargetRefName: j.TargetRefName}
	return nil
}

// Namespace is a namespace name; its existence gates every answer.
type Namespace struct {
	Name string

	*object.Empty
}

// Headless reports whether the Service has no cluster IP.
func (s *Service) Headless() bool {
	return len(s.ClusterIPs) > 0 && s.ClusterIPs[0] == api.ClusterIPNone
}

// toService shrinks a core/v1 Service; it is the informer's transform.
func toService(obj any) (any, error) {
	svc, ok := obj.(*api.Service)
	if !ok {
		return obj, nil // DeletedFinalStateUnknown and friends pass through
	}
	s := &Service{
		Name:         strings.Clone(svc.Name),
		Namespace:    intern(svc.Namespace),
		ExternalName: strings.Clone(svc.Spec.ExternalName),
		IsExternal:   svc.Spec.Type == api.ServiceTypeExternalName,
	}
	if len(svc.Spec.ClusterIPs) > 0 {
		s.ClusterIPs = make([]string, len(svc.Spec.ClusterIPs))
		copy(s.ClusterIPs, svc.Spec.ClusterIPs)
	} else {
		s.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
	if s.Headless() {
		s.ClusterIPs = noneClusterIPs
	}
	ports := make([]Port, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		ports = append(ports, Port{Name: intern(p.Name), Protocol: intern(string(p.Protocol)), Port: p.Port})
	}
	s.Ports = internPorts(ports)
	s.finish()
	return s, nil
}

// finish fills the derived fields; also called after loading a snapshot.
func (s *Service) finish() {
	if len(s.Ports) == 0 {
		s.Ports = noPorts
	}
	s.ips = make([]address, len(s.ClusterIPs))
	for i, ip := range s.ClusterIPs {
		s.ips[i] = parseAddress(ip)
	}
}

// toEndpointSlice shrinks a discovery/v1 EndpointSlice to its ready
// addresses; it is the informer's transform.
func toEndpointSlice(obj any) (any, error) {
	es, ok := obj.(*discovery.EndpointSlice)
	if !ok {
		return obj, nil
	}
	e := &EndpointSlice{
		Name:      strings.Clone(es.Name),
		Namespace: intern(es.Namespace),
		Service:   strings.Clone(es.Labels[discovery.LabelServiceName]),
	}
	ports := make([]Port, 0, len(es.Ports))
	for _, p := range es.Ports {
		port := Port{Port: -1}
		if p.Port != nil {
			port.Port = *p.Port
		}
		if p.Name != nil {
			port.Name = intern(*p.Name)
		}
		if p.Protocol != nil {
			port.Protocol = intern(string(*p.Protocol))
		}
		ports = append(ports, port)
	}
	e.Ports = internPorts(ports)
	ready := 0
	for _, end := range es.Endpoints {
		if isReady(end) {
			ready += len(end.Addresses)
		}
	}
	if ready > 0 {
		e.Endpoints = make([]Endpoint, 0, ready) // exact: five endpoints per slice add up
	}
	for _, end := range es.Endpoints {
		if !isReady(end) {
			continue
		}
		for _, a := range end.Addresses {
			ep := Endpoint{Addr: parseAddress(a)}
			if end.Hostname != nil {
				ep.Hostname = strings.Clone(*end.Hostname)
			}
			if end.TargetRef != nil && len(end.TargetRef.Name) < 64 {
				ep.TargetRefName = strings.Clone(end.TargetRef.Name)
			}
			e.Endpoints = append(e.Endpoints, ep)
		}
	}
	e.finish()
	return e, nil
}

// isReady: only ready endpoints are answered; nil means ready (as in the API).
func isReady(end discovery.Endpoint) bool {
	return end.Conditions.Ready == nil || *end.Conditions.Ready
}

func (e *EndpointSlice) finish() {
	if len(e.Ports) == 0 {
		e.Ports = noPorts
	}
}

// toNamespace keeps only a namespace's name.
func toNamespace(obj any) (any, error) {
	ns, ok := obj.(*api.Namespace)
	if !ok {
		return obj, nil
	}
	return &Namespace{Name: intern(ns.Name)}, nil
}

// name is the endpoint's DNS label: its hostname, else (with
// endpoint_pod_names) the name of the object it points at, else its IP with
// dashes, exactly as the kubernetes plugin names it.
func (ep *Endpoint) name(podNames bool) string {
	if ep.Hostname != "" {
		return ep.Hostname
	}
	if podNames && ep.TargetRefName != "" {
		return ep.TargetRefName
	}
	var buf [64]byte
	return string(ep.Addr.appendDashed(buf[:0]))
}

// hasName reports, without allocating, whether label (any case) names ep.
func (ep *Endpoint) hasName(label string, podNames bool) bool {
	if ep.Hostname != "" {
		return strings.EqualFold(label, ep.Hostname)
	}
	if podNames && ep.TargetRefName != "" {
		return strings.EqualFold(label, ep.TargetRefName)
	}
	var buf [64]byte
	dashed := ep.Addr.appendDashed(buf[:0])
	if len(dashed) != len(label) {
		return false
	}
	for i := range dashed {
		c := label[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != dashed[i] {
			return false
		}
	}
	return true
}

// Metadata accessors the list-watch queues need for keys.
func (s *Service) GetName() string                  { return s.Name }
func (s *Service) GetNamespace() string             { return s.Namespace }
func (s *Service) GetResourceVersion() string       { return "" }
func (s *Service) DeepCopyObject() runtime.Object   { c := *s; return &c }
func (e *EndpointSlice) GetName() string            { return e.Name }
func (e *EndpointSlice) GetNamespace() string       { return e.Namespace }
func (e *EndpointSlice) GetResourceVersion() string { return "" }
func (e *EndpointSlice) DeepCopyObject() runtime.Object {
	c := *e
	return &c
}
func (n *Namespace) GetName() string                { return n.Name }
func (n *Namespace) GetNamespace() string           { return "" }
func (n *Namespace) GetResourceVersion() string     { return "" }
func (n *Namespace) DeepCopyObject() runtime.Object { c := *n; return &c }

func (s *Service) SetName(string)                  {}
func (s *Service) SetNamespace(string)             {}
func (s *Service) SetResourceVersion(string)       {}
func (e *EndpointSlice) SetName(string)            {}
func (e *EndpointSlice) SetNamespace(string)       {}
func (e *EndpointSlice) SetResourceVersion(string) {}
func (n *Namespace) SetName(string)                {}
func (n *Namespace) SetNamespace(string)           {}
func (n *Namespace) SetResourceVersion(string)     {}

var (
	_ meta.Object = &Service{}
	_ meta.Object = &EndpointSlice{}
	_ meta.Object = &Namespace{}
)

// interned holds one copy of each short, repeating string (namespaces, port
// names, protocols): 10,000 Services in a few
// namespaces should not carry 10,000 copies of "default".
var interned = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

func intern(s string) string {
	interned.Lock()
	defer interned.Unlock()
	if v, ok := interned.m[s]; ok {
		return v
	}
	s = strings.Clone(s)
	if len(interned.m) > 100000 { // bound the table; interning is only an optimisation
		return s
	}
	interned.m[s] = s
	return s
}

// internedPorts holds one copy of each port list: most Services of a
// cluster expose the same few (http/TCP/80, ...), so they share it.
var internedPorts = struct {
	sync.Mutex
	m map[string][]Port
}{m: map[string][]Port{}}

func internPorts(ports []Port) []Port {
	if len(ports) == 0 {
		return noPorts
	}
	var key strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&key, "%s/%s/%d,", p.Name, p.Protocol, p.Port)
	}
	internedPorts.Lock()
	defer internedPorts.Unlock()
	if shared, ok := internedPorts.m[key.String()]; ok {
		return shared
	}
	if len(internedPorts.m) < 10000 {
		internedPorts.m[key.String()] = ports
	}
	return ports
}

// noPorts stands for "no ports" (port -1), as in the kubernetes plugin, so
// that the name still resolves.
var noPorts = []Port{{Port: -1}}

// noneClusterIPs is shared by every headless Service.
var noneClusterIPs = []string{api.ClusterIPNone}
