package controller_test

import (
	"fmt"
	"maps"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
)

// The user stories of the README, applied from config/samples/ as a user would.
var _ = Describe("User stories from config/samples", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("1: svc1 maps two named ports of one machine", func() {
		xb := loadSample("outpost_v1alpha1_externalbackend_svc1.yaml", ns)
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)

		Expect(got.Status.Mode).To(Equal(v1alpha1.ModeStatic))
		Expect(got.Status.ServiceName).To(Equal("svc1"))
		Expect(got.Status.ReadyEndpoints).To(BeEquivalentTo(1))
		Expect(got.Status.TotalEndpoints).To(BeEquivalentTo(1))
		Expect(got.Status.Ready).To(Equal("1/1"))
		Expect(got.Status.Endpoints).To(Equal([]v1alpha1.EndpointStatus{{Address: "192.168.1.2", Ready: true}}))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionResolved)).To(BeTrue())
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionHealthy)).To(BeTrue())

		svc := service(ns, "svc1")
		expectOwnedBy(svc, got)
		Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
		Expect(svc.Spec.Selector).To(BeEmpty())
		Expect(svc.Spec.ClusterIP).NotTo(BeEmpty())
		Expect(svc.Spec.ClusterIP).NotTo(Equal(corev1.ClusterIPNone))
		Expect(svc.Spec.Ports).To(HaveLen(2))
		Expect(svc.Spec.Ports[0]).To(MatchFields(IgnoreExtras, Fields{
			"Name": Equal("port7064"), "Port": BeEquivalentTo(7064), "TargetPort": Equal(intstr.FromInt32(31496)), "Protocol": Equal(corev1.ProtocolTCP),
		}))
		Expect(svc.Spec.Ports[1]).To(MatchFields(IgnoreExtras, Fields{
			"Name": Equal("port7164"), "Port": BeEquivalentTo(7164), "TargetPort": Equal(intstr.FromInt32(31337)), "Protocol": Equal(corev1.ProtocolTCP),
		}))

		slices := slicesOf(ns, "svc1")
		Expect(slices).To(HaveLen(1))
		s := slices[0]
		expectOwnedBy(&s, got)
		Expect(s.Name).To(Equal("svc1-ipv4"))
		Expect(s.AddressType).To(Equal(discoveryv1.AddressTypeIPv4))
		Expect(s.Labels).To(HaveKeyWithValue(discoveryv1.LabelServiceName, "svc1"))
		Expect(s.Labels).To(HaveKeyWithValue(discoveryv1.LabelManagedBy, "outpost.dev"))
		Expect(s.Ports).To(HaveLen(2))
		Expect(*s.Ports[0].Name).To(Equal("port7064"))
		Expect(*s.Ports[0].Port).To(BeEquivalentTo(31496))
		Expect(*s.Ports[1].Name).To(Equal("port7164"))
		Expect(*s.Ports[1].Port).To(BeEquivalentTo(31337))
		Expect(s.Endpoints).To(HaveLen(1))
		Expect(s.Endpoints[0].Addresses).To(Equal([]string{"192.168.1.2"}))
		Expect(*s.Endpoints[0].Conditions.Ready).To(BeTrue())
		Expect(*s.Endpoints[0].Conditions.Serving).To(BeTrue())
		Expect(*s.Endpoints[0].Conditions.Terminating).To(BeFalse())

		eps := endpoints(ns, "svc1")
		expectOwnedBy(eps, got)
		Expect(eps.Labels).To(HaveKeyWithValue(discoveryv1.LabelSkipMirror, "true"))
		Expect(eps.Subsets).To(HaveLen(1))
		Expect(eps.Subsets[0].Addresses).To(HaveLen(1))
		Expect(eps.Subsets[0].Addresses[0].IP).To(Equal("192.168.1.2"))
		Expect(eps.Subsets[0].NotReadyAddresses).To(BeEmpty())
		Expect(eps.Subsets[0].Ports).To(ConsistOf(
			corev1.EndpointPort{Name: "port7064", Port: 31496, Protocol: corev1.ProtocolTCP},
			corev1.EndpointPort{Name: "port7164", Port: 31337, Protocol: corev1.ProtocolTCP},
		))

		Eventually(eventReasons(got), timeout, poll).Should(ContainElement(v1alpha1.EventCreated))
	})

	It("2: rocketmq carries Prometheus annotations and labels on Service, slices and Endpoints", func() {
		xb := loadSample("outpost_v1alpha1_externalbackend_rocketmq.yaml", ns)
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.Ready).To(Equal("3/3"))

		wantAnnotations := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9100", "prometheus.io/path": "/metrics"}
		svc := service(ns, "rocketmq")
		eps := endpoints(ns, "rocketmq")
		slices := slicesOf(ns, "rocketmq")
		Expect(slices).To(HaveLen(1))
		for _, obj := range []client.Object{svc, eps, &slices[0]} {
			annotations := maps.Clone(obj.GetAnnotations())
			// Every slice written carries its change time (metrics_test.go).
			delete(annotations, corev1.EndpointsLastChangeTriggerTime)
			Expect(annotations).To(Equal(wantAnnotations), "%T", obj)
			Expect(obj.GetLabels()).To(HaveKeyWithValue("app", "rocketmq"), "%T", obj)
			Expect(obj.GetLabels()).To(HaveKeyWithValue("type", "ec2"), "%T", obj)
		}
		Expect(svc.Spec.Ports).To(HaveLen(1))
		Expect(svc.Spec.Ports[0].Name).To(BeEmpty())
		Expect(svc.Spec.Ports[0].Port).To(BeEquivalentTo(9100))
		Expect(addressesOf(slices)).To(Equal(map[string]bool{"192.168.1.2": true, "192.168.1.3": true, "192.168.1.4": true}))
		var ips []string
		for _, a := range eps.Subsets[0].Addresses {
			ips = append(ips, a.IP)
		}
		Expect(ips).To(Equal([]string{"192.168.1.2", "192.168.1.3", "192.168.1.4"}))
		Expect(eps.Subsets[0].Ports).To(Equal([]corev1.EndpointPort{{Port: 9100, Protocol: corev1.ProtocolTCP}}))
	})

	for _, alias := range []struct{ file, name, target string }{
		{"outpost_v1alpha1_externalbackend_testdb.yaml", "testdb", "test.ap-northeast-1.rds.amazonaws.com"},
		{"outpost_v1alpha1_externalbackend_api-partner.yaml", "api-partner", "api.partner.com"},
	} {
		It("3/6: "+alias.name+" is an ExternalName Service and nothing else", func() {
			xb := loadSample(alias.file, ns)
			Expect(k8s.Create(ctx, xb)).To(Succeed())
			got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonAliasConfigured)
			Expect(got.Status.Mode).To(Equal(v1alpha1.ModeAlias))
			Expect(got.Status.ServiceName).To(Equal(alias.name))

			svc := service(ns, alias.name)
			expectOwnedBy(svc, got)
			Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeExternalName))
			Expect(svc.Spec.ExternalName).To(Equal(alias.target))
			Expect(svc.Spec.ClusterIP).To(BeEmpty())
			Expect(slicesOf(ns, alias.name)).To(BeEmpty())
			err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: alias.name}, &corev1.Endpoints{}) //nolint:staticcheck
			Expect(apierrors.IsNotFound(err)).To(BeTrue())
		})
	}

	It("4: external-service-1 maps visit-port 9999->80 and test-port 8888->443 on two machines", func() {
		xb := loadSample("outpost_v1alpha1_externalbackend_external-service-1.yaml", ns)
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.Ready).To(Equal("2/2"))

		svc := service(ns, "external-service-1")
		Expect(svc.Spec.Ports).To(HaveLen(2))
		Expect(svc.Spec.Ports[0].Name).To(Equal("visit-port"))
		Expect(svc.Spec.Ports[0].Port).To(BeEquivalentTo(9999))
		Expect(svc.Spec.Ports[0].TargetPort).To(Equal(intstr.FromInt32(80)))
		Expect(svc.Spec.Ports[1].Name).To(Equal("test-port"))
		Expect(svc.Spec.Ports[1].Port).To(BeEquivalentTo(8888))
		Expect(svc.Spec.Ports[1].TargetPort).To(Equal(intstr.FromInt32(443)))

		eps := endpoints(ns, "external-service-1")
		Expect(eps.Subsets[0].Ports).To(ConsistOf(
			corev1.EndpointPort{Name: "visit-port", Port: 80, Protocol: corev1.ProtocolTCP},
			corev1.EndpointPort{Name: "test-port", Port: 443, Protocol: corev1.ProtocolTCP},
		))
		Expect(addressesOf(slicesOf(ns, "external-service-1"))).To(Equal(map[string]bool{"203.0.113.21": true, "203.0.113.22": true}))
	})

	It("5: db gets a ClusterIP that forwards to 203.0.113.10:3306", func() {
		xb := loadSample("outpost_v1alpha1_externalbackend_db.yaml", ns)
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		svc := service(ns, "db")
		Expect(svc.Spec.ClusterIP).To(MatchRegexp(`^10\.96\.`))
		Expect(svc.Spec.Ports[0].TargetPort).To(Equal(intstr.FromInt32(3306)))
		slices := slicesOf(ns, "db")
		Expect(slices).To(HaveLen(1))
		Expect(*slices[0].Ports[0].Port).To(BeEquivalentTo(3306))
		Expect(*slices[0].Ports[0].Name).To(BeEmpty())
		Expect(addressesOf(slices)).To(Equal(map[string]bool{"203.0.113.10": true}))
	})
})

var _ = Describe("Service types", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("passes headless, NodePort, LoadBalancer and session affinity through", func() {
		headless := backend(ns, "headless", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.7.1", "192.168.7.2"}, Ports: tcp(80), Headless: true})
		nodePort := backend(ns, "nodeport", v1alpha1.ExternalBackendSpec{
			Addresses: []string{"192.168.7.3"}, ServiceType: corev1.ServiceTypeNodePort, SessionAffinity: corev1.ServiceAffinityClientIP,
			Ports: []v1alpha1.BackendPort{{Name: "http", Port: 80, TargetPort: 8080, NodePort: 30080}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}},
		})
		lb := backend(ns, "lb", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.7.4"}, ServiceType: corev1.ServiceTypeLoadBalancer, Ports: []v1alpha1.BackendPort{{Port: 443, AppProtocol: ptr("https")}}})
		for _, xb := range []*v1alpha1.ExternalBackend{headless, nodePort, lb} {
			Expect(k8s.Create(ctx, xb)).To(Succeed())
			eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		}

		Expect(service(ns, "headless").Spec.ClusterIP).To(Equal(corev1.ClusterIPNone))
		Expect(addressesOf(slicesOf(ns, "headless"))).To(HaveLen(2))

		np := service(ns, "nodeport")
		Expect(np.Spec.Type).To(Equal(corev1.ServiceTypeNodePort))
		Expect(np.Spec.SessionAffinity).To(Equal(corev1.ServiceAffinityClientIP))
		Expect(np.Spec.Ports[0].NodePort).To(BeEquivalentTo(30080))
		Expect(np.Spec.Ports[1].NodePort).NotTo(BeZero(), "allocated by the API server")
		Expect(np.Spec.Ports[1].Protocol).To(Equal(corev1.ProtocolUDP))
		npSlice := slicesOf(ns, "nodeport")[0]
		Expect(*npSlice.Ports[1].Protocol).To(Equal(corev1.ProtocolUDP))
		Expect(*npSlice.Ports[1].Port).To(BeEquivalentTo(53))

		l := service(ns, "lb")
		Expect(l.Spec.Type).To(Equal(corev1.ServiceTypeLoadBalancer))
		Expect(*l.Spec.Ports[0].AppProtocol).To(Equal("https"))
		Expect(*slicesOf(ns, "lb")[0].Ports[0].AppProtocol).To(Equal("https"))
	})

	It("gives dual-stack backends one slice per family and a dual-stack Service", func() {
		xb := backend(ns, "dual", v1alpha1.ExternalBackendSpec{Addresses: []string{"2001:db8::5", "203.0.113.5", "2001:db8::6"}, Ports: tcp(443)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.Ready).To(Equal("3/3"))

		Expect(sliceNames(ns, "dual")).To(Equal([]string{"dual-ipv4", "dual-ipv6"}))
		s := slicesOf(ns, "dual")
		Expect(s[0].AddressType).To(Equal(discoveryv1.AddressTypeIPv4))
		Expect(addressesOf(s[:1])).To(Equal(map[string]bool{"203.0.113.5": true}))
		Expect(s[1].AddressType).To(Equal(discoveryv1.AddressTypeIPv6))
		Expect(addressesOf(s[1:])).To(Equal(map[string]bool{"2001:db8::5": true, "2001:db8::6": true}))

		svc := service(ns, "dual")
		Expect(*svc.Spec.IPFamilyPolicy).To(Equal(corev1.IPFamilyPolicyPreferDualStack))
		Expect(svc.Spec.IPFamilies).To(Equal([]corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}))
		Expect(svc.Spec.ClusterIPs).To(HaveLen(2))
	})

	It("splits 2500 addresses into slices of 1000 and truncates legacy Endpoints like the endpoints controller", func() {
		var addrs []string
		for i := range 2500 {
			addrs = append(addrs, fmtIP(i))
		}
		xb := backend(ns, "many", v1alpha1.ExternalBackendSpec{Addresses: addrs, Ports: tcp(9100)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.Ready).To(Equal("2500/2500"))

		slices := slicesOf(ns, "many")
		Expect(sliceNames(ns, "many")).To(Equal([]string{"many-ipv4", "many-ipv4-2", "many-ipv4-3"}))
		Expect(slices[0].Endpoints).To(HaveLen(1000))
		Expect(slices[1].Endpoints).To(HaveLen(1000))
		Expect(slices[2].Endpoints).To(HaveLen(500))
		Expect(addressesOf(slices)).To(HaveLen(2500))

		eps := endpoints(ns, "many")
		Expect(eps.Subsets[0].Addresses).To(HaveLen(1000))
		Expect(eps.Annotations).To(HaveKeyWithValue(desired.OverCapacityAnnotation, "truncated"))

		By("shrinking to 1500 addresses, the third slice goes away")
		Eventually(func() error {
			cur := &v1alpha1.ExternalBackend{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(xb), cur); err != nil {
				return err
			}
			cur.Spec.Addresses = addrs[:1500]
			return k8s.Update(ctx, cur)
		}, timeout, poll).Should(Succeed())
		Eventually(func() []string { return sliceNames(ns, "many") }, timeout, poll).Should(Equal([]string{"many-ipv4", "many-ipv4-2"}))
		Expect(addressesOf(slicesOf(ns, "many"))).To(HaveLen(1500))
	})
})

// fmtIP returns the i-th of up to 64000 private addresses: 192.168.(i/250).(i%250+1).
func fmtIP(i int) string {
	return fmt.Sprintf("192.168.%d.%d", i/250, i%250+1)
}

func itoa(i int32) string { return fmt.Sprint(i) }

var _ = Describe("Deletion", func() {
	It("removes everything the ExternalBackend generated", func() {
		ns := newNamespace()
		xb := backend(ns, "gone", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.9.1", "2001:db8::9"}, Ports: tcp(80)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(slicesOf(ns, "gone")).To(HaveLen(2))

		Expect(k8s.Delete(ctx, xb)).To(Succeed())
		// envtest runs no garbage collector: the operator itself must clean up.
		Eventually(func() bool {
			err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gone"}, &corev1.Service{})
			return apierrors.IsNotFound(err)
		}, timeout, poll).Should(BeTrue())
		Eventually(func() []string { return sliceNames(ns, "gone") }, timeout, poll).Should(BeEmpty())
		Eventually(func() bool {
			err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gone"}, &corev1.Endpoints{}) //nolint:staticcheck
			return apierrors.IsNotFound(err)
		}, timeout, poll).Should(BeTrue())
	})
})

var _ = Describe("A foreign Service of the same name", func() {
	It("is never touched, reported as ServiceConflict, and the name is taken once it is deleted", func() {
		ns := newNamespace()
		foreign := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken", Labels: map[string]string{"owner": "someone-else"}},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "theirs"},
				Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
			},
		}
		Expect(k8s.Create(ctx, foreign)).To(Succeed())
		before := service(ns, "taken")

		xb := backend(ns, "taken", v1alpha1.ExternalBackendSpec{Addresses: []string{"192.168.10.1"}, Ports: tcp(80)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonServiceConflict)
		Expect(meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady).Message).To(ContainSubstring("not managed by this ExternalBackend"))
		Eventually(eventReasons(got), timeout, poll).Should(ContainElement(v1alpha1.EventServiceConflict))

		Consistently(func() string { return service(ns, "taken").ResourceVersion }, "1s", poll).Should(Equal(before.ResourceVersion))
		after := service(ns, "taken")
		Expect(after.Spec.Selector).To(Equal(map[string]string{"app": "theirs"}))
		Expect(metav1.GetControllerOf(after)).To(BeNil())
		Expect(slicesOf(ns, "taken")).To(BeEmpty())

		By("deleting the foreign Service, the ExternalBackend takes the name")
		Expect(k8s.Delete(ctx, foreign)).To(Succeed())
		got = eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		expectOwnedBy(service(ns, "taken"), got)
		Expect(addressesOf(slicesOf(ns, "taken"))).To(Equal(map[string]bool{"192.168.10.1": true}))
	})
})

var _ = Describe("Address policy", func() {
	It("leaves out loopback, link-local, service and pod addresses, with a reason and an Event", func() {
		ns := newNamespace()
		xb := backend(ns, "sneaky", v1alpha1.ExternalBackendSpec{
			Addresses: []string{"192.168.11.1", "127.0.0.1", "169.254.169.254", "10.96.0.1", "10.244.1.5", "fe80::1", "::1"},
			Ports:     tcp(80),
		})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		Expect(got.Status.Ready).To(Equal("1/1"))
		Expect(addressesOf(slicesOf(ns, "sneaky"))).To(Equal(map[string]bool{"192.168.11.1": true}))
		Expect(endpoints(ns, "sneaky").Subsets[0].Addresses).To(HaveLen(1))

		denied := map[string]string{}
		for _, row := range got.Status.Endpoints {
			if row.Reason == v1alpha1.EndpointDenied {
				Expect(row.Ready).To(BeFalse())
				denied[row.Address] = row.Message
			}
		}
		Expect(denied).To(HaveLen(6))
		Expect(denied["127.0.0.1"]).To(ContainSubstring("127.0.0.0/8"))
		Expect(denied["169.254.169.254"]).To(ContainSubstring("cloud metadata address"))
		Expect(denied["10.96.0.1"]).To(ContainSubstring("--service-cidr"))
		Expect(denied["10.244.1.5"]).To(ContainSubstring("--pod-cidr"))
		Expect(denied["fe80::1"]).To(ContainSubstring("fe80::/10"))
		Expect(denied["::1"]).To(ContainSubstring("::1/128"))
		Eventually(eventNotes(got), timeout, poll).Should(And(
			ContainSubstring("AddressDenied: 6 address(es) left out by the address policy"),
			ContainSubstring("127.0.0.1 is inside 127.0.0.0/8"),
			ContainSubstring("169.254.169.254 is a cloud metadata address"),
		))
	})

	It("reports AddressesDenied when every address is refused", func() {
		ns := newNamespace()
		xb := backend(ns, "metadata", v1alpha1.ExternalBackendSpec{Addresses: []string{"169.254.169.254"}, Ports: tcp(80)})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		got := eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonAddressesDenied)
		Expect(got.Status.Ready).To(Equal("0/0"))
		s := slicesOf(ns, "metadata")
		Expect(s).To(HaveLen(1))
		Expect(s[0].Endpoints).To(BeEmpty())
	})
})
