// Package kubectlplugin is `kubectl outpost`: import turns the selectorless
// and ExternalName Services people already run into ExternalBackends, and
// explain shows one ExternalBackend with everything it produced. The
// translations and the screen are pure functions of the objects read; the
// commands only fetch, print and ask DNS.
package kubectlplugin

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
)

// Backends are the addresses and ports a Service's Endpoints (or
// EndpointSlices) send traffic to, in the shape an ExternalBackend can hold:
// every address listens on the same ports.
type Backends struct {
	// Addresses, ready or not, in the order first seen, without repeats.
	Addresses []string
	// Ports maps an endpoint port name ("" for an unnamed port) to its port.
	Ports map[string]int32
}

// Skipped explains why a Service is not imported.
type Skipped struct {
	Namespace, Name string
	Reason          string
}

func (s *Skipped) Error() string {
	return fmt.Sprintf("skipped Service %s/%s: %s", s.Namespace, s.Name, s.Reason)
}

// BackendsFromEndpoints collects the addresses of every subset, ready and
// not ready. Subsets that give one port name different numbers cannot be
// one ExternalBackend, which sends every address to the same targetPort.
func BackendsFromEndpoints(ep *corev1.Endpoints) (Backends, error) {
	b := Backends{Ports: map[string]int32{}}
	for _, subset := range ep.Subsets {
		for _, p := range subset.Ports {
			if err := b.addPort(p.Name, p.Port); err != nil {
				return Backends{}, err
			}
		}
		for _, a := range slices.Concat(subset.Addresses, subset.NotReadyAddresses) {
			b.addAddress(a.IP)
		}
	}
	return b, nil
}

// BackendsFromSlices is BackendsFromEndpoints for Services whose endpoints
// were written as EndpointSlices.
func BackendsFromSlices(slices []discoveryv1.EndpointSlice) (Backends, error) {
	b := Backends{Ports: map[string]int32{}}
	for _, s := range slices {
		for _, p := range s.Ports {
			if p.Port == nil {
				continue
			}
			if err := b.addPort(ptrOr(p.Name, ""), *p.Port); err != nil {
				return Backends{}, err
			}
		}
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				b.addAddress(a)
			}
		}
	}
	return b, nil
}

func (b *Backends) addPort(name string, port int32) error {
	if old, ok := b.Ports[name]; ok && old != port {
		return fmt.Errorf("endpoint port %q is %d for some addresses and %d for others; an ExternalBackend sends every address to the same targetPort, so split it into one ExternalBackend per port number", name, old, port)
	}
	b.Ports[name] = port
	return nil
}

func (b *Backends) addAddress(ip string) {
	if !slices.Contains(b.Addresses, ip) {
		b.Addresses = append(b.Addresses, ip)
	}
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// OwnedByExternalBackend reports whether svc was written by the operator for an
// ExternalBackend (its controller is one).
func OwnedByExternalBackend(svc *corev1.Service) bool {
	ref := metav1.GetControllerOf(svc)
	return ref != nil && ref.Kind == "ExternalBackend" && strings.HasPrefix(ref.APIVersion, v1alpha1.GroupVersion.Group+"/")
}

// Import returns the ExternalBackend that describes svc and its backends
// (ignored for ExternalName Services), annotated with v1alpha1.AdoptAnnotation; a
// *Skipped error says why there is none. Notes list what of svc the
// ExternalBackend cannot carry.
func Import(svc *corev1.Service, backends Backends) (xb *v1alpha1.ExternalBackend, notes []string, err error) {
	skip := func(format string, args ...any) error {
		return &Skipped{Namespace: svc.Namespace, Name: svc.Name, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case OwnedByExternalBackend(svc):
		return nil, nil, skip("it already belongs to ExternalBackend %s", metav1.GetControllerOf(svc).Name)
	case len(svc.Spec.Selector) > 0:
		return nil, nil, skip("it has a selector, so its endpoints are Pods, not machines outside the cluster")
	}
	xb = &v1alpha1.ExternalBackend{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ExternalBackend"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        svc.Name,
			Namespace:   svc.Namespace,
			Annotations: map[string]string{v1alpha1.AdoptAnnotation: "true"},
		},
		Spec: v1alpha1.ExternalBackendSpec{
			ServiceType:     cmp.Or(svc.Spec.Type, v1alpha1.DefaultServiceType),
			SessionAffinity: cmp.Or(svc.Spec.SessionAffinity, v1alpha1.DefaultSessionAffinity),
			ServiceMetadata: serviceMetadata(svc),
		},
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		xb.Spec.ExternalName = strings.TrimSuffix(svc.Spec.ExternalName, ".")
		xb.Spec.ServiceType = v1alpha1.DefaultServiceType
		xb.Spec.SessionAffinity = v1alpha1.DefaultSessionAffinity
		for _, sp := range svc.Spec.Ports {
			// A CNAME cannot remap ports: the client connects to the
			// Service's port on the target, whatever targetPort says.
			xb.Spec.Ports = append(xb.Spec.Ports, v1alpha1.BackendPort{
				Name: sp.Name, Port: sp.Port, Protocol: cmp.Or(sp.Protocol, v1alpha1.DefaultProtocol), AppProtocol: sp.AppProtocol,
			})
		}
		return xb, nil, nil
	}

	if len(backends.Addresses) == 0 {
		return nil, nil, skip("its Endpoints and EndpointSlices list no address; write them first or create the ExternalBackend by hand")
	}
	xb.Spec.Addresses = backends.Addresses
	xb.Spec.Headless = svc.Spec.ClusterIP == corev1.ClusterIPNone
	for _, sp := range svc.Spec.Ports {
		target, err := targetPort(sp, backends)
		if err != nil {
			return nil, nil, skip("%v", err)
		}
		p := v1alpha1.BackendPort{
			Name: sp.Name, Port: sp.Port, Protocol: cmp.Or(sp.Protocol, v1alpha1.DefaultProtocol), AppProtocol: sp.AppProtocol,
			NodePort: sp.NodePort,
		}
		if target != sp.Port {
			p.TargetPort = target
		}
		xb.Spec.Ports = append(xb.Spec.Ports, p)
	}
	return xb, lostFields(svc), nil
}

// targetPort is where the endpoints listen for sp: the endpoint port of
// the same name, as the API server pairs them, else sp's numeric
// targetPort.
func targetPort(sp corev1.ServicePort, backends Backends) (int32, error) {
	if port, ok := backends.Ports[sp.Name]; ok {
		return port, nil
	}
	if sp.TargetPort.IntVal != 0 {
		return sp.TargetPort.IntVal, nil
	}
	if sp.TargetPort.StrVal != "" {
		return 0, fmt.Errorf("port %q: targetPort %q names a container port, and no endpoint port is called %q", sp.Name, sp.TargetPort.StrVal, sp.Name)
	}
	return sp.Port, nil
}

// systemAnnotationPrefixes are annotations tools write for themselves;
// copying them onto the ExternalBackend's Service would be stale.
var systemAnnotationPrefixes = []string{"kubectl.kubernetes.io/"}

func serviceMetadata(svc *corev1.Service) *v1alpha1.ServiceMetadata {
	labels := maps.Clone(svc.Labels)
	// The operator writes its own managed-by label.
	delete(labels, desired.LabelManagedBy)
	annotations := maps.Clone(svc.Annotations)
	maps.DeleteFunc(annotations, func(k, _ string) bool {
		return slices.ContainsFunc(systemAnnotationPrefixes, func(p string) bool { return strings.HasPrefix(k, p) })
	})
	if len(labels) == 0 && len(annotations) == 0 {
		return nil
	}
	md := &v1alpha1.ServiceMetadata{}
	if len(labels) > 0 {
		md.Labels = labels
	}
	if len(annotations) > 0 {
		md.Annotations = annotations
	}
	return md
}

// lostFields names the Service's settings an ExternalBackend has no field
// for, so the person importing knows what changes on takeover.
func lostFields(svc *corev1.Service) []string {
	var notes []string
	lost := func(field string, value any) {
		notes = append(notes, fmt.Sprintf("Service %s/%s: spec.%s %v is not carried over (ExternalBackend has no such field)", svc.Namespace, svc.Name, field, value))
	}
	if p := svc.Spec.ExternalTrafficPolicy; p != "" && p != corev1.ServiceExternalTrafficPolicyCluster {
		lost("externalTrafficPolicy", p)
	}
	if p := svc.Spec.InternalTrafficPolicy; p != nil && *p != corev1.ServiceInternalTrafficPolicyCluster {
		lost("internalTrafficPolicy", *p)
	}
	if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
		lost("loadBalancerSourceRanges", svc.Spec.LoadBalancerSourceRanges)
	}
	if len(svc.Spec.ExternalIPs) > 0 {
		lost("externalIPs", svc.Spec.ExternalIPs)
	}
	return notes
}
