package syncer

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/outpost-dev/outpost/operator/syncer/restore"
	"github.com/outpost-dev/outpost/test/lib/netns"
)

const (
	backendTestClientIP = "192.0.2.2"
	backendTestNodeIP   = "192.0.2.1"
	backendTestBridgeIP = "198.51.100.1"
	backendTestVIP      = "10.96.0.10"
)

// runOnceIn runs what `outpost-syncer --once --netns NODE --iptables-backend
// requested` does, for one Service with one endpoint on the node's first
// backend, and returns Run's error.
func runOnceIn(t *testing.T, n *netns.NodeNetwork, requested restore.Backend) error {
	t.Helper()
	client := fake.NewClientset(service("web", backendTestVIP, tcpPort("http", 80)),
		slice("web", "web-1", "http", 8080, n.Backends[0].IP))
	cfg := DefaultConfig()
	cfg.NodeName, cfg.Once, cfg.Netns, cfg.IPTablesBackend = "node1", true, n.Node.Name, requested
	cfg.NodeIPs = []netip.Addr{netip.MustParseAddr(backendTestNodeIP)}
	cfg.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}
	s, err := newServer(client, cfg, testr.New(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.Run(ctx)
}

// newBackendTestNode is a node with one backend listening on port 8080.
func newBackendTestNode(t *testing.T) *netns.NodeNetwork {
	t.Helper()
	n := netns.NewNodeNetwork(t, netns.NodeNetworkSpec{
		Prefix: "ob", ClientIP: backendTestClientIP, NodeIP: backendTestNodeIP, BridgeIP: backendTestBridgeIP, Backends: 1,
	})
	n.Backends[0].NS.StartTCP(t, netip.AddrPortFrom(netip.MustParseAddr(n.Backends[0].IP), 8080))
	return n
}

// savedBy returns what a backend's iptables-save shows in the node, every
// table (naming one would create it in a legacy kernel).
func savedBy(t *testing.T, n *netns.NodeNetwork, b restore.Backend) string {
	t.Helper()
	out, err := n.Node.Cmd(restore.Tools{Backend: b}.Name(false, "save")).Output()
	if err != nil {
		t.Fatalf("%s in %s: %v", restore.Tools{Backend: b}.Name(false, "save"), n.Node.Name, err)
	}
	return string(out)
}

// checkProgrammedIn checks that the syncer's rules are in backend want and
// not in the other, that the metric says so, and that a client reaches the
// Service through them.
func checkProgrammedIn(t *testing.T, n *netns.NodeNetwork, want restore.Backend) {
	t.Helper()
	other := restore.NFT
	if want == restore.NFT {
		other = restore.Legacy
	}
	if got := savedBy(t, n, want); !strings.Contains(got, ":OUTPOST-SERVICES") {
		t.Errorf("iptables-%s-save shows no OUTPOST chain:\n%s", want, got)
	}
	if got := savedBy(t, n, other); strings.Contains(got, "OUTPOST") {
		t.Errorf("iptables-%s-save shows the syncer's rules, which belong in %s:\n%s", other, want, got)
	}
	metric := "# HELP outpost_syncer_iptables_backend " + iptablesBackendHelp + "\n# TYPE outpost_syncer_iptables_backend gauge\n" +
		`outpost_syncer_iptables_backend{backend="` + want.String() + "\"} 1\n"
	if err := testutil.GatherAndCompare(Registry, strings.NewReader(metric), "outpost_syncer_iptables_backend"); err != nil {
		t.Error(err)
	}
	var c net.Conn
	if err := n.Client.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", net.JoinHostPort(backendTestVIP, "80"), 5*time.Second)
		return err
	}); err != nil {
		t.Errorf("client to the Service's cluster IP: %v", err)
		return
	}
	c.Close()
}

// TestServerProgramsTheNodesIPTablesBackend runs the syncer with
// --iptables-backend auto in nodes where kubelet left its hint in one
// backend or the other, or nothing: the rules land in that backend (nft
// for the empty node), only there, and carry traffic.
func TestServerProgramsTheNodesIPTablesBackend(t *testing.T) {
	netns.Require(t)
	for _, tc := range []struct {
		name string
		hint string // the command creating kubelet's hint chain, if any
		want restore.Backend
	}{
		{"kubelet's hint in legacy", "iptables-legacy", restore.Legacy},
		{"kubelet's hint in nft", "iptables-nft", restore.NFT},
		{"an empty node: nft", "", restore.NFT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newBackendTestNode(t)
			if tc.hint != "" {
				n.Node.Must(t, tc.hint, "-t", "mangle", "-N", "KUBE-IPTABLES-HINT")
			}
			if err := runOnceIn(t, n, restore.Auto); err != nil {
				t.Fatal(err)
			}
			checkProgrammedIn(t, n, tc.want)
		})
	}
}

// TestServerUsesPlainIPTablesWhenTheBackendsAreNotInstalled gives the
// syncer a PATH holding only the plain commands, run by the legacy backend
// (as on a host whose alternatives point at iptables-legacy): auto uses
// them, and asking for nft fails at start naming the flag and the missing
// command rather than writing legacy rules.
func TestServerUsesPlainIPTablesWhenTheBackendsAreNotInstalled(t *testing.T) {
	netns.Require(t)
	legacyMulti, err := exec.LookPath("xtables-legacy-multi")
	if err != nil {
		t.Fatalf("xtables-legacy-multi (iptables' legacy backend) is needed: %v", err)
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	n := newBackendTestNode(t)
	dir := t.TempDir()
	links := map[string]string{"ip": ip}
	for _, family := range []string{"iptables", "ip6tables"} {
		for _, action := range []string{"", "-save", "-restore"} {
			links[family+action] = legacyMulti // it runs the command it is called as
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	hostPath := os.Getenv("PATH")
	t.Setenv("PATH", dir)

	err = runOnceIn(t, n, restore.NFT)
	if want := "--iptables-backend nft: iptables-nft is not installed and the plain iptables is legacy (iptables v"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("--iptables-backend nft on a legacy-only host: error %v, want it to contain %q", err, want)
	}
	if err := runOnceIn(t, n, restore.Auto); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", hostPath) // both backends' tools, to look
	checkProgrammedIn(t, n, restore.Legacy)
}
