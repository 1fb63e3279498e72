package syncer

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func lbService(ranges ...string) *v1.Service {
	svc := service("lb", "10.96.0.7", tcpPort("http", 80), tcpPort("https", 443))
	svc.Spec.ClusterIPs = []string{"10.96.0.7", "fd00:10:96::7"}
	svc.Spec.Type = v1.ServiceTypeLoadBalancer
	svc.Spec.LoadBalancerSourceRanges = ranges
	svc.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7"}, {IP: "2001:db8:ff::7"}}
	return svc
}

func TestLoadBalancerSourceRangesByFamily(t *testing.T) {
	// Whitespace and host bits as old API servers let them through.
	svc := lbService(" 198.51.100.9/24", "2001:db8:1::/64", "192.0.2.7/32 ")
	for _, c := range []struct {
		ipv6 bool
		want []string
	}{{false, []string{"198.51.100.0/24", "192.0.2.7/32"}}, {true, []string{"2001:db8:1::/64"}}} {
		ports, err := ServicePorts(svc, c.ipv6)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			var got []string
			for _, r := range p.LoadBalancerSourceRanges {
				got = append(got, r.String())
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("ipv6=%v port %s: source ranges %v, want %v", c.ipv6, p.PortName, got, c.want)
			}
		}
	}
}

func TestLoadBalancerSourceRangeOfLengthZeroAllowsEveryone(t *testing.T) {
	ports, err := ServicePorts(lbService("198.51.100.0/24", "0.0.0.0/0"), false)
	if err != nil {
		t.Fatal(err)
	}
	if r := ports[0].LoadBalancerSourceRanges; len(r) != 0 {
		t.Errorf("source ranges %v: 0.0.0.0/0 admits everyone, so no firewall", r)
	}
	// The other family is still restricted.
	ports, err = ServicePorts(lbService("2001:db8:1::/64", "0.0.0.0/0"), true)
	if err != nil || len(ports[0].LoadBalancerSourceRanges) != 1 {
		t.Errorf("IPv6 source ranges %v, %v: want 2001:db8:1::/64", ports[0].LoadBalancerSourceRanges, err)
	}
}

func TestMalformedLoadBalancerSourceRangeNamesTheField(t *testing.T) {
	for _, bad := range []string{"198.51.100.0", "not-a-cidr", "::ffff:198.51.100.0/120"} {
		_, err := ServicePorts(lbService("192.0.2.0/24", bad), false)
		if err == nil || !strings.Contains(err.Error(), "spec.loadBalancerSourceRanges[1]") {
			t.Errorf("%q: error %v, want one naming spec.loadBalancerSourceRanges[1]", bad, err)
		}
	}
}

func TestHealthCheckNodePortOnlyForLocalLoadBalancers(t *testing.T) {
	for _, c := range []struct {
		typ    v1.ServiceType
		policy v1.ServiceExternalTrafficPolicy
		want   int
	}{
		{v1.ServiceTypeLoadBalancer, v1.ServiceExternalTrafficPolicyLocal, 32100},
		{v1.ServiceTypeLoadBalancer, v1.ServiceExternalTrafficPolicyCluster, 0},
		{v1.ServiceTypeNodePort, v1.ServiceExternalTrafficPolicyLocal, 0},
	} {
		svc := lbService()
		svc.Spec.Type, svc.Spec.ExternalTrafficPolicy, svc.Spec.HealthCheckNodePort = c.typ, c.policy, 32100
		ports, err := ServicePorts(shrinkService(svc), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if p.HealthCheckNodePort != c.want {
				t.Errorf("%s %s port %s: health check node port %d, want %d", c.typ, c.policy, p.PortName, p.HealthCheckNodePort, c.want)
			}
		}
	}
}

func TestShrunkServiceKeepsSourceRanges(t *testing.T) {
	ports, err := ServicePorts(shrinkService(lbService("198.51.100.0/24")), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}; !slices.Equal(ports[0].LoadBalancerSourceRanges, want) {
		t.Errorf("source ranges after shrinking: %v, want %v", ports[0].LoadBalancerSourceRanges, want)
	}
}
