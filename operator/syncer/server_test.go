package syncer

import (
	"bytes"
	"context"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/outpost-dev/outpost/operator/syncer/iptablestest"
	"github.com/outpost-dev/outpost/operator/syncer/render"
)

func TestFamiliesFollowNodeIPsAndClusterCIDRs(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	prefixes := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	v4 := render.Config{Prefix: "OUTPOST", NodeName: "node1", LocalhostNodePorts: true}
	v6 := render.Config{Prefix: "OUTPOST", NodeName: "node1", IPv6: true}
	with := func(c render.Config, ips []netip.Addr, cidrs []netip.Prefix) render.Config {
		c.NodeIPs, c.ClusterCIDRs = ips, cidrs
		return c
	}
	for _, tc := range []struct {
		name  string
		ips   []netip.Addr
		cidrs []netip.Prefix
		want  []render.Config
	}{
		{"nothing given: IPv4 only", nil, nil, []render.Config{v4}},
		{"IPv4 only", addrs("192.168.0.2"), prefixes("10.244.0.0/16"),
			[]render.Config{with(v4, addrs("192.168.0.2"), prefixes("10.244.0.0/16"))}},
		{"an IPv6 cluster CIDR adds IPv6, masked", nil, prefixes("10.244.0.0/16", "fd00:10:244::1/48"),
			[]render.Config{with(v4, nil, prefixes("10.244.0.0/16")), with(v6, nil, prefixes("fd00:10:244::/48"))}},
		{"an IPv6 node IP adds IPv6", addrs("fd00::2", "192.168.0.2"), nil,
			[]render.Config{with(v4, addrs("192.168.0.2"), nil), with(v6, addrs("fd00::2"), nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.NodeName, cfg.NodeIPs, cfg.ClusterCIDRs = "node1", tc.ips, tc.cidrs
			got, err := families(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("families = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestNewServerErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"prefix too long", func(c *Config) { c.ChainPrefix = "OUTPOST1" }, "--chain-prefix"},
		{"bad selector", func(c *Config) { c.ServiceSelector = "app in (" }, `--service-selector "app in ("`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			_, err := newServer(fake.NewClientset(), cfg, testr.New(t), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to name %s", err, tc.want)
			}
		})
	}
}

// TestServerOnceDryRun runs what `outpost-syncer --once --dry-run
// --service-selector ...` does against an API server holding two Services,
// one selected: the printed restore input sends the selected Service's
// cluster IP to its endpoints and leaves the other alone.
func TestServerOnceDryRun(t *testing.T) {
	selected := service("web", "10.96.0.20", tcpPort("", 80))
	selected.Labels = map[string]string{"app.kubernetes.io/managed-by": "outpost-operator"}
	other := service("other", "10.96.0.30", tcpPort("", 80))
	client := fake.NewClientset(selected, slice("web", "web-1", "", 8080, "10.244.1.1"),
		other, slice("other", "other-1", "", 8080, "10.244.1.2"))

	cfg := DefaultConfig()
	cfg.NodeName, cfg.Once, cfg.DryRun = "node1", true, true
	cfg.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}
	cfg.ServiceSelector = "app.kubernetes.io/managed-by=outpost-operator"
	var out bytes.Buffer
	s, err := newServer(client, cfg, testr.New(t), &out)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}

	tables, err := iptablestest.ParseTables(out.Bytes())
	if err != nil {
		t.Fatalf("dry run printed no valid restore input: %v\n%s", err, out.String())
	}
	tr := &iptablestest.Tracer{Tables: tables, Prefix: "OUTPOST"}
	src := netip.MustParseAddr("10.244.9.9")
	web := tr.Trace(iptablestest.Packet{Src: src, Dst: netip.MustParseAddr("10.96.0.20"), Proto: "tcp", DPort: 80})
	if got := web.Endpoints(); !slices.Equal(got, []string{"10.244.1.1:8080"}) {
		t.Errorf("selected Service reaches %v, want 10.244.1.1:8080", got)
	}
	if strings.Contains(out.String(), "10.96.0.30") {
		t.Errorf("a Service outside --service-selector was programmed:\n%s", out.String())
	}
}
