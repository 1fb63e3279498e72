package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
)

func resolution(minTTL, maxTTL string, families ...v1alpha1.IPFamily) *v1alpha1.Resolution {
	min, err := time.ParseDuration(minTTL)
	Expect(err).NotTo(HaveOccurred())
	max, err := time.ParseDuration(maxTTL)
	Expect(err).NotTo(HaveOccurred())
	return &v1alpha1.Resolution{IPFamilies: families, MinTTL: &metav1.Duration{Duration: min}, MaxTTL: &metav1.Duration{Duration: max}}
}

func fresh(xb *v1alpha1.ExternalBackend) *v1alpha1.ExternalBackend {
	GinkgoHelper()
	got := &v1alpha1.ExternalBackend{}
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(xb), got)).To(Succeed())
	return got
}

// DNS names in spec.addresses, answered by the test's own DNS server.
var _ = Describe("DNS names", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("follows an RDS-style failover within the record's TTL", func() {
		name := ns + ".mydb.abc.rds.example.com"
		dns.SetA(name, 5, "198.51.100.10")
		xb := backend(ns, "rds", v1alpha1.ExternalBackendSpec{Addresses: []string{name}, Ports: tcp(5432)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.Mode).To(Equal(v1alpha1.ModeResolved))
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionResolved).Reason).To(Equal(v1alpha1.ReasonNamesResolved))
		Expect(got.Status.Endpoints).To(HaveLen(1))
		row := got.Status.Endpoints[0]
		Expect(row.Address).To(Equal("198.51.100.10"))
		Expect(row.Host).To(Equal(name))
		Expect(row.Expires).NotTo(BeNil())
		Expect(row.Expires.Time).To(BeTemporally("~", time.Now().Add(5*time.Second), 6*time.Second))
		Expect(addressesOf(slicesOf(ns, "rds"))).To(Equal(map[string]bool{"198.51.100.10": true}))
		Expect(endpoints(ns, "rds").Subsets[0].Addresses[0].IP).To(Equal("198.51.100.10"))

		By("failing over: the A record moves to another address")
		dns.SetA(name, 5, "198.51.100.11")
		changed := time.Now()
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "rds")) }, 10*time.Second, poll).
			Should(Equal(map[string]bool{"198.51.100.11": true}))
		Expect(time.Since(changed)).To(BeNumerically("<", 7*time.Second), "the slices must follow within TTL + 2s")
		Eventually(func() string { return endpoints(ns, "rds").Subsets[0].Addresses[0].IP }, timeout, poll).Should(Equal("198.51.100.11"))
		Eventually(eventNotes(got), timeout, poll).Should(And(
			ContainSubstring("AddressesChanged"), ContainSubstring("added [198.51.100.11 ("+name+")]"),
			ContainSubstring("removed [198.51.100.10 ("+name+")]")))
	})

	It("resolves AAAA records when asked for IPv6, and both families together", func() {
		v6 := ns + ".v6.example.com"
		dual := ns + ".dual.example.com"
		dns.SetAAAA(v6, 30, "2001:db8::10", "2001:db8::11")
		dns.SetA(dual, 30, "203.0.113.30")
		dns.SetAAAA(dual, 30, "2001:db8::30")
		six := backend(ns, "six", v1alpha1.ExternalBackendSpec{Addresses: []string{v6}, Ports: tcp(443), Resolution: resolution("5s", "30m", v1alpha1.IPv6)})
		both := backend(ns, "both", v1alpha1.ExternalBackendSpec{Addresses: []string{dual}, Ports: tcp(443), Resolution: resolution("5s", "30m", v1alpha1.IPv4, v1alpha1.IPv6)})
		Expect(k8s.Create(ctx, six)).To(Succeed())
		Expect(k8s.Create(ctx, both)).To(Succeed())
		eventuallyCondition(six, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		eventuallyCondition(both, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)

		s := slicesOf(ns, "six")
		Expect(s).To(HaveLen(1))
		Expect(s[0].AddressType).To(Equal(discoveryv1.AddressTypeIPv6))
		Expect(addressesOf(s)).To(Equal(map[string]bool{"2001:db8::10": true, "2001:db8::11": true}))
		Expect(service(ns, "six").Spec.ClusterIPs).To(ConsistOf(MatchRegexp(`^fd00:10:96::`)))

		Expect(sliceNames(ns, "both")).To(Equal([]string{"both-ipv4", "both-ipv6"}))
		Expect(addressesOf(slicesOf(ns, "both"))).To(Equal(map[string]bool{"203.0.113.30": true, "2001:db8::30": true}))
		Expect(service(ns, "both").Spec.ClusterIPs).To(HaveLen(2))
	})

	It("follows a CNAME chain to its addresses", func() {
		alias, mid, target := ns+".partner-api.example.com", ns+".edge.example.net", ns+".origin.example.org"
		dns.SetCNAME(alias, 60, mid)
		dns.SetCNAME(mid, 60, target)
		dns.SetA(target, 60, "203.0.113.40", "203.0.113.41")
		xb := backend(ns, "partner", v1alpha1.ExternalBackendSpec{Addresses: []string{alias}, Ports: tcp(443)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.Ready).To(Equal("2/2"))
		for _, row := range got.Status.Endpoints {
			Expect(row.Host).To(Equal(alias))
		}
		Expect(addressesOf(slicesOf(ns, "partner"))).To(Equal(map[string]bool{"203.0.113.40": true, "203.0.113.41": true}))
	})

	It("keeps the last known addresses for one more maxTTL when the resolver fails, then drops them", func() {
		name := ns + ".flaky.example.com"
		dns.SetA(name, 1, "198.51.100.50")
		xb := backend(ns, "flaky", v1alpha1.ExternalBackendSpec{Addresses: []string{name, "192.168.50.1"}, Ports: tcp(80), Resolution: resolution("1s", "4s")})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		// Ready may come from the static address alone, before the
		// first answer is published.
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "flaky")) }, timeout, poll).
			Should(HaveKey("198.51.100.50"))

		dns.Fail(name, dnsserver.ServFail)
		failed := time.Now()
		got := eventuallyCondition(xb, v1alpha1.ConditionResolved, "ServerFailure")
		msg := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionResolved).Message
		Expect(msg).To(ContainSubstring(name))
		Expect(msg).To(ContainSubstring("keeping 1 last known address(es)"))
		Expect(addressesOf(slicesOf(ns, "flaky"))).To(HaveKey("198.51.100.50"), "kept during the grace")

		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "flaky")) }, 15*time.Second, poll).
			Should(Equal(map[string]bool{"192.168.50.1": true}))
		Expect(time.Since(failed)).To(BeNumerically(">=", 3*time.Second), "dropped before the grace of one maxTTL ended")
		Expect(meta.FindStatusCondition(fresh(xb).Status.Conditions, v1alpha1.ConditionResolved).Status).To(Equal(metav1.ConditionFalse))

		By("the name answering again brings its address back")
		dns.Fail(name, dnsserver.None)
		Eventually(func() map[string]bool { return addressesOf(slicesOf(ns, "flaky")) }, 15*time.Second, poll).
			Should(HaveKey("198.51.100.50"))
		eventuallyCondition(xb, v1alpha1.ConditionResolved, v1alpha1.ReasonNamesResolved)
	})

	It("reports NXDOMAIN and a name still waiting for its first answer", func() {
		missing := ns + ".missing.example.com"
		xb := backend(ns, "missing", v1alpha1.ExternalBackendSpec{Addresses: []string{missing}, Ports: tcp(80)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionResolved, "NameNotFound")
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionResolved).Message).To(ContainSubstring(missing))
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Reason).To(Equal(v1alpha1.ReasonNoReadyEndpoints))
	})

	It("drops an address when the name rebinds into a denied range", func() {
		name := ns + ".rebind.example.com"
		dns.SetA(name, 1, "198.51.100.60")
		xb := backend(ns, "rebind", v1alpha1.ExternalBackendSpec{Addresses: []string{name}, Ports: tcp(80), Resolution: resolution("1s", "30m")})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)

		dns.SetA(name, 1, "169.254.169.254", "10.96.0.1")
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonAddressesDenied)
		Expect(slicesOf(ns, "rebind")[0].Endpoints).To(BeEmpty())
		denied := map[string]string{}
		for _, row := range got.Status.Endpoints {
			Expect(row.Reason).To(Equal(v1alpha1.EndpointDenied))
			Expect(row.Host).To(Equal(name))
			denied[row.Address] = row.Message
		}
		Expect(denied).To(HaveKeyWithValue("169.254.169.254", ContainSubstring("cloud metadata address")))
		Expect(denied).To(HaveKeyWithValue("10.96.0.1", ContainSubstring("--service-cidr")))
		Eventually(eventNotes(got), timeout, poll).Should(ContainSubstring("169.254.169.254 is a cloud metadata address"))
	})
})
