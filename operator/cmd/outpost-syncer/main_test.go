package main

import (
	"flag"
	"io"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/outpost-dev/outpost/operator/syncer"
	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/restore"
)

func newFlagSet(t *testing.T) (*flag.FlagSet, *syncer.Config, *string) {
	t.Helper()
	t.Setenv("NODE_NAME", "")
	cfg := syncer.DefaultConfig()
	var kubeconfig string
	fs := flag.NewFlagSet("outpost-syncer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bindFlags(fs, &cfg, &kubeconfig)
	return fs, &cfg, &kubeconfig
}

func TestFlagsFillConfig(t *testing.T) {
	fs, cfg, kubeconfig := newFlagSet(t)
	err := fs.Parse([]string{
		"--kubeconfig", "/k", "--node-name", "node1", "--node-ip", "192.168.0.2,fd00::2",
		"--cluster-cidr", "10.244.0.0/16", "--cluster-cidr", "fd00:10:244::/48", "--masquerade-all",
		"--chain-prefix", "KUBE", "--layout", "kube-proxy", "--service-selector", "a=b",
		"--min-sync-period", "100ms", "--sync-period", "1m", "--canary-period", "500ms",
		"--metrics-bind-address", "0", "--healthz-bind-address", "127.0.0.1:1", "--once", "--dry-run", "--netns", "node",
		"--iptables-backend", "legacy", "--iptables-localhost-nodeports=false",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := syncer.Config{
		NodeName:      "node1",
		NodeIPs:       []netip.Addr{netip.MustParseAddr("192.168.0.2"), netip.MustParseAddr("fd00::2")},
		ClusterCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:10:244::/48")},
		MasqueradeAll: true, ChainPrefix: "KUBE", Layout: render.KubeProxy, ServiceSelector: "a=b",
		MinSyncPeriod: 100 * time.Millisecond, SyncPeriod: time.Minute, CanaryPeriod: 500 * time.Millisecond,
		MetricsBindAddress: "0", HealthzBindAddress: "127.0.0.1:1", Once: true, DryRun: true, Netns: "node",
		IPTablesBackend: restore.Legacy,
	}
	if !reflect.DeepEqual(*cfg, want) || *kubeconfig != "/k" {
		t.Errorf("config = %+v (kubeconfig %q)\nwant %+v", *cfg, *kubeconfig, want)
	}
}

func TestFlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"--layout=flat", `invalid value "flat" for flag -layout: layout "flat": must be compact or kube-proxy`},
		{"--node-ip=192.168.0.2,node1", `invalid value "192.168.0.2,node1" for flag -node-ip: "node1" is not an IP address`},
		{"--cluster-cidr=10.244.0.0", `invalid value "10.244.0.0" for flag -cluster-cidr: "10.244.0.0" is not a CIDR`},
		{"--iptables-backend=iptables", `invalid value "iptables" for flag -iptables-backend: iptables backend "iptables": must be auto, nft or legacy`},
	} {
		fs, _, _ := newFlagSet(t)
		if err := fs.Parse([]string{tc.arg}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.arg, err, tc.want)
		}
	}
}

// TestREADMEDocumentsEveryFlag keeps operator/syncer/README.md, the
// contract for the syncer's flags, in line with them: each flag has a row
// in its Flags table, with the default the binary really uses.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../syncer/README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{} // flag name -> cells of its row
	for _, line := range strings.Split(string(readme), "\n") {
		cells := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `--") || len(cells) < 3 {
			continue
		}
		for _, name := range strings.Split(strings.TrimPrefix(cells[0], "| "), ", ") {
			rows[strings.Trim(name, "`-")] = cells
		}
	}
	fs, _, _ := newFlagSet(t)
	(&zap.Options{}).BindFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		row, ok := rows[f.Name]
		switch {
		case !ok:
			t.Errorf("README has no row for --%s", f.Name)
		case f.DefValue != "" && !strings.HasPrefix(f.Name, "zap-") && row[1] != "`"+f.DefValue+"`":
			t.Errorf("README gives --%s the default %s, the binary %q", f.Name, row[1], f.DefValue)
		}
	})
}
