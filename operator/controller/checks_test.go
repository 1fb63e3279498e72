package controller_test

import (
	"encoding/pem"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/netns"
)

var _ = Describe("Health checks with several checks", func() {
	var (
		ns   string
		host *netns.Host
	)
	BeforeEach(func() {
		ns = newNamespace()
		host = netns.NewHost(GinkgoTB())
	})

	healthMessage := func(xb *v1alpha1.ExternalBackend) string {
		return meta.FindStatusCondition(xb.Status.Conditions, v1alpha1.ConditionHealthy).Message
	}

	It("verifies HTTPS with the CA bundle of a ConfigMap and follows its rotation", func() {
		a := host.IPs[4]
		host.StartTCP(GinkgoTB(), netip.AddrPortFrom(a, 9901))
		srv := host.StartHTTPS(GinkgoTB(), netip.AddrPortFrom(a, 8443))
		stranger := host.StartHTTPS(GinkgoTB(), netip.AddrPortFrom(host.IPs[5], 8443))
		caOf := func(s *netns.Server) string {
			return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.TLSCert.Raw}))
		}
		xb := backend(ns, "api", v1alpha1.ExternalBackendSpec{
			Addresses: []string{a.String()},
			Ports:     []v1alpha1.BackendPort{{Name: "https", Port: 443, TargetPort: 8443}, {Name: "admin", Port: 9901}},
			HealthCheck: &v1alpha1.HealthCheck{
				Interval: &metav1.Duration{Duration: time.Second}, Timeout: &metav1.Duration{Duration: 500 * time.Millisecond},
				HealthyThreshold: 1, UnhealthyThreshold: 1,
				Checks: []v1alpha1.Check{
					{Type: v1alpha1.HealthCheckTCP, Port: ptr(intstr.FromString("admin"))},
					{Type: v1alpha1.HealthCheckHTTPS, Port: ptr(intstr.FromString("https")),
						TLS: &v1alpha1.TLSCheck{CAConfigMap: &v1alpha1.ConfigMapKey{Name: "api-ca"}}},
				},
			},
		})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionHealthy, v1alpha1.ReasonInvalidHealthCheck)
		Expect(healthMessage(got)).To(Equal("spec.healthCheck.checks[1].tls.caConfigMap: ConfigMap " + ns + "/api-ca not found; create it with the CA bundle under \"ca.crt\""))

		By("creating the ConfigMap with a CA that did not sign the certificate")
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api-ca"}, Data: map[string]string{"ca.crt": caOf(stranger)}}
		Expect(k8s.Create(ctx, cm)).To(Succeed())
		got = eventuallyCondition(xb, v1alpha1.ConditionHealthy, v1alpha1.ReasonUnhealthy)
		Expect(healthMessage(got)).To(ContainSubstring("certificate signed by unknown authority"))
		Expect(addressesOf(slicesOf(ns, "api"))).To(Equal(map[string]bool{a.String(): false}), "the admin port answering is not enough")

		By("rotating the bundle to the CA that signed it, without touching the backend")
		cm.Data["ca.crt"] = caOf(srv)
		Expect(k8s.Update(ctx, cm)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionHealthy, v1alpha1.ReasonAllHealthy)
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "api")) }, timeout, poll).Should(Equal(map[string]bool{a.String(): true}))

		By("pointing the check at a key of the ConfigMap that holds no certificate")
		cm.Data["notes.txt"] = "rotated on Mondays"
		Expect(k8s.Update(ctx, cm)).To(Succeed())
		update(xb, func(xb *v1alpha1.ExternalBackend) { xb.Spec.HealthCheck.Checks[1].TLS.CAConfigMap.Key = "notes.txt" })
		got = eventuallyCondition(xb, v1alpha1.ConditionHealthy, v1alpha1.ReasonInvalidHealthCheck)
		Expect(healthMessage(got)).To(Equal("spec.healthCheck.checks[1].tls.caConfigMap: ConfigMap " + ns + "/api-ca: \"notes.txt\" holds no PEM certificate"))
	})

	It("refuses mixing the single form with checks, and checks missing what their type needs", func() {
		base := func(hc *v1alpha1.HealthCheck) *v1alpha1.ExternalBackend {
			return backend(ns, "bad", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.0.2.1"}, Ports: tcp(53), HealthCheck: hc})
		}
		mixed := base(&v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckHTTP, Checks: []v1alpha1.Check{{Type: v1alpha1.HealthCheckTCP}}})
		Expect(k8s.Create(ctx, mixed)).To(MatchError(ContainSubstring("spec.healthCheck.type, port, path, verifyCertificate: not allowed with spec.healthCheck.checks")))
		noQuery := base(&v1alpha1.HealthCheck{Checks: []v1alpha1.Check{{Type: v1alpha1.HealthCheckDNS}}})
		Expect(k8s.Create(ctx, noQuery)).To(MatchError(ContainSubstring("spec.healthCheck.checks[].dns: required for DNS checks")))
		badPort := base(&v1alpha1.HealthCheck{Checks: []v1alpha1.Check{{Type: v1alpha1.HealthCheckTCP, Port: ptr(intstr.FromInt32(70000))}}})
		Expect(k8s.Create(ctx, badPort)).To(MatchError(ContainSubstring("spec.healthCheck.checks[].port: a number must be in 1-65535")))
		httpOnTCP := base(&v1alpha1.HealthCheck{Checks: []v1alpha1.Check{{Type: v1alpha1.HealthCheckTCP, HTTP: &v1alpha1.HTTPCheck{Path: "/"}}}})
		Expect(k8s.Create(ctx, httpOnTCP)).To(MatchError(ContainSubstring("spec.healthCheck.checks[].http: only allowed for HTTP and HTTPS checks")))

		dnsCheck := base(&v1alpha1.HealthCheck{Checks: []v1alpha1.Check{{Type: v1alpha1.HealthCheckDNS, DNS: &v1alpha1.DNSCheck{Name: "example.com"}}}})
		Expect(k8s.Create(ctx, dnsCheck)).To(Succeed())
		Expect(fresh(dnsCheck).Spec.HealthCheck.Checks[0].DNS.Type).To(Equal(v1alpha1.DefaultDNSQueryType))
	})
})
