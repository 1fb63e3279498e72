package monitoring

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator"
	"github.com/outpost-dev/outpost/operator/syncer"
	"github.com/outpost-dev/outpost/operator/syncer/iptablestest"
	"github.com/outpost-dev/outpost/operator/syncer/render"
	_ "github.com/outpost-dev/outpost/plugin" // registers coredns_outpost_* on the default registry
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
	"github.com/outpost-dev/outpost/test/lib/netns"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// expression is one PromQL expression of config/monitoring and where it is.
type expression struct{ where, expr string }

// expressions returns the alerts' and the dashboard's expressions.
func expressions(t *testing.T) []expression {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(), "config", "monitoring")
	var rule struct {
		Spec struct {
			Groups []struct {
				Name  string
				Rules []struct{ Alert, Record, Expr string }
			}
		}
	}
	read(t, filepath.Join(dir, "alerts.yaml"), func(b []byte, v any) error { return yaml.Unmarshal(b, v) }, &rule)
	var out []expression
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			out = append(out, expression{fmt.Sprintf("alerts.yaml group %s rule %s%s", g.Name, r.Alert, r.Record), r.Expr})
		}
	}
	var dashboard struct {
		Panels []struct {
			Title   string
			Targets []struct{ RefID, Expr string }
		}
	}
	read(t, filepath.Join(dir, "dashboard.json"), json.Unmarshal, &dashboard)
	for _, p := range dashboard.Panels {
		for _, tg := range p.Targets {
			// Grafana's interval variables are not PromQL; any duration
			// stands in for them.
			expr := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m").Replace(tg.Expr)
			out = append(out, expression{fmt.Sprintf("dashboard.json panel %q target %s", p.Title, tg.RefID), expr})
		}
	}
	if len(out) == 0 {
		t.Fatal("config/monitoring holds no expression")
	}
	return out
}

func read(t *testing.T, path string, unmarshal func([]byte, any) error, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// promql parses as a Prometheus without feature flags does.
var promql = parser.NewParser(parser.Options{})

// metricNames parses expr and returns the metric names it selects.
func metricNames(expr string) ([]string, error) {
	node, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				err = fmt.Errorf("selector %s names no metric: it cannot be checked against the binaries", vs)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, err
}

func TestEveryExpressionParses(t *testing.T) {
	for _, e := range expressions(t) {
		if _, err := metricNames(e.expr); err != nil {
			t.Errorf("%s: %v\n%s", e.where, err, e.expr)
		}
	}
}

// TestEveryMetricIsExported runs the operator against a real API server, a
// syncer against a fake iptables and loads the CoreDNS plugin, gives each
// something to measure, and waits until every metric config/monitoring
// reads is on their registries.
func TestEveryMetricIsExported(t *testing.T) {
	used := map[string][]string{} // metric -> where
	for _, e := range expressions(t) {
		names, err := metricNames(e.expr)
		if err != nil {
			t.Fatalf("%s: %v", e.where, err)
		}
		for _, n := range names {
			used[n] = append(used[n], e.where)
		}
	}

	log.SetLogger(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	runOperator(ctx, t)
	runSyncer(ctx, t)

	var missing []string
	err := poll.Until(ctx, 100*time.Millisecond, time.Minute, "every metric config/monitoring reads exported", func() error {
		exported := exportedNames(t, crmetrics.Registry, syncer.Registry, prometheus.DefaultGatherer)
		missing = missing[:0]
		for n := range used {
			if !exported[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("not exported: %s", strings.Join(missing, ", "))
		}
		return nil
	})
	if err != nil {
		slices.Sort(missing)
		for _, n := range missing {
			t.Errorf("%s is read by %s but no component exports it", n, strings.Join(used[n], "; "))
		}
	}
}

// exportedNames are the series names the registries hold, histograms'
// and summaries' suffixed names included.
func exportedNames(t *testing.T, gatherers ...prometheus.Gatherer) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, g := range gatherers {
		families, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range families {
			out[mf.GetName()] = true
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					out[mf.GetName()+s] = true
				}
			case dto.MetricType_SUMMARY:
				for _, s := range []string{"_sum", "_count"} {
					out[mf.GetName()+s] = true
				}
			}
		}
	}
	return out
}

// runOperator starts the operator with one backend that has a DNS name and
// a failing health check, so every per-backend series exists.
func runOperator(ctx context.Context, t *testing.T) {
	env, err := testenv.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	dns := dnsserver.Start(t)
	// Nothing listens on the namespace's addresses: every probe fails.
	host := netns.NewHost(t)
	dns.SetA("watched.outpost.test", 30, host.IPs[1].String())

	opts := operator.DefaultOptions()
	opts.MetricsBindAddress = "0"
	opts.HealthProbeBindAddress = "0"
	opts.LearnClusterRanges = false
	opts.DNSServers = []string{dns.Addr}
	mgr, err := operator.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("operator: %v", err)
		}
	}()
	k8s, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	xb := &v1alpha1.ExternalBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "watched"},
		Spec: v1alpha1.ExternalBackendSpec{
			Addresses: []string{host.IPs[0].String(), "watched.outpost.test"},
			Ports:     []v1alpha1.BackendPort{{Port: 5432}},
			HealthCheck: &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckTCP, Interval: &metav1.Duration{Duration: time.Second},
				Timeout: &metav1.Duration{Duration: 500 * time.Millisecond}},
		},
	}
	if err := k8s.Create(ctx, xb); err != nil {
		t.Fatal(err)
	}
}

// runSyncer runs a syncer on a fake iptables with one Service whose slice
// carries a change time, so it measures a network programming latency.
func runSyncer(ctx context.Context, t *testing.T) {
	tracker := syncer.NewChangeTracker()
	s, err := syncer.New(tracker, iptablestest.NewFake(), syncer.Options{
		Families: []render.Config{{Prefix: "OUTPOST", NodeName: "node1", ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}},
		Log:      testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	tracker.SetService(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	})
	tracker.SetSlice(&discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1",
			Labels:      map[string]string{discoveryv1.LabelServiceName: "web"},
			Annotations: map[string]string{corev1.EndpointsLastChangeTriggerTime: time.Now().Format(time.RFC3339Nano)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.1"}}},
	})
	go func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("syncer: %v", err)
		}
	}()
}
