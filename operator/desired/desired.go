// Package desired computes the Kubernetes objects an ExternalBackend stands
// for: a selectorless Service with EndpointSlices (and legacy Endpoints), or an
// ExternalName Service. It is a pure function of the ExternalBackend and the
// addresses the operator decided to publish, so every rule of the contract is
// tested here without an API server; the reconciler only applies the result.
package desired

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	discoveryac "k8s.io/client-go/applyconfigurations/discovery/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

const (
	// FieldManager owns every field the operator writes (server-side apply).
	FieldManager = "outpost-operator"

	// LabelManagedBy marks every object the operator writes; the syncer and
	// the operator's own caches select on it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "outpost-operator"

	// SliceManagedBy tells the EndpointSlice controllers to leave our slices alone.
	SliceManagedBy = "outpost.dev"

	// MaxEndpointsPerSlice is the API server's limit for one EndpointSlice.
	MaxEndpointsPerSlice = 1000

	// MaxEndpointsAddresses is where the endpoints controller truncates legacy
	// Endpoints, marking them with OverCapacityAnnotation; consumers know that.
	MaxEndpointsAddresses  = 1000
	OverCapacityAnnotation = "endpoints.kubernetes.io/over-capacity"
)

// Endpoint is one address to publish.
type Endpoint struct {
	Address netip.Addr
	Ready   bool
	// Zone is the zone of the address's group, "" when unknown.
	Zone string
}

// SpecAddress is one entry of spec.addresses or of a group of
// spec.addressGroups: an IP literal or a DNS name.
type SpecAddress struct {
	Value string
	// Priority and Zone are those of its group; Grouped says there is one.
	Priority int32
	Zone     string
	Grouped  bool
}

// SpecAddresses lists every address of xb's spec: spec.addresses in order,
// or the groups of spec.addressGroups by priority, so that the preferred
// group comes first wherever spec order decides (duplicates, limits).
func SpecAddresses(xb *v1alpha1.ExternalBackend) []SpecAddress {
	var out []SpecAddress
	for _, a := range xb.Spec.Addresses {
		out = append(out, SpecAddress{Value: a})
	}
	groups := slices.Clone(xb.Spec.AddressGroups)
	slices.SortStableFunc(groups, func(a, b v1alpha1.AddressGroup) int { return cmp.Compare(a.Priority, b.Priority) })
	for _, g := range groups {
		for _, a := range g.Addresses {
			out = append(out, SpecAddress{Value: a, Priority: g.Priority, Zone: g.Zone, Grouped: true})
		}
	}
	return out
}

// Options are the operator-wide switches that shape the objects.
type Options struct {
	// WriteEndpoints also writes legacy Endpoints (--write-endpoints).
	WriteEndpoints bool
}

// Objects are the children of one ExternalBackend.
type Objects struct {
	Service        *corev1ac.ServiceApplyConfiguration
	EndpointSlices []*discoveryac.EndpointSliceApplyConfiguration // nil in alias mode
	Endpoints      *corev1ac.EndpointsApplyConfiguration          // nil in alias mode or without WriteEndpoints
}

// Compute returns the objects for xb publishing endpoints. live is the
// Service the operator wrote before, nil when there is none: the API server
// never lets a Service's primary IP family change, so it stays.
func Compute(xb *v1alpha1.ExternalBackend, endpoints []Endpoint, live *corev1.Service, opts Options) Objects {
	if IsAlias(xb) {
		return Objects{Service: aliasService(xb)}
	}
	sorted := sortEndpoints(endpoints)
	var liveFamilies []corev1.IPFamily
	if live != nil && live.Spec.Type != corev1.ServiceTypeExternalName {
		liveFamilies = live.Spec.IPFamilies
	}
	if pinned, err := netip.ParseAddr(xb.Spec.ClusterIP); err == nil && len(liveFamilies) == 0 {
		// A pinned cluster IP must be of the Service's primary family.
		liveFamilies = []corev1.IPFamily{family(pinned)}
	}
	objs := Objects{
		Service:        staticService(xb, sorted, liveFamilies),
		EndpointSlices: endpointSlices(xb, sorted),
	}
	if opts.WriteEndpoints {
		objs.Endpoints = legacyEndpoints(xb, sorted)
	}
	return objs
}

// IsAlias reports whether xb is an alias (ExternalName) backend.
func IsAlias(xb *v1alpha1.ExternalBackend) bool { return xb.Spec.ExternalName != "" }

// TargetPort is the backend port of p: TargetPort, defaulting to Port.
func TargetPort(p v1alpha1.BackendPort) int32 {
	if p.TargetPort != 0 {
		return p.TargetPort
	}
	return p.Port
}

// SliceLabels selects the EndpointSlices the operator owns for a Service.
func SliceLabels(serviceName string) map[string]string {
	return map[string]string{
		discoveryv1.LabelServiceName: serviceName,
		discoveryv1.LabelManagedBy:   SliceManagedBy,
	}
}

func protocol(p v1alpha1.BackendPort) corev1.Protocol {
	return cmp.Or(p.Protocol, v1alpha1.DefaultProtocol)
}

// sortEndpoints orders endpoints by address so that the written objects do
// not change when the same addresses arrive in another order.
func sortEndpoints(endpoints []Endpoint) []Endpoint {
	sorted := slices.Clone(endpoints)
	slices.SortFunc(sorted, func(a, b Endpoint) int { return a.Address.Compare(b.Address) })
	return slices.CompactFunc(sorted, func(a, b Endpoint) bool { return a.Address == b.Address })
}

func ownerReference(xb *v1alpha1.ExternalBackend) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(v1alpha1.GroupVersion.String()).
		WithKind("ExternalBackend").
		WithName(xb.Name).
		WithUID(xb.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// objectLabels are the user's serviceMetadata labels plus ours, which win.
func objectLabels(xb *v1alpha1.ExternalBackend, extra map[string]string) map[string]string {
	labels := map[string]string{}
	if md := xb.Spec.ServiceMetadata; md != nil {
		maps.Copy(labels, md.Labels)
	}
	maps.Copy(labels, extra)
	labels[LabelManagedBy] = ManagedBy
	return labels
}

func objectAnnotations(xb *v1alpha1.ExternalBackend) map[string]string {
	if md := xb.Spec.ServiceMetadata; md != nil && len(md.Annotations) > 0 {
		return maps.Clone(md.Annotations)
	}
	return nil
}

func service(xb *v1alpha1.ExternalBackend) *corev1ac.ServiceApplyConfiguration {
	svc := corev1ac.Service(xb.Name, xb.Namespace).
		WithLabels(objectLabels(xb, nil)).
		WithOwnerReferences(ownerReference(xb))
	if a := objectAnnotations(xb); a != nil {
		svc.WithAnnotations(a)
	}
	return svc
}

func aliasService(xb *v1alpha1.ExternalBackend) *corev1ac.ServiceApplyConfiguration {
	spec := corev1ac.ServiceSpec().
		WithType(corev1.ServiceTypeExternalName).
		WithExternalName(xb.Spec.ExternalName)
	for _, p := range xb.Spec.Ports {
		spec.WithPorts(servicePort(p).WithTargetPort(intstr.FromInt32(p.Port)))
	}
	return service(xb).WithSpec(spec)
}

func servicePort(p v1alpha1.BackendPort) *corev1ac.ServicePortApplyConfiguration {
	port := corev1ac.ServicePort().
		WithPort(p.Port).
		WithProtocol(protocol(p))
	if p.Name != "" {
		port.WithName(p.Name)
	}
	if p.AppProtocol != nil {
		port.WithAppProtocol(*p.AppProtocol)
	}
	return port
}

func staticService(xb *v1alpha1.ExternalBackend, endpoints []Endpoint, liveFamilies []corev1.IPFamily) *corev1ac.ServiceApplyConfiguration {
	spec := corev1ac.ServiceSpec().
		WithType(cmp.Or(xb.Spec.ServiceType, v1alpha1.DefaultServiceType)).
		WithSessionAffinity(cmp.Or(xb.Spec.SessionAffinity, v1alpha1.DefaultSessionAffinity))
	if xb.Spec.TrafficDistribution != nil {
		spec.WithTrafficDistribution(*xb.Spec.TrafficDistribution)
	}
	for _, p := range xb.Spec.Ports {
		port := servicePort(p).WithTargetPort(intstr.FromInt32(TargetPort(p)))
		if p.NodePort != 0 {
			port.WithNodePort(p.NodePort)
		}
		spec.WithPorts(port)
	}
	if xb.Spec.Headless {
		// The API server picks the families of a headless selectorless
		// Service from the cluster; DNS answers come from the slices.
		spec.WithClusterIP(corev1.ClusterIPNone)
	} else {
		setIPFamilies(spec, xb, endpoints, liveFamilies)
		if xb.Spec.ClusterIP != "" {
			spec.WithClusterIP(xb.Spec.ClusterIP)
		}
	}
	return service(xb).WithSpec(spec)
}

// setIPFamilies gives the Service a ClusterIP in each family its backends
// have, since a packet can only be forwarded to an endpoint of its own
// family; always explicitly, so IPv4 backends get an IPv4 ClusterIP on a
// cluster whose default family is IPv6. The live Service's primary family
// (liveFamilies[0]) comes first whatever the order of spec.addresses, because
// the API server refuses to change it; if the backends no longer have it,
// the Service keeps it beside theirs (dual-stack) rather than fail every
// write.
func setIPFamilies(spec *corev1ac.ServiceSpecApplyConfiguration, xb *v1alpha1.ExternalBackend, endpoints []Endpoint, liveFamilies []corev1.IPFamily) {
	families := wantedFamilies(xb, endpoints)
	if len(liveFamilies) > 0 {
		primary := liveFamilies[0]
		families = append([]corev1.IPFamily{primary}, slices.DeleteFunc(families, func(f corev1.IPFamily) bool { return f == primary })...)
	}
	switch len(families) {
	case 0: // no address yet: the cluster's default
	case 1:
		spec.WithIPFamilyPolicy(corev1.IPFamilyPolicySingleStack).WithIPFamilies(families...)
	default:
		spec.WithIPFamilyPolicy(corev1.IPFamilyPolicyPreferDualStack).WithIPFamilies(families...)
	}
}

// wantedFamilies lists the families of the literal addresses and, for DNS
// names, the families the user asked to resolve, in the order first seen.
func wantedFamilies(xb *v1alpha1.ExternalBackend, endpoints []Endpoint) []corev1.IPFamily {
	var families []corev1.IPFamily
	add := func(f corev1.IPFamily) {
		if !slices.Contains(families, f) {
			families = append(families, f)
		}
	}
	for _, a := range SpecAddresses(xb) {
		if ip, err := netip.ParseAddr(a.Value); err == nil {
			add(family(ip))
		} else {
			for _, f := range ResolutionFamilies(xb) {
				add(corev1.IPFamily(f))
			}
		}
	}
	for _, ep := range endpoints {
		add(family(ep.Address))
	}
	return families
}

// ResolutionFamilies are the families DNS names are resolved in.
func ResolutionFamilies(xb *v1alpha1.ExternalBackend) []v1alpha1.IPFamily {
	if r := xb.Spec.Resolution; r != nil && len(r.IPFamilies) > 0 {
		return r.IPFamilies
	}
	return []v1alpha1.IPFamily{v1alpha1.DefaultIPFamily}
}

func family(ip netip.Addr) corev1.IPFamily {
	if ip.Unmap().Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

func endpointSlices(xb *v1alpha1.ExternalBackend, endpoints []Endpoint) []*discoveryac.EndpointSliceApplyConfiguration {
	var v4, v6 []Endpoint
	for _, ep := range endpoints {
		if family(ep.Address) == corev1.IPv4Protocol {
			v4 = append(v4, ep)
		} else {
			v6 = append(v6, ep)
		}
	}
	hints := zoneHints(xb, endpoints)
	var out []*discoveryac.EndpointSliceApplyConfiguration
	if len(endpoints) == 0 {
		// An empty slice, as the EndpointSlice controller writes for a Service
		// without endpoints, tells consumers "known, nothing ready" rather
		// than "not synced yet".
		if families := wantedFamilies(xb, nil); len(families) > 0 && families[0] == corev1.IPv6Protocol {
			return append(out, endpointSlice(xb, SliceName(xb.Name, "ipv6", 0), discoveryv1.AddressTypeIPv6, nil, false))
		}
		return append(out, endpointSlice(xb, SliceName(xb.Name, "ipv4", 0), discoveryv1.AddressTypeIPv4, nil, false))
	}
	for i, chunk := range slices.Collect(slices.Chunk(v4, MaxEndpointsPerSlice)) {
		out = append(out, endpointSlice(xb, SliceName(xb.Name, "ipv4", i), discoveryv1.AddressTypeIPv4, chunk, hints))
	}
	for i, chunk := range slices.Collect(slices.Chunk(v6, MaxEndpointsPerSlice)) {
		out = append(out, endpointSlice(xb, SliceName(xb.Name, "ipv6", i), discoveryv1.AddressTypeIPv6, chunk, hints))
	}
	return out
}

// SliceName names the i-th (from 0) slice of a family: <name>-ipv4, <name>-ipv4-2, ...
func SliceName(service, family string, i int) string {
	if i == 0 {
		return service + "-" + family
	}
	return fmt.Sprintf("%s-%s-%d", service, family, i+1)
}

func endpointSlice(xb *v1alpha1.ExternalBackend, name string, addressType discoveryv1.AddressType, endpoints []Endpoint, hints bool) *discoveryac.EndpointSliceApplyConfiguration {
	slice := discoveryac.EndpointSlice(name, xb.Namespace).
		WithLabels(objectLabels(xb, SliceLabels(xb.Name))).
		WithOwnerReferences(ownerReference(xb)).
		WithAddressType(addressType)
	if a := objectAnnotations(xb); a != nil {
		slice.WithAnnotations(a)
	}
	for _, p := range xb.Spec.Ports {
		port := discoveryac.EndpointPort().
			WithName(p.Name).
			WithPort(TargetPort(p)).
			WithProtocol(protocol(p))
		if p.AppProtocol != nil {
			port.WithAppProtocol(*p.AppProtocol)
		}
		slice.WithPorts(port)
	}
	for _, ep := range endpoints {
		endpoint := discoveryac.Endpoint().
			WithAddresses(ep.Address.Unmap().String()).
			WithConditions(discoveryac.EndpointConditions().
				WithReady(ep.Ready).
				WithServing(ep.Ready).
				WithTerminating(false))
		if ep.Zone != "" {
			endpoint.WithZone(ep.Zone)
		}
		if hints {
			endpoint.WithHints(discoveryac.EndpointHints().WithForZones(discoveryac.ForZone().WithName(ep.Zone)))
		}
		slice.WithEndpoints(endpoint)
	}
	return slice
}

// zoneHints says whether the endpoints get hints for their own zone, as
// the EndpointSlice controller writes them for the Services it manages:
// kube-proxy routes by zone only from hints. Like that controller, only
// when the Service asks for it and every endpoint has a zone, since
// kube-proxy ignores the hints of a Service when one endpoint has none.
func zoneHints(xb *v1alpha1.ExternalBackend, endpoints []Endpoint) bool {
	if td := xb.Spec.TrafficDistribution; td == nil || (*td != corev1.ServiceTrafficDistributionPreferClose && *td != corev1.ServiceTrafficDistributionPreferSameZone) {
		return false
	}
	return !slices.ContainsFunc(endpoints, func(ep Endpoint) bool { return ep.Zone == "" })
}

func legacyEndpoints(xb *v1alpha1.ExternalBackend, endpoints []Endpoint) *corev1ac.EndpointsApplyConfiguration {
	eps := corev1ac.Endpoints(xb.Name, xb.Namespace).
		WithLabels(objectLabels(xb, map[string]string{discoveryv1.LabelSkipMirror: "true"})).
		WithOwnerReferences(ownerReference(xb))
	annotations := objectAnnotations(xb)
	if len(endpoints) == 0 {
		if annotations != nil {
			eps.WithAnnotations(annotations)
		}
		return eps
	}
	// Like the endpoints controller: ready addresses first, then cut at capacity.
	ordered := slices.Clone(endpoints)
	slices.SortStableFunc(ordered, func(a, b Endpoint) int {
		switch {
		case a.Ready == b.Ready:
			return 0
		case a.Ready:
			return -1
		default:
			return 1
		}
	})
	if len(ordered) > MaxEndpointsAddresses {
		ordered = ordered[:MaxEndpointsAddresses]
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[OverCapacityAnnotation] = "truncated"
	}
	if annotations != nil {
		eps.WithAnnotations(annotations)
	}
	subset := corev1ac.EndpointSubset()
	for _, ep := range ordered {
		addr := corev1ac.EndpointAddress().WithIP(ep.Address.Unmap().String())
		if ep.Ready {
			subset.WithAddresses(addr)
		} else {
			subset.WithNotReadyAddresses(addr)
		}
	}
	for _, p := range xb.Spec.Ports {
		port := corev1ac.EndpointPort().
			WithName(p.Name).
			WithPort(TargetPort(p)).
			WithProtocol(protocol(p))
		if p.AppProtocol != nil {
			port.WithAppProtocol(*p.AppProtocol)
		}
		subset.WithPorts(port)
	}
	return eps.WithSubsets(subset)
}
