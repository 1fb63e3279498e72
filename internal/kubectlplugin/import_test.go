package kubectlplugin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

func selectorless(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: ports},
	}
}

func port(name string, port, target int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromInt32(target), Protocol: corev1.ProtocolTCP}
}

func endpoints(ns, name string, ports []corev1.EndpointPort, ready []string, notReady ...string) *corev1.Endpoints {
	subset := corev1.EndpointSubset{Ports: ports}
	for _, ip := range ready {
		subset.Addresses = append(subset.Addresses, corev1.EndpointAddress{IP: ip})
	}
	for _, ip := range notReady {
		subset.NotReadyAddresses = append(subset.NotReadyAddresses, corev1.EndpointAddress{IP: ip})
	}
	return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Subsets: []corev1.EndpointSubset{subset}}
}

// TestImportRoundTrip writes the README's user stories the way people did
// before Outpost (selectorless Services with hand-written Endpoints or
// EndpointSlices, an ExternalName Service), imports them, and has the API
// server accept each printed ExternalBackend (a server-side dry run against
// the CRD) with the spec the story describes.
func TestImportRoundTrip(t *testing.T) {
	const ns = "legacy"
	namespace(t, ns)

	svc1 := selectorless(ns, "svc1", port("port7064", 7064, 31496), port("port7164", 7164, 31337))
	svc1.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"kind":"Service"}`}
	rocketmq := selectorless(ns, "rocketmq", port("", 9100, 9100))
	rocketmq.Labels = map[string]string{"app": "rocketmq", "type": "ec2"}
	rocketmq.Annotations = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9100", "prometheus.io/path": "/metrics"}
	external := selectorless(ns, "external-service-1", port("visit-port", 9999, 80), port("test-port", 8888, 443))
	db := selectorless(ns, "db", port("", 3306, 3306))
	testdb := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "testdb"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "test.ap-northeast-1.rds.amazonaws.com"},
	}
	create(t, svc1, rocketmq, external, db, testdb,
		endpoints(ns, "svc1", []corev1.EndpointPort{{Name: "port7064", Port: 31496}, {Name: "port7164", Port: 31337}}, []string{"192.168.1.2"}),
		// One machine down: a not-ready address is still one of the backend's.
		endpoints(ns, "rocketmq", []corev1.EndpointPort{{Port: 9100}}, []string{"192.168.1.2", "192.168.1.3"}, "192.168.1.4"),
		endpoints(ns, "external-service-1", []corev1.EndpointPort{{Name: "visit-port", Port: 80}, {Name: "test-port", Port: 443}}, []string{"203.0.113.21", "203.0.113.22"}),
		// db's endpoints were written as an EndpointSlice only.
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "db-manual", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"203.0.113.10"}}},
			Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](3306), Protocol: ptr.To(corev1.ProtocolTCP)}},
		},
	)
	// Not imported: Pods behind a selector, and a Service Outpost wrote.
	web := selectorless(ns, "web", port("", 80, 8080))
	web.Spec.Selector = map[string]string{"app": "web"}
	owned := selectorless(ns, "owned", port("", 80, 80))
	owned.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "ExternalBackend", Name: "owned", UID: "0d7c7b5e-4b8e-4a47-9d55-0d0b6d1c1f00", Controller: ptr.To(true),
	}}
	create(t, web, owned)

	tcp := func(name string, port, target int32) v1alpha1.BackendPort {
		return v1alpha1.BackendPort{Name: name, Port: port, TargetPort: target, Protocol: corev1.ProtocolTCP}
	}
	static := func(addresses []string, ports ...v1alpha1.BackendPort) v1alpha1.ExternalBackendSpec {
		return v1alpha1.ExternalBackendSpec{Addresses: addresses, Ports: ports, ServiceType: corev1.ServiceTypeClusterIP, SessionAffinity: corev1.ServiceAffinityNone}
	}
	want := map[string]v1alpha1.ExternalBackendSpec{
		"svc1":               static([]string{"192.168.1.2"}, tcp("port7064", 7064, 31496), tcp("port7164", 7164, 31337)),
		"rocketmq":           static([]string{"192.168.1.2", "192.168.1.3", "192.168.1.4"}, tcp("", 9100, 0)),
		"external-service-1": static([]string{"203.0.113.21", "203.0.113.22"}, tcp("visit-port", 9999, 80), tcp("test-port", 8888, 443)),
		"db":                 static([]string{"203.0.113.10"}, tcp("", 3306, 0)),
		"testdb":             {ExternalName: "test.ap-northeast-1.rds.amazonaws.com", ServiceType: corev1.ServiceTypeClusterIP, SessionAffinity: corev1.ServiceAffinityNone},
	}
	rocketmqSpec := want["rocketmq"]
	rocketmqSpec.ServiceMetadata = &v1alpha1.ServiceMetadata{Labels: rocketmq.Labels, Annotations: rocketmq.Annotations}
	want["rocketmq"] = rocketmqSpec

	out, stderr, err := kubectlOutpost(t, "import", "-n", ns)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if !strings.HasPrefix(out, "# ") || !strings.Contains(out, v1alpha1.AdoptAnnotation) {
		t.Errorf("the YAML does not start with the comment explaining %s:\n%s", v1alpha1.AdoptAnnotation, out)
	}
	for _, skipped := range []string{"legacy/web: it has a selector", "legacy/owned: it already belongs to ExternalBackend owned"} {
		if !strings.Contains(stderr, skipped) {
			t.Errorf("stderr does not say %q:\n%s", skipped, stderr)
		}
	}

	got := map[string]bool{}
	for _, doc := range yamlDocuments(t, out) {
		var xb v1alpha1.ExternalBackend
		if err := yaml.UnmarshalStrict(doc, &xb); err != nil {
			t.Fatalf("printed document is not an ExternalBackend: %v\n%s", err, doc)
		}
		got[xb.Name] = true
		if xb.Annotations[v1alpha1.AdoptAnnotation] != "true" {
			t.Errorf("%s: annotations %v, want %s: \"true\"", xb.Name, xb.Annotations, v1alpha1.AdoptAnnotation)
		}
		// What kubectl apply would store, without storing it.
		if err := k8s.Create(context.Background(), &xb, client.DryRunAll); err != nil {
			t.Errorf("%s: the API server refuses the imported ExternalBackend: %v", xb.Name, err)
			continue
		}
		if !reflect.DeepEqual(xb.Spec, want[xb.Name]) {
			t.Errorf("%s: stored spec\n%+v\nwant\n%+v", xb.Name, xb.Spec, want[xb.Name])
		}
	}
	for name := range want {
		if !got[name] {
			t.Errorf("%s was not imported", name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("imported %v, want exactly %d backends", got, len(want))
	}

	// -o json is one object for one Service.
	out, stderr, err = kubectlOutpost(t, "import", "svc1", "-n", ns, "-o", "json")
	if err != nil {
		t.Fatalf("import svc1 -o json: %v\n%s", err, stderr)
	}
	var one v1alpha1.ExternalBackend
	if err := json.Unmarshal([]byte(out), &one); err != nil || one.Kind != "ExternalBackend" || !reflect.DeepEqual(one.Spec.Addresses, []string{"192.168.1.2"}) {
		t.Errorf("import svc1 -o json printed (%v):\n%s", err, out)
	}

	// Naming a Service that cannot be imported is an error that says why.
	if _, _, err := kubectlOutpost(t, "import", "web", "-n", ns); err == nil || !strings.Contains(err.Error(), "it has a selector") {
		t.Errorf("import web: error %v, want one saying it has a selector", err)
	}
}

func yamlDocuments(t *testing.T, stream string) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(strings.TrimSpace(stripComments(string(doc)))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
