package kubectlplugin

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Endpoints an ExternalBackend cannot describe are refused with the reason
// and the way out, not imported wrong.
func TestImportRefusesWhatItCannotDescribe(t *testing.T) {
	split := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{
		{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.1"}}, Ports: []corev1.EndpointPort{{Name: "http", Port: 80}}},
		{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.2"}}, Ports: []corev1.EndpointPort{{Name: "http", Port: 8080}}},
	}}
	if _, err := BackendsFromEndpoints(split); err == nil || !strings.Contains(err.Error(), `endpoint port "http" is 80 for some addresses and 8080 for others`) {
		t.Errorf("subsets with different ports: error %v", err)
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("web")}}},
	}
	_, _, err := Import(svc, Backends{Addresses: []string{"192.0.2.1"}, Ports: map[string]int32{"other": 80}})
	var skipped *Skipped
	if !errors.As(err, &skipped) || !strings.Contains(err.Error(), `targetPort "web" names a container port, and no endpoint port is called "http"`) {
		t.Errorf("named targetPort without its endpoint port: error %v", err)
	}
	if _, _, err := Import(svc, Backends{}); !errors.As(err, &skipped) || !strings.Contains(err.Error(), "list no address") {
		t.Errorf("no addresses: error %v", err)
	}
}

// What a Service has and an ExternalBackend cannot hold is named on
// stderr, so the person importing knows what takeover changes.
func TestImportNotesLostFields(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lb"},
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy:    corev1.ServiceExternalTrafficPolicyLocal,
			LoadBalancerSourceRanges: []string{"198.51.100.0/24"},
			Ports:                    []corev1.ServicePort{{Port: 443, NodePort: 30443, Protocol: corev1.ProtocolTCP}},
		},
	}
	xb, notes, err := Import(svc, Backends{Addresses: []string{"192.0.2.1"}, Ports: map[string]int32{"": 8443}})
	if err != nil {
		t.Fatal(err)
	}
	if p := xb.Spec.Ports[0]; p.TargetPort != 8443 || p.NodePort != 30443 || xb.Spec.ServiceType != corev1.ServiceTypeLoadBalancer {
		t.Errorf("spec = %+v", xb.Spec)
	}
	got := strings.Join(notes, "\n")
	for _, want := range []string{"spec.externalTrafficPolicy Local is not carried over", "spec.loadBalancerSourceRanges [198.51.100.0/24] is not carried over"} {
		if !strings.Contains(got, want) {
			t.Errorf("notes do not say %q:\n%s", want, got)
		}
	}
}
