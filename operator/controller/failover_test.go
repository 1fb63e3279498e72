package controller_test

import (
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/netns"
)

// zonesOf maps each address of slices to its zone and its hinted zones.
func zonesOf(slices []discoveryv1.EndpointSlice) map[string][]string {
	out := map[string][]string{}
	for _, s := range slices {
		for _, ep := range s.Endpoints {
			zone := []string{""}
			if ep.Zone != nil {
				zone[0] = *ep.Zone
			}
			if ep.Hints != nil {
				for _, z := range ep.Hints.ForZones {
					zone = append(zone, z.Name)
				}
			}
			out[ep.Addresses[0]] = zone
		}
	}
	return out
}

var _ = Describe("Failover between address groups", func() {
	It("publishes the replica only while the primary fails its checks, with each group's zone", func() {
		ns := newNamespace()
		host := netns.NewHost(GinkgoTB())
		primary, replica := host.IPs[0], host.IPs[1]
		srv := host.StartTCP(GinkgoTB(), netip.AddrPortFrom(primary, 5432))
		host.StartTCP(GinkgoTB(), netip.AddrPortFrom(replica, 5432))
		xb := backend(ns, "pg", v1alpha1.ExternalBackendSpec{
			AddressGroups: []v1alpha1.AddressGroup{
				{Priority: 0, Zone: "zone-a", Addresses: []string{primary.String()}},
				{Priority: 1, Zone: "zone-b", Addresses: []string{replica.String()}},
			},
			Ports:               tcp(5432),
			TrafficDistribution: ptr("PreferClose"),
			HealthCheck: &v1alpha1.HealthCheck{Interval: &metav1.Duration{Duration: time.Second},
				Timeout: &metav1.Duration{Duration: 500 * time.Millisecond}, HealthyThreshold: 1, UnhealthyThreshold: 1},
		})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "pg")) }, timeout, poll).
			Should(Equal(map[string]bool{primary.String(): true, replica.String(): false}))
		Expect(zonesOf(slicesOf(ns, "pg"))).To(Equal(map[string][]string{
			primary.String(): {"zone-a", "zone-a"}, replica.String(): {"zone-b", "zone-b"},
		}), "each endpoint has its group's zone, and a hint for it since the Service prefers close endpoints")
		Expect(*service(ns, "pg").Spec.TrafficDistribution).To(Equal("PreferClose"))
		// The slices are written before the status.
		Eventually(func() string {
			if rows := fresh(xb).Status.Endpoints; len(rows) == 2 {
				return rows[1].Reason
			}
			return "status not written yet"
		}, timeout, poll).Should(Equal(v1alpha1.EndpointStandby))

		By("stopping the primary's listener")
		srv.Stop()
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "pg")) }, timeout, poll).
			Should(Equal(map[string]bool{primary.String(): false, replica.String(): true}))
		Eventually(eventReasons(xb), timeout, poll).Should(ContainElement(v1alpha1.EventFailedOver))

		By("starting it again")
		Expect(srv.Start()).To(Succeed())
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "pg")) }, timeout, poll).
			Should(Equal(map[string]bool{primary.String(): true, replica.String(): false}))
		Eventually(eventReasons(xb), timeout, poll).Should(ContainElement(v1alpha1.EventFailedBack))
	})
})
