package notify_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/outpost-dev/outpost/operator/notify"
	"github.com/outpost-dev/outpost/operator/probe"
	"github.com/outpost-dev/outpost/operator/resolve"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// stand-in for the ExternalBackend reconciler: a ConfigMap names a DNS
// name in data.name; the reconciler resolves it with the Refresher, probes
// every address with the Prober and writes "addr=ready|notready,..." to
// data.endpoints. It shows the whole wiring with a real API server and a
// real manager: record or listener changes reach the object through
// notify.Source without any reconcile waiting on DNS or probes.
type reconciler struct {
	client    client.Client
	refresher *resolve.Refresher
	prober    *probe.Prober
	port      int
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cm corev1.ConfigMap
	if err := r.client.Get(ctx, req.NamespacedName, &cm); err != nil {
		r.refresher.Forget(req.NamespacedName)
		r.prober.Forget(req.NamespacedName)
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	name := cm.Data["name"]
	if err := r.refresher.Ensure(req.NamespacedName, []string{name}, resolve.Spec{MinTTL: time.Second, MaxTTL: time.Minute}); err != nil {
		return ctrl.Result{}, err
	}
	st, _ := r.refresher.Lookup(req.NamespacedName, name)
	var targets []probe.Target
	for _, a := range st.Addrs() {
		targets = append(targets, probe.Target{Addr: a, Host: name})
	}
	spec := probe.Spec{Checks: []probe.Check{{Type: probe.TCP, Port: r.port}}, Interval: 200 * time.Millisecond, Timeout: 200 * time.Millisecond, HealthyThreshold: 1, UnhealthyThreshold: 3}
	if err := r.prober.Ensure(req.NamespacedName, targets, spec); err != nil {
		return ctrl.Result{}, err
	}
	var rows []string
	for _, t := range targets {
		state := "ready"
		if !r.prober.Status(req.NamespacedName, t.Addr).Ready {
			state = "notready"
		}
		rows = append(rows, t.Addr.String()+"="+state)
	}
	if got := strings.Join(rows, ","); cm.Data["endpoints"] != got {
		cm.Data["endpoints"] = got
		return ctrl.Result{}, r.client.Update(ctx, &cm)
	}
	return ctrl.Result{}, nil
}

func TestWiringWithManager(t *testing.T) {
	_, cfg := testenv.StartForTest(t)

	dns := dnsserver.Start(t)
	dns.SetA("db.example.test", 1, "127.0.0.2")
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// --- the wiring the ExternalBackend reconciler needs ---
	wake := notify.NewSource()
	resolver, err := resolve.NewResolver([]string{dns.Addr}, time.Second) // or resolve.ServersFromResolvConf("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	refresher, err := resolve.NewRefresher(resolve.Options{Resolver: resolver, Notify: wake.Notify})
	if err != nil {
		t.Fatal(err)
	}
	prober := probe.NewProber(probe.Options{Notify: wake.Notify})
	if err := mgr.Add(refresher); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(prober); err != nil {
		t.Fatal(err)
	}
	rec := &reconciler{client: mgr.GetClient(), refresher: refresher, prober: prober, port: int(port)}
	if err := ctrl.NewControllerManagedBy(mgr).Named("wiring").For(&corev1.ConfigMap{}).WatchesRawSource(wake).Complete(rec); err != nil {
		t.Fatal(err)
	}
	// ---
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	c := mgr.GetClient()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"}, Data: map[string]string{"name": "db.example.test"}}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: "default", Name: "db"}
	waitEndpoints := func(want string, within time.Duration) {
		t.Helper()
		var got string
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var cur corev1.ConfigMap
			if err := mgr.GetAPIReader().Get(ctx, key, &cur); err != nil { // not the cache: it may lag the Create
				t.Fatal(err)
			}
			if got = cur.Data["endpoints"]; got == want {
				return
			}
		}
		t.Fatalf("endpoints %q, want %q within %s", got, want, within)
	}
	waitEndpoints("127.0.0.2=ready", 5*time.Second)

	// A record change (TTL 1s) reaches the object through the Refresher.
	dns.SetA("db.example.test", 1, "127.0.0.2", "127.0.0.3")
	waitEndpoints("127.0.0.2=ready,127.0.0.3=ready", 3*time.Second)
	// 127.0.0.3 has no listener: the Prober marks it after three failures.
	waitEndpoints("127.0.0.2=ready,127.0.0.3=notready", 3*time.Second)

	// Deleting the owner stops its probes and resolutions (Forget).
	if err := c.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a query in flight may still land
	before := len(dns.Queries("db.example.test", 0))
	time.Sleep(1500 * time.Millisecond)
	if after := len(dns.Queries("db.example.test", 0)); after != before {
		t.Errorf("name asked %d more times after the owner was deleted", after-before)
	}
	if st := prober.Status(key, netip.MustParseAddr("127.0.0.2")); st.Known {
		t.Errorf("probe state kept after delete: %+v", st)
	}
}
