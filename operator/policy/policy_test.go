package policy

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// clusterPolicy is the policy of a cluster whose admin passed its ranges by
// flag and whose operator learned a node and the API server.
func clusterPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := Parse(DefaultDeniedCIDRs, "10.96.0.0/12,fd00:10:96::/112", "10.244.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	p.SetLearned([]LearnedRange{
		{Prefix: netip.MustParsePrefix("10.245.1.0/24"), Source: "the pod CIDR of node worker-1"},
		{Prefix: netip.MustParsePrefix("fd00:10:245:1::/64"), Source: "the pod CIDR of node worker-1"},
		{Prefix: netip.MustParsePrefix("172.18.0.3/32"), Source: "an address of node worker-1"},
		{Prefix: netip.MustParsePrefix("10.200.0.0/16"), Source: "ServiceCIDR extra"},
		{Prefix: netip.MustParsePrefix("172.18.0.2/32"), Source: "an API server endpoint"},
	})
	return p
}

// verdict is what a user sees: "" when allowed, else words the message must
// contain.
type verdict []string

var allowed verdict

func expect(t *testing.T, input string, err error, want verdict) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: denied (%v), want allowed", input, err)
	case want != nil && err == nil:
		t.Errorf("%s: allowed, want denied with %q", input, want)
	case want != nil:
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: message %q does not say %q", input, err, w)
			}
		}
	}
}

func TestCheckAddresses(t *testing.T) {
	p := clusterPolicy(t)
	embedded := "denied rather than unwrapped"
	cases := []struct {
		addr string
		want verdict
	}{
		// Ordinary backends.
		{"192.168.1.2", allowed},
		{"203.0.113.10", allowed},
		{"2001:db8::1", allowed},
		{"100.64.0.1", allowed}, // shared address space, used by some VPNs
		{"2001:4860::1", allowed},
		{"255.255.255.254", allowed},

		// Loopback, link-local, "this network": --denied-cidrs.
		{"127.0.0.1", verdict{"127.0.0.1 is inside 127.0.0.0/8", "denied by --denied-cidrs"}},
		{"127.255.255.254", verdict{"127.0.0.0/8", "--denied-cidrs"}},
		{"::1", verdict{"::1/128", "--denied-cidrs"}},
		{"0:0:0:0:0:0:0:1", verdict{"::1 is inside ::1/128"}},
		{"169.254.1.1", verdict{"169.254.0.0/16", "--denied-cidrs"}},
		{"fe80::1", verdict{"fe80::/10", "--denied-cidrs"}},
		{"0.1.2.3", verdict{"0.0.0.0/8", "--denied-cidrs"}},

		// The cluster's own ranges, by flag and learned.
		{"10.96.0.10", verdict{"10.96.0.0/12", "denied by --service-cidr"}},
		{"fd00:10:96::a", verdict{"denied by --service-cidr"}},
		{"10.244.3.7", verdict{"denied by --pod-cidr"}},
		{"10.245.1.9", verdict{"10.245.1.0/24", "the pod CIDR of node worker-1", "learned from the cluster"}},
		{"fd00:10:245:1::9", verdict{"the pod CIDR of node worker-1"}},
		{"172.18.0.3", verdict{"172.18.0.3 is an address of node worker-1 (learned from the cluster)"}},
		{"10.200.7.7", verdict{"inside 10.200.0.0/16, ServiceCIDR extra"}},
		{"172.18.0.2", verdict{"172.18.0.2 is an API server endpoint"}},
		{"172.18.0.4", allowed},

		// Cloud metadata, named even where --denied-cidrs also covers it.
		{"169.254.169.254", verdict{"cloud metadata address", "AWS, GCP, Azure"}},
		{"169.254.170.2", verdict{"cloud metadata address", "ECS"}},
		{"169.254.170.23", verdict{"cloud metadata address", "EKS Pod Identity"}},
		{"169.254.0.23", verdict{"cloud metadata address", "Tencent"}},
		{"100.100.100.200", verdict{"cloud metadata address", "Alibaba"}},
		{"168.63.129.16", verdict{"cloud metadata address", "Azure WireServer"}},
		{"fd00:ec2::254", verdict{"cloud metadata address", "AWS, over IPv6"}},
		{"fd00:ec2::23", verdict{"cloud metadata address", "EKS Pod Identity agent, over IPv6"}},
		{"fd20:ce::254", verdict{"cloud metadata address", "GCP, over IPv6"}},
		{"fe80::a9fe:a9fe", verdict{"cloud metadata address", "OpenStack"}},

		// Not one unicast host.
		{"0.0.0.0", verdict{"0.0.0.0 is the unspecified address"}},
		{"::", verdict{":: is the unspecified address"}},
		{"255.255.255.255", verdict{"limited broadcast"}},
		{"224.0.0.1", verdict{"multicast"}},
		{"239.255.255.250", verdict{"multicast"}},
		{"ff02::1", verdict{"multicast"}},
		{"ff05::1:3", verdict{"multicast"}},

		// Zones name an interface of one machine.
		{"fe80::1%eth0", verdict{"fe80::1%eth0 carries a zone (%eth0)", "remove the zone"}},
		{"2001:db8::1%1", verdict{"carries a zone (%1)"}},

		// IPv4 written as IPv6: denied, with the IPv4 address to list instead.
		{"::ffff:127.0.0.1", verdict{"IPv4-mapped ::ffff:0:0/96", embedded, "list 127.0.0.1 itself"}},
		{"::ffff:169.254.169.254", verdict{"IPv4-mapped", "list 169.254.169.254 itself"}},
		{"::ffff:203.0.113.10", verdict{"IPv4-mapped", "list 203.0.113.10 itself"}},
		{"::127.0.0.1", verdict{"IPv4-compatible ::/96", "list 127.0.0.1 itself"}},
		{"::a9fe:a9fe", verdict{"IPv4-compatible", "list 169.254.169.254 itself"}},
		{"64:ff9b::a9fe:a9fe", verdict{"IPv4 address embedded in IPv6 (NAT64 64:ff9b::/96)", "list 169.254.169.254 itself"}},
		{"64:ff9b::10.96.0.1", verdict{"NAT64 64:ff9b::/96", "list 10.96.0.1 itself"}},
		{"64:ff9b:1::a00:1", verdict{"local-use NAT64 64:ff9b:1::/48", "list the IPv4 address itself"}},
		{"2002:7f00:1::1", verdict{"6to4 2002::/16", "list 127.0.0.1 itself"}},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", verdict{"Teredo 2001::/32", "list 192.0.2.45 itself"}},
	}
	for _, c := range cases {
		addr, err := netip.ParseAddr(c.addr)
		if err != nil {
			t.Fatalf("%s: %v", c.addr, err)
		}
		expect(t, c.addr, p.Check(addr), c.want)
	}
}

func TestCheckExternalName(t *testing.T) {
	p := clusterPolicy(t)
	const ns = "team-a"
	inCluster := "inside the cluster domain cluster.local but not a Service of namespace team-a"
	fix := "SERVICE.team-a.svc.cluster.local"
	cases := []struct {
		name string
		want verdict
	}{
		// Public names and the backend's own namespace.
		{"db.example.com", allowed},
		{"db.example.com.", allowed},
		{"test.ap-northeast-1.rds.amazonaws.com", allowed},
		{"db.team-a.svc.cluster.local", allowed},
		{"db.team-a.svc.cluster.local.", allowed},
		{"DB.Team-A.SVC.Cluster.Local", allowed},
		{"db.team-a.example", allowed},

		// Elsewhere in the cluster domain.
		{"kubernetes.default.svc.cluster.local", verdict{"spec.externalName: kubernetes.default.svc.cluster.local", inCluster, fix}},
		{"db.team-b.svc.cluster.local.", verdict{inCluster}},
		{"DB.TEAM-B.SVC.CLUSTER.LOCAL", verdict{"spec.externalName: DB.TEAM-B.SVC.CLUSTER.LOCAL", inCluster}},
		{"kube-dns.kube-system.svc.cluster.local", verdict{inCluster}},
		{"pod-0.db.team-a.svc.cluster.local", verdict{inCluster}},
		{"team-a.svc.cluster.local", verdict{inCluster}},
		{"svc.cluster.local", verdict{inCluster}},
		{"cluster.local", verdict{inCluster}},
		{"anything.cluster.local", verdict{inCluster}},
		{"169-254-169-254.team-a.pod.cluster.local", verdict{"is a Pod name in the cluster domain", fix}},
		{"1-2-3-4.team-b.pod.cluster.local.", verdict{"Pod name"}},

		// Cluster names the search list would complete.
		{"kubernetes.default.svc", verdict{"cluster name without the cluster domain", fix}},
		{"1-2-3-4.team-b.pod", verdict{"cluster name without the cluster domain"}},
		{"kubernetes", verdict{"single-label name", "fully qualified"}},

		// Cloud metadata names and loopback names.
		{"metadata.google.internal", verdict{"spec.externalName: metadata.google.internal is a cloud metadata host name", "--denied-hostnames"}},
		{"Metadata.Google.Internal.", verdict{"cloud metadata host name"}},
		{"metadata", verdict{"cloud metadata host name"}},
		{"instance-data", verdict{"cloud metadata host name"}},
		{"instance-data.ec2.internal.", verdict{"cloud metadata host name"}},
		{"metadata.tencentyun.com", verdict{"cloud metadata host name"}},
		{"api.metadata.cloud.ibm.com", verdict{"cloud metadata host name"}},
		{"localhost", verdict{"loopback", "RFC 6761"}},
		{"db.localhost.", verdict{"under localhost"}},

		// Names some resolvers read as IPv4 addresses.
		{"127.1", verdict{"all-numeric label", "spec.addresses"}},
		{"0x7f.0.0.1", verdict{"all-numeric label"}},
		{"2130706433", verdict{"single-label name"}},

		// IP literals go through the address checks.
		{"169.254.169.254", verdict{"spec.externalName: 169.254.169.254 is a cloud metadata address"}},
		{"10.96.0.1", verdict{"spec.externalName: 10.96.0.1 is inside 10.96.0.0/12", "--service-cidr"}},
		{"::ffff:10.0.0.1", verdict{"spec.externalName:", "IPv4-mapped"}},
		{"fe80::1%eth0", verdict{"spec.externalName:", "zone"}},
		{"10.245.1.1", verdict{"spec.externalName:", "pod CIDR of node worker-1"}},
		{"203.0.113.10", allowed},
	}
	for _, c := range cases {
		expect(t, c.name, p.CheckExternalName(ns, c.name), c.want)
	}
}

// The admin replaces the default lists: the built-in rules stay, the
// defaults go.
func TestFlagsReplaceDefaultsButNotBuiltins(t *testing.T) {
	p, err := Parse("10.0.0.0/8", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetAliasRules("Corp.Example.", "db.partner.example"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		input string
		err   error
		want  verdict
	}{
		{"127.0.0.1", p.Check(netip.MustParseAddr("127.0.0.1")), allowed},
		{"10.1.2.3", p.Check(netip.MustParseAddr("10.1.2.3")), verdict{"denied by --denied-cidrs"}},
		{"169.254.169.254", p.Check(netip.MustParseAddr("169.254.169.254")), verdict{"cloud metadata address"}},
		{"::ffff:1.2.3.4", p.Check(netip.MustParseAddr("::ffff:1.2.3.4")), verdict{"IPv4-mapped"}},
		{"224.0.0.1", p.Check(netip.MustParseAddr("224.0.0.1")), verdict{"multicast"}},
		{"metadata.google.internal", p.CheckExternalName("ns", "metadata.google.internal"), allowed},
		{"db.partner.example.", p.CheckExternalName("ns", "db.partner.example."), verdict{"--denied-hostnames"}},
		{"db.ns.svc.corp.example", p.CheckExternalName("ns", "db.ns.svc.corp.example"), allowed},
		{"db.other.svc.corp.example", p.CheckExternalName("ns", "db.other.svc.corp.example"), verdict{"cluster domain corp.example", "SERVICE.ns.svc.corp.example"}},
		{"db.other.svc.cluster.local", p.CheckExternalName("ns", "db.other.svc.cluster.local"), allowed},
	} {
		expect(t, c.input, c.err, c.want)
	}
}

func TestSetLearnedReplacesAndReportsChanges(t *testing.T) {
	p, err := Parse("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	node := LearnedRange{Prefix: netip.MustParsePrefix("10.244.1.0/24"), Source: "the pod CIDR of node a"}
	api := LearnedRange{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Source: "an API server endpoint"}
	podIP := netip.MustParseAddr("10.244.1.5")

	if !p.SetLearned([]LearnedRange{node, api}) {
		t.Error("first learned set: want changed")
	}
	expect(t, "10.244.1.5", p.Check(podIP), verdict{"the pod CIDR of node a"})
	if p.SetLearned([]LearnedRange{api, node, api}) {
		t.Error("same set in another order, with a duplicate: want unchanged")
	}
	if !p.SetLearned([]LearnedRange{api}) {
		t.Error("node gone: want changed")
	}
	expect(t, "10.244.1.5", p.Check(podIP), allowed)
	if !p.SetLearned(nil) {
		t.Error("everything gone: want changed")
	}
	if p.SetLearned(nil) {
		t.Error("still nothing: want unchanged")
	}
}

func TestSetLearnedWhileChecking(t *testing.T) {
	p, err := Parse("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("10.244.1.5")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 1000 {
			p.SetLearned([]LearnedRange{{Prefix: netip.PrefixFrom(addr, 24+i%8), Source: "the pod CIDR of node a"}})
		}
	}()
	go func() {
		defer wg.Done()
		for range 1000 {
			if err := p.Check(addr); err != nil && !strings.Contains(err.Error(), "node a") {
				t.Errorf("torn read: %v", err)
			}
		}
	}()
	wg.Wait()
}

func TestParseNamesTheFlag(t *testing.T) {
	_, err := Parse("", "10.96.0.0/33", "")
	if err == nil || !strings.Contains(err.Error(), "--service-cidr") {
		t.Fatalf("got %v, want an error naming --service-cidr", err)
	}
	p, err := Parse("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ domain, hosts, flag string }{
		{"cluster_local", "", "--cluster-domain"},
		{"", "", "--cluster-domain"},
		{"cluster.local", "metadata,bad name", "--denied-hostnames"},
	} {
		if err := p.SetAliasRules(c.domain, c.hosts); err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("SetAliasRules(%q, %q): got %v, want an error naming %s", c.domain, c.hosts, err, c.flag)
		}
	}
}
