package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

func xb(spec v1alpha1.ExternalBackendSpec) *v1alpha1.ExternalBackend {
	return &v1alpha1.ExternalBackend{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "prod", UID: "uid-1"}, Spec: spec}
}

func eps(ready bool, addrs ...string) []Endpoint {
	var out []Endpoint
	for _, a := range addrs {
		out = append(out, Endpoint{Address: netip.MustParseAddr(a), Ready: ready})
	}
	return out
}

func TestAliasIsOnlyAnExternalNameService(t *testing.T) {
	objs := Compute(xb(v1alpha1.ExternalBackendSpec{ExternalName: "db.example.com", Ports: []v1alpha1.BackendPort{{Name: "pg", Port: 5432}}}),
		nil, nil, Options{WriteEndpoints: true})
	if objs.EndpointSlices != nil || objs.Endpoints != nil {
		t.Fatalf("alias wrote slices or Endpoints: %+v", objs)
	}
	spec := objs.Service.Spec
	if *spec.Type != corev1.ServiceTypeExternalName || *spec.ExternalName != "db.example.com" {
		t.Errorf("type %v externalName %v", *spec.Type, *spec.ExternalName)
	}
	if got := spec.Ports[0].TargetPort.IntValue(); got != 5432 {
		t.Errorf("alias targetPort %d, want the port itself", got)
	}
	owner := objs.Service.OwnerReferences[0]
	if *owner.Kind != "ExternalBackend" || *owner.UID != "uid-1" || !*owner.Controller {
		t.Errorf("owner reference %+v", owner)
	}
}

func TestEndpointsAreSortedDeduplicatedAndSplitByFamily(t *testing.T) {
	in := append(eps(true, "192.168.0.3", "2001:db8::2", "192.168.0.1", "192.168.0.3"), eps(false, "2001:db8::1")...)
	objs := Compute(xb(v1alpha1.ExternalBackendSpec{Addresses: []string{"x"}, Ports: []v1alpha1.BackendPort{{Port: 80}}}), in, nil, Options{})
	if objs.Endpoints != nil {
		t.Errorf("Endpoints written without WriteEndpoints")
	}
	if len(objs.EndpointSlices) != 2 {
		t.Fatalf("%d slices, want 2", len(objs.EndpointSlices))
	}
	v4, v6 := objs.EndpointSlices[0], objs.EndpointSlices[1]
	if *v4.Name != "db-ipv4" || *v4.AddressType != discoveryv1.AddressTypeIPv4 || *v6.Name != "db-ipv6" {
		t.Errorf("slices %s/%s %s", *v4.Name, *v4.AddressType, *v6.Name)
	}
	var got []string
	for _, e := range v4.Endpoints {
		got = append(got, e.Addresses[0])
	}
	if fmt.Sprint(got) != "[192.168.0.1 192.168.0.3]" {
		t.Errorf("IPv4 endpoints %v", got)
	}
	if first := v6.Endpoints[0]; first.Addresses[0] != "2001:db8::1" || *first.Conditions.Ready || *first.Conditions.Serving {
		t.Errorf("not-ready IPv6 endpoint written as %+v", first.Conditions)
	}
}

func TestSlicesSplitAtTheAPILimit(t *testing.T) {
	var in []Endpoint
	for i := range 2001 {
		in = append(in, Endpoint{Address: netip.AddrFrom4([4]byte{192, 168, byte(i / 250), byte(i%250 + 1)}), Ready: i%2 == 0})
	}
	objs := Compute(xb(v1alpha1.ExternalBackendSpec{Addresses: []string{"x"}, Ports: []v1alpha1.BackendPort{{Port: 80}}}), in, nil, Options{WriteEndpoints: true})
	var names []string
	for _, s := range objs.EndpointSlices {
		names = append(names, fmt.Sprintf("%s:%d", *s.Name, len(s.Endpoints)))
	}
	if fmt.Sprint(names) != "[db-ipv4:1000 db-ipv4-2:1000 db-ipv4-3:1]" {
		t.Errorf("slices %v", names)
	}
	subset := objs.Endpoints.Subsets[0]
	// 1001 of the 2001 are ready: the cut keeps 1000 ready ones, no not-ready.
	if len(subset.Addresses) != MaxEndpointsAddresses || len(subset.NotReadyAddresses) != 0 {
		t.Errorf("Endpoints hold %d ready + %d not ready, want %d ready first", len(subset.Addresses), len(subset.NotReadyAddresses), MaxEndpointsAddresses)
	}
	if objs.Endpoints.Annotations[OverCapacityAnnotation] != "truncated" {
		t.Errorf("over-capacity annotation missing")
	}
}

func TestNoEndpointsWritesOneEmptySliceOfTheBackendsFamily(t *testing.T) {
	for _, c := range []struct {
		addresses []string
		want      string
	}{
		{[]string{"192.168.0.1"}, "db-ipv4"},
		{[]string{"2001:db8::1"}, "db-ipv6"},
	} {
		objs := Compute(xb(v1alpha1.ExternalBackendSpec{Addresses: c.addresses, Ports: []v1alpha1.BackendPort{{Port: 80}}}), nil, nil, Options{})
		if len(objs.EndpointSlices) != 1 || *objs.EndpointSlices[0].Name != c.want || len(objs.EndpointSlices[0].Endpoints) != 0 {
			t.Errorf("%v: slices %+v, want one empty %s", c.addresses, objs.EndpointSlices, c.want)
		}
	}
}

func TestServiceFamilies(t *testing.T) {
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol
	for _, c := range []struct {
		name      string
		addresses []string
		families  []v1alpha1.IPFamily
		live      []corev1.IPFamily
		policy    string
		want      string
	}{
		{"IPv4 only: an IPv4 ClusterIP even where the cluster prefers IPv6", []string{"192.168.0.1"}, nil, nil, "SingleStack", "[IPv4]"},
		{"IPv6 only", []string{"2001:db8::1"}, nil, nil, "SingleStack", "[IPv6]"},
		{"both, in spec order", []string{"192.168.0.1", "2001:db8::1"}, nil, nil, "PreferDualStack", "[IPv4 IPv6]"},
		{"names resolved in both", []string{"db.example.com"}, []v1alpha1.IPFamily{v1alpha1.IPv6, v1alpha1.IPv4}, nil, "PreferDualStack", "[IPv6 IPv4]"},
		{"reordered: the live primary family stays first", []string{"2001:db8::1", "192.168.0.1"}, nil, []corev1.IPFamily{v4, v6}, "PreferDualStack", "[IPv4 IPv6]"},
		{"reordered, live IPv6 first", []string{"192.168.0.1", "2001:db8::1"}, nil, []corev1.IPFamily{v6, v4}, "PreferDualStack", "[IPv6 IPv4]"},
		{"the live primary family is gone from the backends: kept beside theirs", []string{"2001:db8::1"}, nil, []corev1.IPFamily{v4}, "PreferDualStack", "[IPv4 IPv6]"},
		{"dual-stack live, one family left: single stack", []string{"192.168.0.1"}, nil, []corev1.IPFamily{v4, v6}, "SingleStack", "[IPv4]"},
	} {
		b := xb(v1alpha1.ExternalBackendSpec{Addresses: c.addresses, Ports: []v1alpha1.BackendPort{{Port: 80}}})
		if c.families != nil {
			b.Spec.Resolution = &v1alpha1.Resolution{IPFamilies: c.families}
		}
		var live *corev1.Service
		if c.live != nil {
			live = &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, IPFamilies: c.live}}
		}
		spec := Compute(b, nil, live, Options{}).Service.Spec
		policy := "<nil>"
		if spec.IPFamilyPolicy != nil {
			policy = string(*spec.IPFamilyPolicy)
		}
		if policy != c.policy || fmt.Sprint(spec.IPFamilies) != c.want {
			t.Errorf("%s: policy %s families %v, want %s %s", c.name, policy, spec.IPFamilies, c.policy, c.want)
		}
	}
}

func TestUserMetadataCannotOverrideOwnership(t *testing.T) {
	b := xb(v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.0.1"}, Ports: []v1alpha1.BackendPort{{Port: 80}},
		ServiceMetadata: &v1alpha1.ServiceMetadata{Labels: map[string]string{
			LabelManagedBy:               "someone",
			discoveryv1.LabelServiceName: "other",
			discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
		}}})
	objs := Compute(b, eps(true, "192.168.0.1"), nil, Options{WriteEndpoints: true})
	if objs.Service.Labels[LabelManagedBy] != ManagedBy {
		t.Errorf("Service managed-by %q", objs.Service.Labels[LabelManagedBy])
	}
	l := objs.EndpointSlices[0].Labels
	if l[discoveryv1.LabelServiceName] != "db" || l[discoveryv1.LabelManagedBy] != SliceManagedBy {
		t.Errorf("slice labels %v", l)
	}
	if objs.Endpoints.Labels[discoveryv1.LabelSkipMirror] != "true" {
		t.Errorf("Endpoints lack skip-mirror: %v", objs.Endpoints.Labels)
	}
}

// A pinned cluster IP is passed on, and its family leads: the API server
// refuses a clusterIP that is not of the Service's primary family.
func TestPinnedClusterIPLeadsTheFamilies(t *testing.T) {
	b := xb(v1alpha1.ExternalBackendSpec{
		Addresses: []string{"192.168.0.1", "2001:db8::1"},
		Ports:     []v1alpha1.BackendPort{{Port: 80}},
		ClusterIP: "fd00:10:96::53",
	})
	spec := Compute(b, nil, nil, Options{}).Service.Spec
	if spec.ClusterIP == nil || *spec.ClusterIP != "fd00:10:96::53" {
		t.Errorf("clusterIP %v, want fd00:10:96::53", spec.ClusterIP)
	}
	if got := fmt.Sprint(spec.IPFamilies); got != "[IPv6 IPv4]" {
		t.Errorf("families %s, want [IPv6 IPv4]", got)
	}
}

func TestZonesAndHints(t *testing.T) {
	zoned := []Endpoint{
		{Address: netip.MustParseAddr("192.168.0.1"), Ready: true, Zone: "eu-west-1a"},
		{Address: netip.MustParseAddr("192.168.0.2"), Ready: true, Zone: "eu-west-1b"},
	}
	unzoned := append(slices.Clone(zoned), Endpoint{Address: netip.MustParseAddr("192.168.0.3"), Ready: true})
	preferClose := ptr(corev1.ServiceTrafficDistributionPreferClose)
	for _, tc := range []struct {
		name         string
		distribution *string
		endpoints    []Endpoint
		wantZones    string
		wantHints    string
	}{
		{"zones without trafficDistribution: no hints", nil, zoned, "[eu-west-1a eu-west-1b]", "[[] []]"},
		{"PreferClose, every endpoint zoned: a hint for its own zone", preferClose, zoned, "[eu-west-1a eu-west-1b]", "[[eu-west-1a] [eu-west-1b]]"},
		{"PreferClose, one endpoint without zone: no hints", preferClose, unzoned, "[eu-west-1a eu-west-1b ]", "[[] [] []]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := Compute(xb(v1alpha1.ExternalBackendSpec{Addresses: []string{"x"}, Ports: []v1alpha1.BackendPort{{Port: 80}}, TrafficDistribution: tc.distribution}),
				tc.endpoints, nil, Options{})
			var zones []string
			var hints [][]string
			for _, e := range objs.EndpointSlices[0].Endpoints {
				zones = append(zones, ptrValue(e.Zone))
				var forZones []string
				if e.Hints != nil {
					for _, z := range e.Hints.ForZones {
						forZones = append(forZones, *z.Name)
					}
				}
				hints = append(hints, forZones)
			}
			if fmt.Sprint(zones) != tc.wantZones || fmt.Sprint(hints) != tc.wantHints {
				t.Errorf("zones %v hints %v, want %s %s", zones, hints, tc.wantZones, tc.wantHints)
			}
			if got := objs.Service.Spec.TrafficDistribution; (got == nil) != (tc.distribution == nil) || (got != nil && *got != *tc.distribution) {
				t.Errorf("Service trafficDistribution %v, want %v", got, tc.distribution)
			}
		})
	}
}

func TestSpecAddressesPutTheGroupsInPriorityOrder(t *testing.T) {
	b := xb(v1alpha1.ExternalBackendSpec{AddressGroups: []v1alpha1.AddressGroup{
		{Priority: 5, Addresses: []string{"192.168.0.9"}, Zone: "b"},
		{Priority: 0, Addresses: []string{"db.example.com", "192.168.0.1"}, Zone: "a"},
	}})
	var got []string
	for _, a := range SpecAddresses(b) {
		got = append(got, fmt.Sprintf("%s/%d/%s", a.Value, a.Priority, a.Zone))
	}
	if want := "[db.example.com/0/a 192.168.0.1/0/a 192.168.0.9/5/b]"; fmt.Sprint(got) != want {
		t.Errorf("SpecAddresses %v, want %s", got, want)
	}
}

func ptr[T any](v T) *T { return &v }

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
