package controller_test

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/status"
)

var _ = Describe("Reliability", func() {
	It("keeps the Service's primary IP family when spec.addresses is reordered", func() {
		ns := newNamespace()
		xb := backend(ns, "dual", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.0.2.1", "2001:db8::1"}, Ports: tcp(80)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(service(ns, "dual").Spec.IPFamilies).To(Equal([]corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}))

		update(xb, func(cur *v1alpha1.ExternalBackend) {
			cur.Spec.Addresses = []string{"2001:db8::1", "192.0.2.1", "2001:db8::2"}
		})
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.ReadyEndpoints).To(BeEquivalentTo(3))
		Expect(service(ns, "dual").Spec.IPFamilies).To(Equal([]corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}))
	})

	It("gives IPv4-only backends an IPv4 ClusterIP", func() {
		ns := newNamespace()
		xb := backend(ns, "v4", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.0.2.1"}, Ports: tcp(80)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		svc := service(ns, "v4")
		Expect(svc.Spec.IPFamilies).To(Equal([]corev1.IPFamily{corev1.IPv4Protocol}))
		Expect(svc.Spec.ClusterIP).To(ContainSubstring("."))
	})

	// As many addresses as the suite's --max-endpoints-per-backend lets
	// through (the CRD allows 4000; operator/status covers 4000 failing and
	// 4000 denied without the API server).
	It("reports thousands of denied addresses within the API's limits", func() {
		ns := newNamespace()
		var addrs []string
		for i := range maxEndpoints {
			addrs = append(addrs, fmt.Sprintf("127.1.%d.%d", i/256, i%256))
		}
		xb := backend(ns, "many", v1alpha1.ExternalBackendSpec{Addresses: addrs, Ports: tcp(80)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonAddressesDenied)
		Expect(got.Status.Endpoints).To(HaveLen(maxEndpoints))
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring(fmt.Sprintf("all %d addresses are denied", maxEndpoints)))

		var note string
		Eventually(func(g Gomega) {
			list := &eventsv1.EventList{}
			g.Expect(k8s.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			for _, e := range list.Items {
				if e.Regarding.Name == xb.Name && e.Reason == v1alpha1.EventAddressDenied {
					note = e.Note
				}
			}
			g.Expect(note).NotTo(BeEmpty(), "no AddressDenied Event")
		}, timeout, poll).Should(Succeed())
		Expect(len(note)).To(BeNumerically("<=", status.MaxEventNote))
		Expect(note).To(HavePrefix(fmt.Sprintf("%d address(es) left out by the address policy: 127.1.0.0", maxEndpoints)))
		Expect(strings.HasSuffix(note, " more")).To(BeTrue(), "note %q ends without …and N more", note)
	})
})
