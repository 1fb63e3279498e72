// Command outpost-syncer programs a node's iptables from Services and
// EndpointSlices, like kube-proxy's iptables mode. It is flags and wiring
// only; the work is in operator/syncer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/outpost-dev/outpost/operator/syncer"
	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/restore"
)

type flags struct {
	kubeconfig, nodeName, nodeIPs, clusterCIDRs, prefix, layout, selector, metricsAddr, netns string
	masqueradeAll, once, dryRun                                                               bool
	minSync, sync, canary                                                                     time.Duration
}

func main() {
	var f flags
	fs := flag.NewFlagSet("outpost-syncer", flag.ExitOnError)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; empty uses the in-cluster config.")
	fs.StringVar(&f.nodeName, "node-name", os.Getenv("NODE_NAME"), "This node's name: endpoints with this nodeName are local (traffic policy Local).")
	fs.StringVar(&f.nodeIPs, "node-ip", "", "Comma-separated node IPs node ports answer on (one per family); empty: every local address but loopback.")
	fs.StringVar(&f.clusterCIDRs, "cluster-cidr", "", "Comma-separated pod CIDRs (one per family): cluster IP traffic from outside them is masqueraded.")
	fs.BoolVar(&f.masqueradeAll, "masquerade-all", false, "Masquerade all traffic to cluster IPs.")
	fs.StringVar(&f.prefix, "chain-prefix", "OUTPOST", "Chain name prefix (at most 7 characters); KUBE gives kube-proxy's chain names.")
	fs.StringVar(&f.layout, "layout", "compact", "Rule layout: compact (bucketed dispatch, one rule per endpoint) or kube-proxy (kube-proxy's flat rules).")
	fs.StringVar(&f.selector, "service-selector", "", "Label selector of the Services to program, e.g. app.kubernetes.io/managed-by=outpost-operator.")
	fs.DurationVar(&f.minSync, "min-sync-period", time.Second, "Minimum time between two rule updates (changes are batched).")
	fs.DurationVar(&f.sync, "sync-period", time.Hour, "Time between full resyncs.")
	fs.DurationVar(&f.canary, "canary-period", 10*time.Second, "How often to check that nobody flushed our tables.")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":9402", "Address serving Prometheus metrics on /metrics; 0 disables.")
	fs.BoolVar(&f.once, "once", false, "Sync once and exit.")
	fs.BoolVar(&f.dryRun, "dry-run", false, "Print the iptables-restore input instead of applying it.")
	fs.StringVar(&f.netns, "netns", "", "Apply rules inside this named network namespace (ip netns exec NAME ...).")
	opts := zap.Options{}
	opts.BindFlags(fs)
	_ = fs.Parse(os.Args[1:])
	log := zap.New(zap.UseFlagOptions(&opts))

	if err := run(f, log); err != nil {
		log.Error(err, "outpost-syncer failed")
		os.Exit(1)
	}
}

// families builds one render configuration per IP family in use: IPv4
// always, IPv6 when a node IP or cluster CIDR is IPv6.
func families(f flags) ([]render.Config, error) {
	layout, err := render.ParseLayout(f.layout)
	if err != nil {
		return nil, fmt.Errorf("--layout: %w", err)
	}
	v4 := render.Config{Prefix: f.prefix, Layout: layout, NodeName: f.nodeName, MasqueradeAll: f.masqueradeAll}
	v6 := v4
	v6.IPv6 = true
	useV6 := false
	for _, s := range splitList(f.nodeIPs) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("--node-ip %q: not an IP address", s)
		}
		if a.Is6() {
			v6.NodeIPs, useV6 = append(v6.NodeIPs, a), true
		} else {
			v4.NodeIPs = append(v4.NodeIPs, a)
		}
	}
	for _, s := range splitList(f.clusterCIDRs) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--cluster-cidr %q: not a CIDR", s)
		}
		if p.Addr().Is6() {
			v6.ClusterCIDRs, useV6 = append(v6.ClusterCIDRs, p.Masked()), true
		} else {
			v4.ClusterCIDRs = append(v4.ClusterCIDRs, p.Masked())
		}
	}
	out := []render.Config{v4}
	if useV6 {
		out = append(out, v6)
	}
	for _, c := range out {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("--chain-prefix/--node-ip/--cluster-cidr: %w", err)
		}
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func run(f flags, logger logr.Logger) error {
	fams, err := families(f)
	if err != nil {
		return err
	}
	if _, err := labels.Parse(f.selector); err != nil {
		return fmt.Errorf("--service-selector %q: %w", f.selector, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	tracker := syncer.NewTracker()
	if err := tracker.Watch(ctx, client, f.selector); err != nil {
		return err
	}
	runner := &restore.Exec{}
	if f.netns != "" {
		runner.Prefix = []string{"ip", "netns", "exec", f.netns}
	}
	opts := syncer.Options{
		Families: fams, MinSyncPeriod: f.minSync, SyncPeriod: f.sync, CanaryPeriod: f.canary, Log: logger,
	}
	if f.dryRun {
		opts.DryRun = os.Stdout
	}
	if !f.once && !f.dryRun {
		broadcaster := record.NewBroadcaster(record.WithContext(ctx))
		broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
		defer broadcaster.Shutdown()
		opts.Recorder = broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "outpost-syncer", Host: f.nodeName})
	}
	s, err := syncer.New(tracker, runner, opts)
	if err != nil {
		return err
	}
	if err := tracker.WaitForSync(ctx, time.Minute); err != nil {
		return err
	}
	if f.once {
		return s.Sync(ctx, true)
	}
	if f.metricsAddr != "0" && f.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(syncer.Registry, promhttp.HandlerOpts{}))
		srv := &http.Server{Addr: f.metricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error(err, "Metrics server stopped")
			}
		}()
		defer srv.Close()
	}
	logger.Info("Syncing iptables", "node", f.nodeName, "prefix", f.prefix, "layout", f.layout, "families", len(fams))
	return s.Run(ctx)
}
