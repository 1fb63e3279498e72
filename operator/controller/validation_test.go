package controller_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// Invalid ExternalBackends must be refused by the API server itself, with a
// message that names the field, so `kubectl apply` tells the user what to fix.
var _ = Describe("Validation by the API server", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	ip := []string{"192.168.1.2"}
	dur := func(s string) *metav1.Duration {
		GinkgoHelper()
		d, err := parseDuration(s)
		Expect(err).NotTo(HaveOccurred())
		return &d
	}
	two := []v1alpha1.BackendPort{{Name: "a", Port: 80}, {Name: "b", Port: 81}}

	DescribeTable("rejects",
		func(name string, mutate func(*v1alpha1.ExternalBackend), wantMessage string) {
			xb := backend(ns, name, v1alpha1.ExternalBackendSpec{Addresses: ip, Ports: tcp(80)})
			mutate(xb)
			err := k8s.Create(ctx, xb)
			Expect(err).To(HaveOccurred(), "the API server accepted an invalid object")
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("both addresses and externalName", "both", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.ExternalName = "db.example.com"
		}, "exactly one of spec.addresses, spec.addressGroups and spec.externalName must be set"),
		Entry("neither addresses nor externalName", "neither", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses = nil
		}, "exactly one of spec.addresses, spec.addressGroups and spec.externalName must be set"),
		Entry("both addresses and addressGroups", "bothgroups", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.AddressGroups = []v1alpha1.AddressGroup{{Priority: 0, Addresses: ip}}
		}, "exactly one of spec.addresses, spec.addressGroups and spec.externalName must be set"),
		Entry("two groups of the same priority", "samepriority", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses = nil
			xb.Spec.AddressGroups = []v1alpha1.AddressGroup{{Priority: 1, Addresses: ip}, {Priority: 1, Addresses: []string{"192.168.1.3"}}}
		}, "spec.addressGroups[].priority: each group needs its own priority"),
		Entry("a group address that is neither IP nor DNS name", "badgroupaddr", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses = nil
			xb.Spec.AddressGroups = []v1alpha1.AddressGroup{{Priority: 0, Addresses: []string{"not_a_host!"}}}
		}, "spec.addressGroups[].addresses: not_a_host! is neither an IP address nor a DNS name"),
		Entry("a zone that is not a label value", "badzone", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses = nil
			xb.Spec.AddressGroups = []v1alpha1.AddressGroup{{Priority: 0, Addresses: ip, Zone: "eu west"}}
		}, "spec.addressGroups[].zone: eu west must be a label value"),
		Entry("groups without ports", "groupnoports", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses, xb.Spec.Ports = nil, nil
			xb.Spec.AddressGroups = []v1alpha1.AddressGroup{{Priority: 0, Addresses: ip}}
		}, "spec.ports: at least one port is required unless spec.headless is true"),
		Entry("trafficDistribution on an alias", "aliastd", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses, xb.Spec.ExternalName = nil, "db.example.com"
			xb.Spec.TrafficDistribution = ptr("PreferClose")
		}, "spec.trafficDistribution: not allowed with spec.externalName"),
		Entry("a rotationWindow longer than maxTTL", "rotation", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses = []string{"db.example.com"}
			xb.Spec.Resolution = &v1alpha1.Resolution{MaxTTL: dur("1m"), RotationWindow: dur("2m")}
		}, "spec.resolution.rotationWindow must not be greater than spec.resolution.maxTTL"),
		Entry("an empty address list", "empty", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses = []string{}
		}, "spec.addresses"),
		Entry("an address that is neither IP nor DNS name", "badaddr", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses = []string{"192.168.1.2", "not_a_host!"}
		}, "spec.addresses: not_a_host! is neither an IP address nor a DNS name"),
		Entry("a mistyped IPv4 address", "badip", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses = []string{"192.168.1.256"}
		}, "spec.addresses: 192.168.1.256 is neither an IP address nor a DNS name"),
		Entry("an IPv6 address with a zone", "zone", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses = []string{"fe80::1%eth0"}
		}, "spec.addresses: fe80::1%eth0 is neither an IP address nor a DNS name"),
		Entry("an upper-case host name", "upper", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses = []string{"DB.Example.com"}
		}, "spec.addresses: DB.Example.com is neither an IP address nor a DNS name"),
		Entry("an externalName that is an IP", "aliasip", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses, xb.Spec.ExternalName = nil, "203.0.113.9"
		}, "spec.externalName: 203.0.113.9 is not a DNS name"),
		Entry("an externalName with a space", "aliasspace", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses, xb.Spec.ExternalName = nil, "db example.com"
		}, "spec.externalName: db example.com is not a DNS name"),
		Entry("port 0", "port0", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = tcp(0)
		}, "spec.ports[0].port"),
		Entry("port 65536", "port65536", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = tcp(65536)
		}, "spec.ports[0].port"),
		Entry("targetPort 70000", "target70000", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = []v1alpha1.BackendPort{{Port: 80, TargetPort: 70000}}
		}, "spec.ports[0].targetPort"),
		Entry("no ports on a ClusterIP backend", "noports", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = nil
		}, "spec.ports: at least one port is required unless spec.headless is true"),
		Entry("two ports without names", "unnamed", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = []v1alpha1.BackendPort{{Port: 80}, {Port: 81}}
		}, "spec.ports[].name: required on every port when there is more than one port"),
		Entry("duplicate port names", "dupname", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = []v1alpha1.BackendPort{{Name: "web", Port: 80}, {Name: "web", Port: 81}}
		}, "spec.ports[].name: port names must be unique"),
		Entry("duplicate port and protocol", "dupport", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = []v1alpha1.BackendPort{{Name: "a", Port: 80}, {Name: "b", Port: 80, Protocol: corev1.ProtocolTCP}}
		}, "spec.ports: each (port, protocol) pair must be unique"),
		Entry("a port name with upper case", "portcase", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = []v1alpha1.BackendPort{{Name: "Web", Port: 80}}
		}, "spec.ports[].name: Web must be lower case letters"),
		Entry("a port name longer than 15", "portlong", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = []v1alpha1.BackendPort{{Name: "a-very-long-port-name", Port: 80}}
		}, "spec.ports[0].name"),
		Entry("an unknown protocol", "proto", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = []v1alpha1.BackendPort{{Port: 80, Protocol: "ICMP"}}
		}, "spec.ports[0].protocol"),
		Entry("a targetPort in alias mode", "aliasport", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses, xb.Spec.ExternalName = nil, "db.example.com"
			xb.Spec.Ports = []v1alpha1.BackendPort{{Port: 5432, TargetPort: 15432}}
		}, "spec.ports[].targetPort: must equal port with spec.externalName, because a DNS alias cannot remap ports; list the backend under spec.addresses"),
		Entry("a healthCheck in alias mode", "aliashc", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses, xb.Spec.ExternalName = nil, "db.example.com"
			xb.Spec.HealthCheck = &v1alpha1.HealthCheck{}
		}, "spec.healthCheck: not allowed with spec.externalName"),
		Entry("headless alias", "aliasheadless", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses, xb.Spec.ExternalName = nil, "db.example.com"
			xb.Spec.Headless = true
		}, "spec.headless: not allowed with spec.externalName"),
		Entry("a NodePort alias", "aliasnodeport", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Addresses, xb.Spec.ExternalName = nil, "db.example.com"
			xb.Spec.ServiceType = corev1.ServiceTypeNodePort
		}, "spec.serviceType: must be ClusterIP (the default) with spec.externalName"),
		Entry("nodePort with ClusterIP", "nodeport", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = []v1alpha1.BackendPort{{Port: 80, NodePort: 30080}}
		}, "spec.ports[].nodePort: only allowed when spec.serviceType is NodePort or LoadBalancer"),
		Entry("headless NodePort", "headlessnp", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Headless, xb.Spec.ServiceType = true, corev1.ServiceTypeNodePort
		}, "spec.headless: only allowed with serviceType ClusterIP"),
		Entry("an unknown service type", "svctype", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.ServiceType = corev1.ServiceTypeExternalName
		}, "spec.serviceType"),
		Entry("minTTL greater than maxTTL", "ttl", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Resolution = &v1alpha1.Resolution{MinTTL: dur("10m"), MaxTTL: dur("1m")}
		}, "spec.resolution.minTTL must not be greater than spec.resolution.maxTTL"),
		Entry("an unknown IP family", "family", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Resolution = &v1alpha1.Resolution{IPFamilies: []v1alpha1.IPFamily{"IPv5"}}
		}, "spec.resolution.ipFamilies[0]"),
		Entry("a healthyThreshold of 0", "threshold", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.HealthCheck = &v1alpha1.HealthCheck{HealthyThreshold: -1}
		}, "spec.healthCheck.healthyThreshold"),
		Entry("an unhealthyThreshold of 0", "unthreshold", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.HealthCheck = &v1alpha1.HealthCheck{UnhealthyThreshold: -2}
		}, "spec.healthCheck.unhealthyThreshold"),
		Entry("a path on a TCP check", "tcppath", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.HealthCheck = &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckTCP, Path: "/healthz"}
		}, "spec.healthCheck.path: only allowed for HTTP and HTTPS checks"),
		Entry("a timeout longer than the interval", "hctimeout", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.HealthCheck = &v1alpha1.HealthCheck{Interval: dur("5s"), Timeout: dur("10s")}
		}, "spec.healthCheck.timeout must not be greater than spec.healthCheck.interval"),
		Entry("a probe interval above 5m", "hcinterval", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.HealthCheck = &v1alpha1.HealthCheck{Interval: dur("6m"), Timeout: dur("2s")}
		}, "spec.healthCheck.interval must be at most 5m"),
		Entry("a probe timeout above 1m", "hclongtimeout", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.HealthCheck = &v1alpha1.HealthCheck{Interval: dur("5m"), Timeout: dur("2m")}
		}, "spec.healthCheck.timeout must be at most 1m"),
		Entry("a minTTL below 1s", "minttl", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Resolution = &v1alpha1.Resolution{MinTTL: dur("500ms")}
		}, "spec.resolution.minTTL must be at least 1s"),
		Entry("a relative HTTP path", "hcpath", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.HealthCheck = &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckHTTP, Path: "healthz"}
		}, "spec.healthCheck.path"),
		Entry("a name that cannot name a Service", "Not.A.Label", func(*v1alpha1.ExternalBackend) {},
			"metadata.name: must be a DNS-1035 label"),
		Entry("too many ports names missing among several", "onemissing", func(xb *v1alpha1.ExternalBackend) {
			xb.Spec.Ports = append(two, v1alpha1.BackendPort{Port: 82})
		}, "spec.ports[].name: required on every port when there is more than one port"),
	)

	It("accepts every sample and fills in defaults", func() {
		xb := backend(ns, "defaults", v1alpha1.ExternalBackendSpec{
			Addresses:   []string{"db.internal.example.com", "192.168.1.2", "2001:db8::1", "fqdn.example.com."},
			Ports:       tcp(5432),
			Resolution:  &v1alpha1.Resolution{},
			HealthCheck: &v1alpha1.HealthCheck{},
		})
		Expect(k8s.Create(ctx, xb)).To(Succeed())
		Expect(xb.Spec.ServiceType).To(Equal(corev1.ServiceTypeClusterIP))
		Expect(xb.Spec.SessionAffinity).To(Equal(corev1.ServiceAffinityNone))
		Expect(xb.Spec.Ports[0].Protocol).To(Equal(corev1.ProtocolTCP))
		Expect(xb.Spec.Resolution.IPFamilies).To(Equal([]v1alpha1.IPFamily{v1alpha1.IPv4}))
		Expect(xb.Spec.Resolution.MinTTL.Duration.String()).To(Equal("5s"))
		Expect(xb.Spec.Resolution.MaxTTL.Duration.String()).To(Equal("30m0s"))
		hc := xb.Spec.HealthCheck
		Expect(hc.Type).To(Equal(v1alpha1.HealthCheckTCP))
		Expect(hc.Interval.Duration.String()).To(Equal("10s"))
		Expect(hc.Timeout.Duration.String()).To(Equal("2s"))
		Expect(hc.HealthyThreshold).To(BeEquivalentTo(2))
		Expect(hc.UnhealthyThreshold).To(BeEquivalentTo(3))
	})
})

func parseDuration(s string) (d metav1.Duration, err error) {
	err = d.UnmarshalJSON([]byte(`"` + strings.TrimSpace(s) + `"`))
	return d, err
}
