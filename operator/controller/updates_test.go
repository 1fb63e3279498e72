package controller_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// update re-reads xb and applies change until the write goes through.
func update(xb *v1alpha1.ExternalBackend, change func(*v1alpha1.ExternalBackend)) {
	GinkgoHelper()
	Eventually(func() error {
		cur := &v1alpha1.ExternalBackend{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(xb), cur); err != nil {
			return err
		}
		change(cur)
		return k8s.Update(ctx, cur)
	}, timeout, poll).Should(Succeed())
}

// counterSum adds up a counter family of the operator's metrics registry,
// optionally restricted to one label value.
func counterSum(name, label, value string) float64 {
	GinkgoHelper()
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			if label == "" || hasLabel(m, label, value) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.Label {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func resourceVersions(ns, name string) map[string]string {
	GinkgoHelper()
	out := map[string]string{"Service": service(ns, name).ResourceVersion, "Endpoints": endpoints(ns, name).ResourceVersion}
	for _, s := range slicesOf(ns, name) {
		out[s.Name] = s.ResourceVersion
	}
	return out
}

var _ = Describe("Updates", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("follows added and removed addresses and changed ports", func() {
		xb := backend(ns, "moving", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.20.1", "192.168.20.2"}, Ports: tcp(80)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)

		update(xb, func(cur *v1alpha1.ExternalBackend) {
			cur.Spec.Addresses = []string{"192.168.20.2", "192.168.20.3", "2001:db8::20"}
			cur.Spec.Ports = []v1alpha1.BackendPort{{Name: "http", Port: 8080, TargetPort: 80}, {Name: "https", Port: 8443, TargetPort: 443}}
		})
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.Ready).To(Equal("3/3"))
		Expect(addressesOf(slicesOf(ns, "moving"))).To(Equal(map[string]bool{"192.168.20.2": true, "192.168.20.3": true, "2001:db8::20": true}))
		Expect(sliceNames(ns, "moving")).To(Equal([]string{"moving-ipv4", "moving-ipv6"}))
		svc := service(ns, "moving")
		Expect(svc.Spec.Ports).To(HaveLen(2))
		Expect(svc.Spec.Ports[0].Port).To(BeEquivalentTo(8080))
		Expect(svc.Spec.Ports[1].TargetPort).To(Equal(intstr.FromInt32(443)))
		eps := endpoints(ns, "moving")
		Expect(eps.Subsets[0].Addresses).To(HaveLen(3))
		Expect(eps.Subsets[0].Ports).To(HaveLen(2))

		By("dropping the IPv6 address, its slice goes away")
		update(xb, func(cur *v1alpha1.ExternalBackend) { cur.Spec.Addresses = []string{"192.168.20.3"} })
		Eventually(func() []string { return sliceNames(ns, "moving") }, timeout, poll).Should(Equal([]string{"moving-ipv4"}))
		Expect(addressesOf(slicesOf(ns, "moving"))).To(Equal(map[string]bool{"192.168.20.3": true}))
	})

	It("switches between static and alias mode without leaving anything behind", func() {
		xb := backend(ns, "switch", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.21.1"}, Ports: tcp(5432)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)

		By("static -> alias")
		update(xb, func(cur *v1alpha1.ExternalBackend) {
			cur.Spec.Addresses = nil
			cur.Spec.ExternalName = "db.example.com"
		})
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonAliasConfigured)
		Expect(got.Status.Mode).To(Equal(v1alpha1.ModeAlias))
		svc := service(ns, "switch")
		Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeExternalName))
		Expect(svc.Spec.ExternalName).To(Equal("db.example.com"))
		Expect(svc.Spec.ClusterIP).To(BeEmpty())
		expectOwnedBy(svc, got)
		Eventually(func() []string { return sliceNames(ns, "switch") }, timeout, poll).Should(BeEmpty())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "switch"}, &corev1.Endpoints{})) //nolint:staticcheck
		}, timeout, poll).Should(BeTrue())

		By("alias -> static")
		update(xb, func(cur *v1alpha1.ExternalBackend) {
			cur.Spec.ExternalName = ""
			cur.Spec.Addresses = []string{"192.168.21.2"}
		})
		got = eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.Mode).To(Equal(v1alpha1.ModeStatic))
		svc = service(ns, "switch")
		Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
		Expect(svc.Spec.ExternalName).To(BeEmpty())
		Expect(svc.Spec.ClusterIP).To(MatchRegexp(`^10\.96\.`))
		Expect(addressesOf(slicesOf(ns, "switch"))).To(Equal(map[string]bool{"192.168.21.2": true}))
		Expect(endpoints(ns, "switch").Subsets[0].Addresses[0].IP).To(Equal("192.168.21.2"))
	})

	It("recreates the Service when headless changes, since clusterIP is immutable", func() {
		xb := backend(ns, "flip", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.22.1"}, Ports: tcp(80)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(service(ns, "flip").Spec.ClusterIP).NotTo(Equal(corev1.ClusterIPNone))

		update(xb, func(cur *v1alpha1.ExternalBackend) { cur.Spec.Headless = true })
		// The Service is deleted and created again, so it may be missing for a moment.
		Eventually(func() string {
			svc := &corev1.Service{}
			_ = k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flip"}, svc)
			return svc.Spec.ClusterIP
		}, timeout, poll).Should(Equal(corev1.ClusterIPNone))
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
	})

	It("puts back a child that someone else edited or deleted", func() {
		xb := backend(ns, "drift", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.23.1"}, Ports: tcp(80)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)

		slice := slicesOf(ns, "drift")[0]
		slice.Endpoints[0].Addresses = []string{"192.168.66.6"}
		Expect(k8s.Update(ctx, &slice)).To(Succeed())
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "drift")) }, timeout, poll).
			Should(Equal(map[string]bool{"192.168.23.1": true}))

		Expect(k8s.Delete(ctx, endpoints(ns, "drift"))).To(Succeed())
		Eventually(func() error {
			return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "drift"}, &corev1.Endpoints{}) //nolint:staticcheck
		}, timeout, poll).Should(Succeed())
	})

	It("makes zero writes when a steady ExternalBackend is reconciled again", func() {
		xb := backend(ns, "steady", v1alpha1.ExternalBackendSpec{
			Addresses:       []string{"192.168.24.1", "192.168.24.2", "2001:db8::24"},
			Ports:           []v1alpha1.BackendPort{{Name: "a", Port: 80}, {Name: "b", Port: 81, TargetPort: 8081, Protocol: corev1.ProtocolUDP}},
			ServiceMetadata: &v1alpha1.ServiceMetadata{Labels: map[string]string{"team": "db"}, Annotations: map[string]string{"note": "steady"}},
			SessionAffinity: corev1.ServiceAffinityClientIP,
		})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		// Let the reconciles triggered by our own writes settle.
		Eventually(func() map[string]string { return resourceVersions(ns, "steady") }, timeout, poll).
			Should(And(HaveKey("steady-ipv4"), HaveKey("steady-ipv6")))
		before := resourceVersions(ns, "steady")
		xbBefore := &v1alpha1.ExternalBackend{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(xb), xbBefore)).To(Succeed())
		reconciles := counterSum("controller_runtime_reconcile_total", "controller", "externalbackend")

		By("touching an annotation: a reconcile with nothing to change")
		update(xb, func(cur *v1alpha1.ExternalBackend) {
			if cur.Annotations == nil {
				cur.Annotations = map[string]string{}
			}
			cur.Annotations["touched"] = "yes"
		})
		Eventually(func() float64 {
			return counterSum("controller_runtime_reconcile_total", "controller", "externalbackend")
		}, timeout, poll).Should(BeNumerically(">", reconciles))
		Consistently(func() map[string]string { return resourceVersions(ns, "steady") }, "2s", poll).Should(Equal(before))

		after := &v1alpha1.ExternalBackend{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(xb), after)).To(Succeed())
		Expect(after.Status).To(Equal(xbBefore.Status), "status must not be rewritten")
	})
})
