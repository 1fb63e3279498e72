package controller_test

import (
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/netns"
)

func readyIPs(eps *corev1.Endpoints) (ready, notReady []string) { //nolint:staticcheck
	for _, s := range eps.Subsets {
		for _, a := range s.Addresses {
			ready = append(ready, a.IP)
		}
		for _, a := range s.NotReadyAddresses {
			notReady = append(notReady, a.IP)
		}
	}
	return ready, notReady
}

// Health checks against real listeners in a network namespace the test
// makes: the API server refuses loopback endpoints, so the backends live on
// an on-link documentation range inside the namespace.
var _ = Describe("Health checks", func() {
	var (
		ns   string
		host *netns.Host
	)
	BeforeEach(func() {
		ns = newNamespace()
		host = netns.NewHost(GinkgoTB())
	})

	check := func(t v1alpha1.HealthCheckType, path string) *v1alpha1.HealthCheck {
		return &v1alpha1.HealthCheck{Type: t, Path: path, Interval: &metav1.Duration{Duration: time.Second},
			Timeout: &metav1.Duration{Duration: 500 * time.Millisecond}, HealthyThreshold: 2, UnhealthyThreshold: 2}
	}

	It("turns a TCP backend not ready after the unhealthy threshold and ready after the healthy threshold", func() {
		a, b := host.IPs[0], host.IPs[1]
		srvA := host.StartTCP(GinkgoTB(), netip.AddrPortFrom(a, 5432))
		host.StartTCP(GinkgoTB(), netip.AddrPortFrom(b, 5432))
		xb := backend(ns, "pg", v1alpha1.ExternalBackendSpec{
			Addresses: []string{a.String(), b.String()}, Ports: tcp(5432), HealthCheck: check(v1alpha1.HealthCheckTCP, ""),
		})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		Eventually(func(g Gomega) {
			got := fresh(xb)
			c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionHealthy)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonAllHealthy))
			g.Expect(got.Status.Ready).To(Equal("2/2"))
		}, timeout, poll).Should(Succeed())
		Eventually(func() int64 { return srvA.Hits() }, timeout, poll).Should(BeNumerically(">=", 1), "the operator probes the real listener")

		By("stopping the listener on " + a.String())
		srvA.Stop()
		stopped := time.Now()
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "pg")) }, timeout, poll).
			Should(Equal(map[string]bool{a.String(): false, b.String(): true}))
		// Two failures at a 1s interval: not before ~1s, and soon after 2s.
		Expect(time.Since(stopped)).To(BeNumerically(">", 900*time.Millisecond))
		slice := slicesOf(ns, "pg")[0]
		for _, ep := range slice.Endpoints {
			if ep.Addresses[0] == a.String() {
				Expect(*ep.Conditions.Ready).To(BeFalse())
				Expect(*ep.Conditions.Serving).To(BeFalse())
			}
		}
		Eventually(func() []string { _, nr := readyIPs(endpoints(ns, "pg")); return nr }, timeout, poll).Should(Equal([]string{a.String()}))
		got := eventuallyCondition(xb, v1alpha1.ConditionHealthy, v1alpha1.ReasonUnhealthy)
		Expect(got.Status.Ready).To(Equal("1/2"))
		Expect(got.Status.ReadyEndpoints).To(BeEquivalentTo(1))
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionHealthy).Message).To(ContainSubstring(a.String()))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue(), "one backend is still up")
		Eventually(eventReasons(got), timeout, poll).Should(ContainElement(v1alpha1.EventEndpointsUnhealthy))

		By("starting it again")
		Expect(srvA.Start()).To(Succeed())
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "pg")) }, timeout, poll).
			Should(Equal(map[string]bool{a.String(): true, b.String(): true}))
		Eventually(func() []string { r, _ := readyIPs(endpoints(ns, "pg")); return r }, timeout, poll).Should(ConsistOf(a.String(), b.String()))
		got = eventuallyCondition(xb, v1alpha1.ConditionHealthy, v1alpha1.ReasonAllHealthy)
		Expect(got.Status.Ready).To(Equal("2/2"))
	})

	It("checks HTTP status codes, and reports no ready endpoint when all fail", func() {
		a := host.IPs[2]
		srv := host.StartHTTP(GinkgoTB(), netip.AddrPortFrom(a, 8080))
		xb := backend(ns, "web", v1alpha1.ExternalBackendSpec{
			Addresses: []string{a.String()}, Ports: []v1alpha1.BackendPort{{Port: 80, TargetPort: 8080}}, HealthCheck: check(v1alpha1.HealthCheckHTTP, "/healthz"),
		})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionHealthy, v1alpha1.ReasonAllHealthy)

		srv.SetStatus(503)
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonNoReadyEndpoints)
		Expect(got.Status.Ready).To(Equal("0/1"))
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionHealthy).Message).To(ContainSubstring("503"))
		Expect(addressesOf(slicesOf(ns, "web"))).To(Equal(map[string]bool{a.String(): false}))

		srv.SetStatus(302)
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
	})

	It("probes HTTPS without checking the certificate unless asked", func() {
		a := host.IPs[3]
		host.StartHTTPS(GinkgoTB(), netip.AddrPortFrom(a, 8443))
		hc := check(v1alpha1.HealthCheckHTTPS, "/")
		xb := backend(ns, "tls", v1alpha1.ExternalBackendSpec{Addresses: []string{a.String()}, Ports: tcp(8443), HealthCheck: hc})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionHealthy, v1alpha1.ReasonAllHealthy)

		update(xb, func(cur *v1alpha1.ExternalBackend) { cur.Spec.HealthCheck.VerifyCertificate = ptr(true) })
		got := eventuallyCondition(xb, v1alpha1.ConditionHealthy, v1alpha1.ReasonUnhealthy)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionHealthy).Message).To(ContainSubstring("certificate"))
	})
})
