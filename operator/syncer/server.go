package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/outpost-dev/outpost/operator/syncer/conntrack"
	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/restore"
)

// Config is outpost-syncer's configuration, one field per flag; the flags
// and their defaults are documented in operator/syncer/README.md.
type Config struct {
	// NodeName decides which endpoints are local (--node-name).
	NodeName string
	// NodeIPs are the addresses node ports answer on, at most one set per
	// family (--node-ip); empty means every local address but loopback.
	NodeIPs []netip.Addr
	// ClusterCIDRs are the pod CIDRs: cluster IP traffic from outside them
	// is masqueraded (--cluster-cidr).
	ClusterCIDRs  []netip.Prefix
	MasqueradeAll bool          // --masquerade-all
	ChainPrefix   string        // --chain-prefix
	Layout        render.Layout // --layout
	// ServiceSelector is a label selector of the Services to program
	// (--service-selector); empty selects every Service.
	ServiceSelector string
	MinSyncPeriod   time.Duration // --min-sync-period
	SyncPeriod      time.Duration // --sync-period
	CanaryPeriod    time.Duration // --canary-period
	// MetricsBindAddress serves /metrics (--metrics-bind-address); "0"
	// or empty disables it.
	MetricsBindAddress string
	// HealthzBindAddress serves the liveness probe /healthz (Healthz)
	// (--healthz-bind-address); "0" or empty disables it.
	HealthzBindAddress string
	// Once syncs once and returns (--once).
	Once bool
	// DryRun prints each restore input instead of applying it (--dry-run).
	DryRun bool
	// Netns applies the rules inside this named network namespace
	// (--netns), through "ip netns exec".
	Netns string
	// IPTablesBackend is the backend to program (--iptables-backend);
	// restore.Auto detects the node's at start.
	IPTablesBackend restore.Backend
	// LocalhostNodePorts answers IPv4 node ports on 127.0.0.1 as
	// kube-proxy does by default (--iptables-localhost-nodeports): it sets
	// route_localnet=1 and drops what arrives for 127.0.0.0/8 from
	// elsewhere (see render.Config.LocalhostNodePorts).
	LocalhostNodePorts bool
}

// DefaultConfig returns the flag defaults.
func DefaultConfig() Config {
	return Config{
		ChainPrefix:   "OUTPOST",
		Layout:        render.Compact,
		MinSyncPeriod: time.Second,
		SyncPeriod:    time.Hour,
		CanaryPeriod:  10 * time.Second,
		// Detect, as kube-proxy's images do: the node's tools decide.
		IPTablesBackend: restore.Auto,
		// kube-proxy's default: a node's own processes reach node ports
		// on localhost, and replacing kube-proxy does not break them.
		LocalhostNodePorts: true,
		// The syncer runs with the host network: on every address its metrics
		// would be open to anyone who reaches the node (kube-proxy binds
		// 127.0.0.1 too).
		MetricsBindAddress: "127.0.0.1:9402",
		// Loopback for the same reason: the kubelet probes a host-network
		// Pod from the node. Not kube-proxy's 10256, so both can run.
		HealthzBindAddress: "127.0.0.1:10266",
	}
}

// Server is what the outpost-syncer binary runs: informers feeding a
// ChangeTracker, the Syncer applying it, the Events it records and the
// metrics endpoint. The binary's main only parses flags into a Config.
type Server struct {
	cfg         Config
	log         logr.Logger
	client      kubernetes.Interface
	changes     *ChangeTracker
	syncer      *Syncer
	runner      *restore.Exec
	broadcaster record.EventBroadcaster // nil with --once or --dry-run
	// dryRun receives the restore input with --dry-run.
	dryRun io.Writer
	// conntrack deletes stale UDP/SCTP entries in the programmed
	// namespace; nil with --dry-run.
	conntrack *conntrack.Netlink
	// health serves the health check node ports of LoadBalancer Services
	// with externalTrafficPolicy: Local; nil with --once or --dry-run.
	health *HealthServer
}

// localhostNodePorts turns route_localnet on where the rules go and reports
// whether node ports can answer on 127.0.0.1. Where it cannot be turned on
// (a container whose /proc/sys is read-only), the rules leave 127.0.0.0/8
// out rather than stop the datapath: the kernel would drop those packets
// anyway.
func localhostNodePorts(netnsName, sysctl string, log logr.Logger) bool {
	if err := enableSysctl(netnsName, sysctl); err != nil {
		log.Error(err, "Node ports do not answer on 127.0.0.1: cannot set net.ipv4.conf.all.route_localnet=1; run the syncer privileged, or pass --iptables-localhost-nodeports=false")
		return false
	}
	log.Info("Node ports answer on 127.0.0.1 too (--iptables-localhost-nodeports): net.ipv4.conf.all.route_localnet=1")
	return true
}

// NewServer checks cfg and builds a Server talking to the API server at
// restConfig. Errors name the flag to fix.
func NewServer(restConfig *rest.Config, cfg Config, log logr.Logger) (*Server, error) {
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	return newServer(client, cfg, log, os.Stdout)
}

func newServer(client kubernetes.Interface, cfg Config, log logr.Logger, dryRun io.Writer) (*Server, error) {
	fams, err := families(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := labels.Parse(cfg.ServiceSelector); err != nil {
		return nil, fmt.Errorf("--service-selector %q: %w", cfg.ServiceSelector, err)
	}
	if fams[0].AnswersLocalhostNodePorts() && !cfg.DryRun {
		fams[0].LocalhostNodePorts = localhostNodePorts(cfg.Netns, routeLocalnet, log)
	}
	s := &Server{cfg: cfg, log: log, client: client, changes: NewChangeTracker(), dryRun: dryRun, runner: &restore.Exec{}}
	if cfg.Netns != "" {
		s.runner.Prefix = []string{"ip", "netns", "exec", cfg.Netns}
	}
	opts := Options{
		Families: fams, MinSyncPeriod: cfg.MinSyncPeriod, SyncPeriod: cfg.SyncPeriod, CanaryPeriod: cfg.CanaryPeriod, Log: log,
		NodeName: cfg.NodeName,
	}
	if cfg.DryRun {
		opts.DryRun = dryRun
	} else {
		ct, err := conntrack.NewNetlink(cfg.Netns)
		if err != nil {
			return nil, err
		}
		s.conntrack = ct
		opts.Conntrack = ct
	}
	// A one-shot or dry run is a command, not a node component: it reports
	// to its caller, not through Events.
	if !cfg.Once && !cfg.DryRun {
		s.broadcaster = record.NewBroadcaster()
		opts.Recorder = s.broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "outpost-syncer", Host: cfg.NodeName})
		// The health check node ports listen where the rules are: the
		// node's network namespace (the syncer runs with the host network),
		// or --netns.
		s.health = NewHealthServer(cfg.NodeIPs, func() bool { return s.syncer.Healthy() }, log.WithName("healthcheck"))
		if cfg.Netns != "" {
			if s.health.listen, err = listenIn(cfg.Netns); err != nil {
				return nil, err
			}
		}
		opts.AfterSync = func() {
			if err := s.health.Sync(s.changes.HealthChecks(cfg.NodeName)); err != nil {
				log.Error(err, "Health check node ports")
			}
		}
	}
	if s.syncer, err = New(s.changes, s.runner, opts); err != nil {
		return nil, err
	}
	return s, nil
}

// families builds one render configuration per IP family in use: IPv4
// always, IPv6 when a node IP or cluster CIDR is IPv6.
func families(cfg Config) ([]render.Config, error) {
	v4 := render.Config{Prefix: cfg.ChainPrefix, Layout: cfg.Layout, NodeName: cfg.NodeName, MasqueradeAll: cfg.MasqueradeAll,
		LocalhostNodePorts: cfg.LocalhostNodePorts}
	v6 := v4
	v6.IPv6, v6.LocalhostNodePorts = true, false // IPv4 only, as in kube-proxy
	useV6 := false
	for _, a := range cfg.NodeIPs {
		if a.Is6() {
			v6.NodeIPs, useV6 = append(v6.NodeIPs, a), true
		} else {
			v4.NodeIPs = append(v4.NodeIPs, a)
		}
	}
	for _, p := range cfg.ClusterCIDRs {
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

// serve serves h on path at addr in the background until the returned
// function is called; addr "0" or empty serves nothing.
func (s *Server) serve(what, addr, path string, h http.Handler) (stop func()) {
	if addr == "0" || addr == "" {
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error(err, what+" server stopped", "address", addr)
		}
	}()
	return func() { _ = srv.Close() }
}

// selectBackend picks the iptables backend once, at start, as the wrapper in
// kube-proxy's images does: kubelet creates its hint chain when it starts,
// and detecting again later would count our own rules, while switching would
// strand everything already written in the other backend, which packets
// still traverse.
func (s *Server) selectBackend(ctx context.Context) error {
	requested := s.cfg.IPTablesBackend
	sel, err := s.runner.Select(ctx, requested)
	switch {
	case err != nil && requested == restore.Auto:
		return fmt.Errorf("--iptables-backend auto: %w", err)
	case err != nil:
		return fmt.Errorf("--iptables-backend %s: %w; install iptables' %[1]s commands, or use --iptables-backend auto", requested, err)
	}
	s.log.Info("iptables backend", "backend", sel.Backend.String(), "reason", sel.Reason,
		"restore", sel.Tools.Name(false, "restore"))
	setIPTablesBackend(sel.Backend)
	return nil
}

// Run watches the API server and syncs until ctx ends; with Once it syncs
// once and returns.
func (s *Server) Run(ctx context.Context) error {
	if s.conntrack != nil {
		defer s.conntrack.Close()
	}
	if s.health != nil {
		defer s.health.Close()
	}
	// A dry run prints rules without running any iptables command.
	if !s.cfg.DryRun {
		if err := s.selectBackend(ctx); err != nil {
			return err
		}
	}
	if err := s.changes.Watch(ctx, s.client, s.cfg.ServiceSelector); err != nil {
		return err
	}
	if s.broadcaster != nil {
		s.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.client.CoreV1().Events("")})
		defer s.broadcaster.Shutdown()
	}
	if err := s.changes.WaitForSync(ctx, time.Minute); err != nil {
		return err
	}
	if s.cfg.Once {
		return s.syncer.Sync(ctx, true)
	}
	defer s.serve("Metrics", s.cfg.MetricsBindAddress, "/metrics", promhttp.HandlerFor(Registry, promhttp.HandlerOpts{}))()
	defer s.serve("Health", s.cfg.HealthzBindAddress, "/healthz",
		Healthz{Start: time.Now(), LastSuccess: s.syncer.LastSuccess, Bound: 2 * s.cfg.SyncPeriod})()
	s.log.Info("Syncing iptables", "node", s.cfg.NodeName, "prefix", s.cfg.ChainPrefix, "layout", s.cfg.Layout.String(),
		"families", len(s.syncer.families))
	return s.syncer.Run(ctx)
}
