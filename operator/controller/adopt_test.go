package controller_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/controller"
	"github.com/outpost-dev/outpost/operator/desired"
)

// Users move hand-written selectorless Services to ExternalBackends without
// a new ClusterIP and without a moment without endpoints; the takeover is
// asked for explicitly and refused where it would break someone else.
var _ = Describe("Adopting a hand-written Service", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	// handWritten creates what a user and the endpointslice-mirroring
	// controller leave behind (no controller runs in envtest): a
	// selectorless NodePort Service, its Endpoints, and their mirrored slice.
	handWritten := func(name string, mutate func(*corev1.Service)) *corev1.Service {
		GinkgoHelper()
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns, Name: name,
				Labels:      map[string]string{"team": "payments"},
				Annotations: map[string]string{"example.com/owner": "alice"},
			},
			Spec: corev1.ServiceSpec{
				Type:  corev1.ServiceTypeNodePort,
				Ports: []corev1.ServicePort{{Port: 5432, Protocol: corev1.ProtocolTCP}},
			},
		}
		if mutate != nil {
			mutate(svc)
		}
		Expect(k8s.Create(ctx, svc)).To(Succeed())
		eps := &corev1.Endpoints{ //nolint:staticcheck // hand-written Endpoints are what is adopted
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Subsets: []corev1.EndpointSubset{{ //nolint:staticcheck
				Addresses: []corev1.EndpointAddress{{IP: "192.168.7.1"}}, //nolint:staticcheck
				Ports:     []corev1.EndpointPort{{Port: 5432}},           //nolint:staticcheck
			}},
		}
		Expect(k8s.Create(ctx, eps)).To(Succeed())
		mirrored := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns, Name: name + "-mirrored",
				Labels: map[string]string{
					discoveryv1.LabelServiceName: name,
					discoveryv1.LabelManagedBy:   controller.MirroringControllerName,
				},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.168.7.1"}}},
			Ports:       []discoveryv1.EndpointPort{{Port: ptr(int32(5432))}},
		}
		Expect(k8s.Create(ctx, mirrored)).To(Succeed())
		return svc
	}
	adopting := func(name string) *v1alpha1.ExternalBackend {
		xb := backend(ns, name, v1alpha1.ExternalBackendSpec{
			Addresses:   []string{"192.168.7.1", "192.168.7.2"},
			Ports:       []v1alpha1.BackendPort{{Port: 5432}},
			ServiceType: corev1.ServiceTypeNodePort,
		})
		xb.Annotations = map[string]string{v1alpha1.AdoptAnnotation: "true"}
		return xb
	}

	It("keeps the ClusterIP, node port, labels and annotations, and replaces the Endpoints and mirrored slice", func() {
		before := handWritten("db", nil)
		xb := adopting("db")
		Expect(k8s.Create(ctx, xb)).To(Succeed())

		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.AdoptedAt).NotTo(BeNil(), "status.adoptedAt")
		svc := service(ns, "db")
		Expect(svc.UID).To(Equal(before.UID), "the Service was recreated")
		expectOwnedBy(svc, got)
		Expect(svc.Spec.ClusterIP).To(Equal(before.Spec.ClusterIP))
		Expect(svc.Spec.Ports[0].NodePort).To(Equal(before.Spec.Ports[0].NodePort))
		Expect(svc.Labels).To(HaveKeyWithValue("team", "payments"))
		Expect(svc.Annotations).To(HaveKeyWithValue("example.com/owner", "alice"))

		Expect(sliceNames(ns, "db")).To(Equal([]string{"db-ipv4"}), "the mirrored slice is still there")
		Expect(addressesOf(slicesOf(ns, "db"))).To(Equal(map[string]bool{"192.168.7.1": true, "192.168.7.2": true}))
		eps := endpoints(ns, "db")
		expectOwnedBy(eps, got)
		Expect(eps.Labels).To(HaveKeyWithValue(discoveryv1.LabelSkipMirror, "true"))
		Expect(eps.Subsets).To(HaveLen(1))
		Expect(eps.Subsets[0].Addresses).To(ConsistOf( //nolint:staticcheck
			corev1.EndpointAddress{IP: "192.168.7.1"}, corev1.EndpointAddress{IP: "192.168.7.2"})) //nolint:staticcheck
		Eventually(eventReasons(xb), timeout, poll).Should(ContainElement(v1alpha1.EventAdopted))
	})

	It("reports ServiceConflict and changes nothing without the annotation", func() {
		before := handWritten("cache", nil)
		xb := adopting("cache")
		xb.Annotations = nil
		Expect(k8s.Create(ctx, xb)).To(Succeed())

		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonServiceConflict)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring(v1alpha1.AdoptAnnotation))
		Expect(metav1.GetControllerOf(service(ns, "cache"))).To(BeNil())
		Expect(service(ns, "cache").Labels).NotTo(HaveKey(desired.LabelManagedBy))
		Expect(sliceNames(ns, "cache")).To(Equal([]string{"cache-mirrored"}))
		Expect(endpoints(ns, "cache").ResourceVersion).NotTo(BeEmpty())
		Expect(metav1.GetControllerOf(endpoints(ns, "cache"))).To(BeNil())
		Expect(got.Status.AdoptedAt).To(BeNil())
		Expect(service(ns, "cache").UID).To(Equal(before.UID))
	})

	It("refuses a Service with a selector, saying why", func() {
		handWritten("web", func(svc *corev1.Service) { svc.Spec.Selector = map[string]string{"app": "web"} })
		xb := adopting("web")
		Expect(k8s.Create(ctx, xb)).To(Succeed())

		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonServiceConflict)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message).To(
			ContainSubstring("cannot be adopted: it has a selector"))
		Expect(metav1.GetControllerOf(service(ns, "web"))).To(BeNil())
		Expect(sliceNames(ns, "web")).To(Equal([]string{"web-mirrored"}))
	})

	It("refuses a Service another object controls, saying which", func() {
		owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "owner"}}
		Expect(k8s.Create(ctx, owner)).To(Succeed())
		handWritten("queue", func(svc *corev1.Service) {
			svc.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: owner.UID, Controller: ptr(true)}}
		})
		xb := adopting("queue")
		Expect(k8s.Create(ctx, xb)).To(Succeed())

		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonServiceConflict)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message).To(
			ContainSubstring("cannot be adopted: it is controlled by ConfigMap owner"))
		Expect(metav1.IsControlledBy(service(ns, "queue"), owner)).To(BeTrue())
	})
})

var _ = Describe("spec.clusterIP", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("pins the Service's cluster IP and cannot change", func() {
		xb := backend(ns, "pinned", v1alpha1.ExternalBackendSpec{
			Addresses: []string{"192.168.7.1"}, Ports: tcp(80), ClusterIP: "10.96.200.17",
		})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(service(ns, "pinned").Spec.ClusterIP).To(Equal("10.96.200.17"))

		for _, change := range []string{"10.96.200.18", ""} {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(xb), xb)).To(Succeed())
			xb.Spec.ClusterIP = change
			err := k8s.Update(ctx, xb)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "changing spec.clusterIP to %q: %v", change, err)
			Expect(err.Error()).To(ContainSubstring("spec.clusterIP: is immutable"))
		}
	})

	DescribeTable("rejects",
		func(mutate func(*v1alpha1.ExternalBackendSpec), wantMessage string) {
			xb := backend(ns, "bad", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.7.1"}, Ports: tcp(80)})
			mutate(&xb.Spec)
			err := k8s.Create(ctx, xb)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("a value that is not an IP", func(s *v1alpha1.ExternalBackendSpec) { s.ClusterIP = "None" },
			"spec.clusterIP: None is not an IP address (for a Service without one, set spec.headless: true)"),
		Entry("a headless backend", func(s *v1alpha1.ExternalBackendSpec) {
			s.ClusterIP, s.Headless = "10.96.200.19", true
		}, "spec.clusterIP: not allowed with spec.externalName or spec.headless"),
	)
})
