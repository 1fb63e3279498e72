// Command outpost-syncer programs a node's iptables from Services and
// EndpointSlices, like kube-proxy's iptables mode. It only parses flags into
// a syncer.Config; the work is in operator/syncer, whose README documents
// every flag.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/outpost-dev/outpost/internal/listflag"
	"github.com/outpost-dev/outpost/internal/version"
	"github.com/outpost-dev/outpost/operator/syncer"
)

// bindFlags registers the syncer's own flags, filling cfg and kubeconfig.
func bindFlags(fs *flag.FlagSet, cfg *syncer.Config, kubeconfig *string) {
	fs.StringVar(kubeconfig, "kubeconfig", "", "Path to a kubeconfig; empty uses the in-cluster config.")
	fs.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "This node's name: endpoints with this nodeName are local (traffic policy Local).")
	fs.Var(listflag.Addrs(&cfg.NodeIPs), "node-ip", "Comma-separated node IPs node ports answer on (one per family); empty: every local address but loopback.")
	fs.Var(listflag.Prefixes(&cfg.ClusterCIDRs), "cluster-cidr", "Comma-separated pod CIDRs (one per family): cluster IP traffic from outside them is masqueraded.")
	fs.BoolVar(&cfg.MasqueradeAll, "masquerade-all", cfg.MasqueradeAll, "Masquerade all traffic to cluster IPs.")
	fs.StringVar(&cfg.ChainPrefix, "chain-prefix", cfg.ChainPrefix, "Chain name prefix (at most 7 characters); KUBE gives kube-proxy's chain names.")
	fs.Var(&cfg.Layout, "layout", "Rule layout: compact (bucketed dispatch, one rule per endpoint) or kube-proxy (kube-proxy's flat rules).")
	fs.StringVar(&cfg.ServiceSelector, "service-selector", cfg.ServiceSelector, "Label selector of the Services to program, e.g. app.kubernetes.io/managed-by=outpost-operator.")
	fs.DurationVar(&cfg.MinSyncPeriod, "min-sync-period", cfg.MinSyncPeriod, "Minimum time between two rule updates (changes are batched).")
	fs.DurationVar(&cfg.SyncPeriod, "sync-period", cfg.SyncPeriod, "Time between full resyncs.")
	fs.DurationVar(&cfg.CanaryPeriod, "canary-period", cfg.CanaryPeriod, "How often to check that nobody flushed our tables.")
	fs.StringVar(&cfg.MetricsBindAddress, "metrics-bind-address", cfg.MetricsBindAddress, "Address serving Prometheus metrics on /metrics; 0 disables.")
	fs.StringVar(&cfg.HealthzBindAddress, "healthz-bind-address", cfg.HealthzBindAddress, "Address serving the liveness probe on /healthz (unhealthy once the last successful sync is older than 2 × --sync-period); 0 disables.")
	fs.BoolVar(&cfg.Once, "once", cfg.Once, "Sync once and exit.")
	fs.BoolVar(&cfg.DryRun, "dry-run", cfg.DryRun, "Print the iptables-restore input instead of applying it.")
	fs.StringVar(&cfg.Netns, "netns", cfg.Netns, "Apply rules inside this named network namespace (ip netns exec NAME ...).")
	fs.BoolVar(&cfg.LocalhostNodePorts, "iptables-localhost-nodeports", cfg.LocalhostNodePorts, "Also answer IPv4 node ports on 127.0.0.1, as kube-proxy does (sets net.ipv4.conf.all.route_localnet=1 and drops packets for 127.0.0.0/8 from elsewhere); only with no --node-ip or a loopback one.")
	fs.Var(&cfg.IPTablesBackend, "iptables-backend", "iptables backend to program: auto (the node's, found at start as kube-proxy's images find it), nft or legacy.")
}

func main() {
	cfg := syncer.DefaultConfig()
	var kubeconfig string
	fs := flag.NewFlagSet("outpost-syncer", flag.ExitOnError)
	bindFlags(fs, &cfg, &kubeconfig)
	showVersion := fs.Bool("version", false, "Print the version and exit.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	_ = fs.Parse(os.Args[1:])
	build := version.Get()
	if *showVersion {
		fmt.Println(build.String("outpost-syncer"))
		return
	}
	log := zap.New(zap.UseFlagOptions(&zapOpts))
	log.Info("outpost-syncer", build.KeysAndValues()...)

	if err := run(kubeconfig, cfg, log); err != nil {
		log.Error(err, "outpost-syncer failed")
		os.Exit(1)
	}
}

func run(kubeconfig string, cfg syncer.Config, log logr.Logger) error {
	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	s, err := syncer.NewServer(restConfig, cfg, log)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	return s.Run(ctx)
}
