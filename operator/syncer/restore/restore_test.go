package restore_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/restore"
	"github.com/outpost-dev/outpost/operator/syncer/rules"
	"github.com/outpost-dev/outpost/test/lib/netns"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// services exercises every rule shape the renderer writes.
func services(v6 bool, endpointPort int) ([]render.ServicePort, map[string][]render.Endpoint) {
	base, epBase, ext := "10.96.0.", "10.244.0.", "198.51.100."
	if v6 {
		base, epBase, ext = "fd00:10:96::", "fd00:10:244::", "2001:db8::"
	}
	var sps []render.ServicePort
	eps := map[string][]render.Endpoint{}
	for i, proto := range []string{"tcp", "udp", "sctp"} {
		for j := 0; j < 20; j++ {
			n := i*20 + j + 1
			sp := render.ServicePort{Namespace: "ns", Name: fmt.Sprintf("s%d", n), PortName: "p", Protocol: proto,
				ClusterIP: addr(fmt.Sprintf("%s%d", base, n)), Port: 80}
			switch j % 5 {
			case 1:
				sp.NodePort, sp.ExternallyAccessible = 30000+n, true
				sp.ExternalIPs = []netip.Addr{addr(fmt.Sprintf("%s%d", ext, n))}
			case 2:
				sp.NodePort, sp.ExternallyAccessible, sp.ExternalPolicyLocal = 30000+n, true, true
				sp.LoadBalancerIPs = []netip.Addr{addr(fmt.Sprintf("%s%d", ext, 100+n))}
			case 3:
				sp.AffinitySeconds = 600
			case 4:
				sp.InternalPolicyLocal = true
			}
			sps = append(sps, sp)
			if j == 0 {
				continue // no endpoints: REJECT
			}
			var list []render.Endpoint
			for k := 1; k <= 3; k++ {
				e := render.Endpoint{IP: addr(fmt.Sprintf("%s%d", epBase, n*3+k)), Port: endpointPort, Ready: true, Serving: true}
				if k == 1 {
					e.NodeName = "node1"
				}
				list = append(list, e)
			}
			eps[render.EndpointsKey(&sp)] = list
		}
	}
	return sps, eps
}

// TestRealRestore applies full and partial transactions with the real
// iptables-restore in a fresh network namespace, for both families and
// layouts: the kernel accepts every rule shape we write, partial syncs
// rewrite chains in place and stale chains are deleted.
func TestRealRestore(t *testing.T) {
	netns.Require(t)
	ctx := context.Background()
	for _, v6 := range []bool{false, true} {
		for _, layout := range []render.Layout{render.Compact, render.KubeProxy} {
			t.Run(fmt.Sprintf("ipv6=%v/%s", v6, layout), func(t *testing.T) {
				ns := netns.New(t, "outpost-restore")
				run := &restore.Exec{Prefix: []string{"ip", "netns", "exec", ns.Name}}
				cidr := "10.244.0.0/16"
				if v6 {
					cidr = "fd00:10:244::/48"
				}
				r, err := render.NewRenderer(render.Config{Prefix: "OUTPOST", Layout: layout, IPv6: v6, NodeName: "node1",
					ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix(cidr)}})
				if err != nil {
					t.Fatal(err)
				}
				sps, eps := services(v6, 8080)
				first := r.Render(sps, eps)
				if err := run.Restore(ctx, v6, first.Full().Bytes()); err != nil {
					t.Fatal(err)
				}
				for _, j := range r.Jumps() {
					for range 2 { // idempotent
						if err := run.EnsureJump(ctx, v6, j); err != nil {
							t.Fatal(err)
						}
					}
				}
				save := "iptables-save"
				if v6 {
					save = "ip6tables-save"
				}
				out := ns.Must(t, save, "-t", "nat")
				if n := strings.Count(out, "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j OUTPOST-SERVICES"); n != 1 {
					t.Errorf("PREROUTING jump present %d times:\n%s", n, out)
				}
				if got, want := strings.Count(out, "\n-A OUTPOST-"), first.RuleCount(rules.NAT); got != want {
					t.Errorf("kernel holds %d nat rules, rendered %d", got, want)
				}
				ok, err := run.ChainExists(ctx, v6, rules.NAT, r.Names().Canary())
				if err != nil || !ok {
					t.Errorf("canary: %v %v", ok, err)
				}
				if ok, _ := run.ChainExists(ctx, v6, rules.NAT, "OUTPOST-NOPE"); ok {
					t.Error("missing chain reported present")
				}

				// Partial: endpoints move to another port, one service goes.
				sps2, eps2 := services(v6, 9090)
				sps2 = sps2[:len(sps2)-1]
				second := r.Render(sps2, eps2)
				tx := second.Diff(first)
				if len(tx.Deleted()) == 0 {
					t.Fatal("expected chains to delete")
				}
				if err := run.Restore(ctx, v6, tx.Bytes()); err != nil {
					t.Fatal(err)
				}
				out = ns.Must(t, save, "-t", "nat")
				if strings.Contains(out, ":8080") || !strings.Contains(out, ":9090") {
					t.Errorf("partial sync did not rewrite endpoint rules")
				}
				chains, err := run.Chains(ctx, v6, rules.NAT)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range chains {
					if r.Names().Owns(c) {
						if _, ok := second.Get(rules.NAT, c); !ok {
							t.Errorf("stale chain %s left behind", c)
						}
					}
				}

				// A bad input fails and changes nothing.
				bad := []byte("*nat\n:OUTPOST-SERVICES - [0:0]\n-A OUTPOST-SERVICES -j NO-SUCH-CHAIN\nCOMMIT\n")
				if err := run.Restore(ctx, v6, bad); err == nil {
					t.Error("restore with a jump to a missing chain succeeded")
				}
				if after := ns.Must(t, save, "-t", "nat"); strings.Count(after, "\n-A OUTPOST-") != second.RuleCount(rules.NAT) {
					t.Error("a failed restore changed the rules")
				}
			})
		}
	}
}
