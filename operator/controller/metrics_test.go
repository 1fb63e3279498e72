package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/netns"
)

// backendSeries returns the value of every series of the operator's
// registry labelled with the backend, by metric name and (for the
// endpoints gauge) state.
func backendSeries(ns, name string) map[string]float64 {
	GinkgoHelper()
	families, err := crmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	out := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] != ns || labels["name"] != name {
				continue
			}
			key := mf.GetName()
			if s, ok := labels["state"]; ok {
				key += "/" + s
			}
			switch {
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

var _ = Describe("Per-backend metrics", func() {
	It("appear with the backend, follow its endpoints, resolutions and probe failures, and go with it", func() {
		ns := newNamespace()
		// Nothing listens on the namespace's addresses: every probe fails.
		host := netns.NewHost(GinkgoTB())
		name := "metrics.outpost.test"
		dns.SetA(name, 5, host.IPs[1].String())
		xb := backend(ns, "watched", v1alpha1.ExternalBackendSpec{
			Addresses: []string{host.IPs[0].String(), name}, Ports: tcp(5432),
			HealthCheck: &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckTCP, Interval: &metav1.Duration{Duration: time.Second},
				Timeout: &metav1.Duration{Duration: 500 * time.Millisecond}, HealthyThreshold: 1, UnhealthyThreshold: 1},
		})
		before := time.Now()
		Expect(k8s.Create(ctx, xb)).To(Succeed())

		Eventually(func(g Gomega) {
			got := backendSeries(ns, xb.Name)
			g.Expect(got).To(HaveKeyWithValue("outpost_backend_endpoints/total", 2.0))
			g.Expect(got).To(HaveKeyWithValue("outpost_backend_endpoints/ready", 0.0))
			g.Expect(got).To(HaveKeyWithValue("outpost_backend_probe_failures_total", BeNumerically(">=", 2)))
			g.Expect(got).To(HaveKeyWithValue("outpost_backend_last_resolution_timestamp_seconds", BeNumerically(">=", float64(before.Unix()))))
			g.Expect(got).To(HaveKeyWithValue("outpost_backend_resolution_grace_seconds", v1alpha1.DefaultMaxTTL.Seconds()))
		}, timeout, poll).Should(Succeed())

		Expect(k8s.Delete(ctx, xb)).To(Succeed())
		Eventually(func() map[string]float64 { return backendSeries(ns, xb.Name) }, timeout, poll).Should(BeEmpty())
	})

	It("count no endpoints for an alias", func() {
		ns := newNamespace()
		xb := backend(ns, "alias", v1alpha1.ExternalBackendSpec{ExternalName: "db.example.com"})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		// The series are set before the status is written.
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonAliasConfigured)
		Expect(backendSeries(ns, xb.Name)).To(BeEmpty())
		Expect(k8s.Delete(ctx, xb)).To(Succeed())
	})
})

var _ = Describe("Network programming latency", func() {
	// kube-proxy and outpost-syncer measure from this stamp to their rules.
	triggerTime := func(ns, name string) time.Time {
		GinkgoHelper()
		slices := slicesOf(ns, name)
		Expect(slices).To(HaveLen(1))
		raw := slices[0].Annotations[corev1.EndpointsLastChangeTriggerTime]
		at, err := time.Parse(time.RFC3339Nano, raw)
		Expect(err).NotTo(HaveOccurred(), "annotation %s=%q", corev1.EndpointsLastChangeTriggerTime, raw)
		return at
	}

	It("stamps each EndpointSlice written with the time of the change it publishes", func() {
		ns := newNamespace()
		xb := backend(ns, "stamped", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.26.1"}, Ports: tcp(80)})
		created := time.Now()
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		first := triggerTime(ns, xb.Name)
		Expect(first).To(BeTemporally(">=", created))

		changed := time.Now()
		update(xb, func(cur *v1alpha1.ExternalBackend) { cur.Spec.Addresses = []string{"192.168.26.2"} })
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, xb.Name)) }, timeout, poll).
			Should(Equal(map[string]bool{"192.168.26.2": true}))
		Expect(triggerTime(ns, xb.Name)).To(BeTemporally(">=", changed))
	})
})
