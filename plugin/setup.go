package outpost

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnsutil"
	"github.com/coredns/coredns/plugin/pkg/upstream"
	"github.com/go-logr/logr"
	meta "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/outpost-dev/outpost/internal/version"
)

func init() { plugin.Register(pluginName, setup) }

func setup(c *caddy.Controller) error {
	// Not klog.InitFlags: it panics on reload.
	klog.SetLogger(logr.New(&klogSink{}))
	build := version.Get()
	log.Infof("outpost %s (revision %s)", build.Version, build.Revision)
	o, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	o.upstream = upstream.New()

	ctrl, err := newController(o)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	o.ctrl = ctrl

	c.OnStartup(func() error {
		o.localIPs = boundIPs(c)
		return o.start(context.Background())
	})
	c.OnShutdown(o.stop)

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		o.Next = next
		return o
	})
	return nil
}

// parse reads one outpost block. Every error names the directive at fault.
func parse(c *caddy.Controller) (*Outpost, error) {
	var o *Outpost
	for c.Next() {
		if o != nil {
			return nil, plugin.ErrOnce
		}
		var err error
		if o, err = parseBlock(c); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func parseBlock(c *caddy.Controller) (*Outpost, error) {
	o := New(plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys))
	o.primaryZone = -1
	for i, z := range o.Zones {
		if dnsutil.IsReverse(z) == 0 {
			o.primaryZone = i
			break
		}
	}
	if o.primaryZone == -1 {
		return nil, c.Errf("outpost needs at least one forward (non-reverse) zone, got %v", o.Zones)
	}

	for c.NextBlock() {
		directive := c.Val()
		args := c.RemainingArgs()
		switch directive {
		case "kubeconfig":
			if len(args) != 1 && len(args) != 2 {
				return nil, c.Errf("kubeconfig takes PATH [CONTEXT], got %d arguments", len(args))
			}
			overrides := &clientcmd.ConfigOverrides{}
			if len(args) == 2 {
				overrides.CurrentContext = args[1]
			}
			o.clientConfig = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
				&clientcmd.ClientConfigLoadingRules{ExplicitPath: args[0]}, overrides)
		case "endpoint":
			if len(args) == 0 {
				return nil, c.Errf("endpoint takes the API server URL")
			}
			if len(args) > 1 {
				log.Warningf("endpoint: only the first URL %q is used", args[0])
			}
			if !strings.HasPrefix(args[0], "http://") && !strings.HasPrefix(args[0], "https://") {
				return nil, c.Errf("endpoint: %q is not an http(s) URL", args[0])
			}
			o.endpoint = args[0]
		case "tls":
			if len(args) != 3 {
				return nil, c.Errf("tls takes CERT KEY CACERT, got %d arguments", len(args))
			}
			o.tlsCert, o.tlsKey, o.tlsCA = args[0], args[1], args[2]
		case "namespaces":
			if len(args) == 0 {
				return nil, c.Errf("namespaces takes at least one namespace")
			}
			for _, ns := range args {
				o.namespaces[ns] = struct{}{}
			}
		case "labels":
			if len(args) == 0 {
				return nil, c.Errf("labels takes a label selector expression")
			}
			expr := strings.Join(args, " ")
			ls, err := meta.ParseToLabelSelector(expr)
			if err != nil {
				return nil, c.Errf("labels: cannot parse selector %q: %v", expr, err)
			}
			o.labelSelector = ls
		case "ttl":
			if len(args) != 1 {
				return nil, c.Errf("ttl takes one number of seconds (0-3600)")
			}
			t, err := strconv.Atoi(args[0])
			if err != nil || t < 0 || t > 3600 {
				return nil, c.Errf("ttl must be a number of seconds in [0, 3600], got %q", args[0])
			}
			o.ttl = uint32(t) // #nosec G115 -- range checked above
		case "endpoint_pod_names":
			if len(args) != 0 {
				return nil, c.Errf("endpoint_pod_names takes no arguments")
			}
			o.podNames = true
		case "noendpoints":
			if len(args) != 0 {
				return nil, c.Errf("noendpoints takes no arguments")
			}
			o.noEndpoints = true
		case "ignore":
			if len(args) != 1 || args[0] != "empty_service" {
				return nil, c.Errf("ignore takes exactly one value, empty_service; got %q", strings.Join(args, " "))
			}
			o.ignoreEmptyService = true
		case "fallthrough":
			o.Fall.SetZonesFromArgs(args)
		case "startup_timeout":
			if len(args) != 1 {
				return nil, c.Errf("startup_timeout takes one duration (e.g. 5s)")
			}
			d, err := time.ParseDuration(args[0])
			if err != nil || d < 0 {
				return nil, c.Errf("startup_timeout must be a non-negative duration such as 5s, got %q", args[0])
			}
			o.startupTimeout = d
		case "snapshot":
			if err := parseSnapshot(c, o, args); err != nil {
				return nil, err
			}
		default:
			return nil, c.Errf("unknown property '%s'", directive)
		}
	}
	if o.endpoint == "" && o.tlsCert != "" {
		return nil, c.Errf("tls needs endpoint")
	}
	if o.clientConfig != nil && o.endpoint != "" {
		return nil, c.Errf("kubeconfig and endpoint are mutually exclusive")
	}
	return o, nil
}

// parseSnapshot reads `snapshot PATH [INTERVAL] [max-age DURATION]`.
func parseSnapshot(c *caddy.Controller, o *Outpost, args []string) error {
	const syntax = "snapshot takes a file PATH, an optional write INTERVAL and an optional max-age DURATION"
	if n := len(args); n >= 2 && args[n-2] == "max-age" {
		d, err := time.ParseDuration(args[n-1])
		if err != nil || d <= 0 {
			return c.Errf("snapshot max-age must be a positive duration such as 24h, got %q", args[n-1])
		}
		o.snapshotMaxAge = d
		args = args[:n-2]
	}
	if len(args) != 1 && len(args) != 2 {
		return c.Errf(syntax)
	}
	o.snapshotPath = args[0]
	if len(args) == 2 {
		d, err := time.ParseDuration(args[1])
		if err != nil || d <= 0 {
			return c.Errf("snapshot interval must be a positive duration such as 10s, got %q", args[1])
		}
		o.snapshotInterval = d
	}
	return nil
}
