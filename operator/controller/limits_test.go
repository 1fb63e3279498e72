package controller_test

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// noService waits until the Service of that name is gone (or never came).
func noService(ns, name string) {
	GinkgoHelper()
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Service{}))
	}, timeout, poll).Should(BeTrue(), "Service %s/%s still exists", ns, name)
}

func readyMessage(xb *v1alpha1.ExternalBackend) string {
	return meta.FindStatusCondition(xb.Status.Conditions, v1alpha1.ConditionReady).Message
}

var _ = Describe("Alias targets the address policy denies", func() {
	DescribeTable("get no Service, AliasDenied and an AddressDenied Event",
		func(target, rule string) {
			ns := newNamespace()
			xb := backend(ns, "alias", v1alpha1.ExternalBackendSpec{ExternalName: target})
			Expect(k8s.Create(ctx, xb)).To(Succeed())
			got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonAliasDenied)
			Expect(readyMessage(got)).To(And(ContainSubstring("spec.externalName: "+target), ContainSubstring(rule)))
			Expect(got.Status.ServiceName).To(BeEmpty())
			Eventually(eventNotes(got), timeout, poll).Should(ContainSubstring(v1alpha1.EventAddressDenied + ": no Service is written: spec.externalName: " + target))
			Consistently(func() bool {
				return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "alias"}, &corev1.Service{}))
			}, "1s", poll).Should(BeTrue(), "a Service was written for a denied alias")
		},
		Entry("another namespace's Service", "secret-svc.other-ns.svc.cluster.local", "an alias may only name a Service of its own namespace"),
		Entry("GCP's metadata server", "metadata.google.internal", "--denied-hostnames"),
	)

	It("deletes the Service it wrote when the target turns to a denied one", func() {
		ns := newNamespace()
		xb := backend(ns, "moving", v1alpha1.ExternalBackendSpec{ExternalName: "db.example.com"})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonAliasConfigured)
		Expect(service(ns, "moving").Spec.ExternalName).To(Equal("db.example.com"))

		const target = "kubernetes.default.svc.cluster.local"
		Eventually(func() error {
			cur := &v1alpha1.ExternalBackend{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(xb), cur); err != nil {
				return err
			}
			cur.Spec.ExternalName = target
			return k8s.Update(ctx, cur)
		}, timeout, poll).Should(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonAliasDenied)
		Expect(readyMessage(got)).To(ContainSubstring("spec.externalName: " + target))
		noService(ns, "moving")
		Eventually(eventNotes(got), timeout, poll).Should(ContainSubstring("Deleted: deleted Service moving"))
	})
})

var _ = Describe("The operator's limits", func() {
	It("publishes only the first --max-endpoints-per-backend addresses, in spec order, and says so", func() {
		ns := newNamespace()
		var addrs []string
		for i := range maxEndpoints + 100 {
			addrs = append(addrs, fmtIP(i))
		}
		xb := backend(ns, "huge", v1alpha1.ExternalBackendSpec{Addresses: addrs, Ports: tcp(9100)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonTooManyEndpoints)
		Expect(readyMessage(got)).To(ContainSubstring(fmt.Sprintf("%d distinct addresses, more than the operator's --max-endpoints-per-backend=%d", len(addrs), maxEndpoints)))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		Expect(got.Status.Endpoints).To(HaveLen(maxEndpoints))
		published := addressesOf(slicesOf(ns, "huge"))
		Expect(published).To(HaveLen(maxEndpoints))
		Expect(published).To(HaveKey(addrs[maxEndpoints-1]))
		Expect(published).NotTo(HaveKey(addrs[maxEndpoints]))
		Eventually(eventReasons(got), timeout, poll).Should(ContainElement(v1alpha1.EventTooManyEndpoints))
	})

	It("refuses a backend whose endpoints times ports pass --max-endpoint-ports, naming both numbers", func() {
		ns := newNamespace()
		var addrs []string
		for i := range 1700 {
			addrs = append(addrs, fmtIP(i))
		}
		var ports []v1alpha1.BackendPort
		for i := range 6 {
			ports = append(ports, v1alpha1.BackendPort{Name: fmt.Sprintf("p%d", i), Port: int32(8000 + i)})
		}
		xb := backend(ns, "wide", v1alpha1.ExternalBackendSpec{Addresses: addrs, Ports: ports})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonTooManyEndpointPorts)
		Expect(readyMessage(got)).To(ContainSubstring("1700 endpoints x 6 ports = 10200 endpoint ports, more than the operator's --max-endpoint-ports=10000"))
		noService(ns, "wide")
		Expect(slicesOf(ns, "wide")).To(BeEmpty())

		By("dropping a port, it fits and is published")
		Eventually(func() error {
			cur := &v1alpha1.ExternalBackend{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(xb), cur); err != nil {
				return err
			}
			cur.Spec.Ports = ports[:5]
			return k8s.Update(ctx, cur)
		}, timeout, poll).Should(Succeed())
		got = eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.Ready).To(Equal("1700/1700"))
		expectOwnedBy(service(ns, "wide"), got)
	})
})
