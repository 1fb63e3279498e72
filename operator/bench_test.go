package operator_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// BenchmarkReady1000 creates 1000 ExternalBackends with 3 addresses each
// against a real API server and reports the seconds until all are Ready.
// Run it with `make bench`.
func BenchmarkReady1000(b *testing.B) {
	const backends = 1000
	ctx, k8s := startOperator(b)
	for i := 0; b.Loop(); i++ {
		ns := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		reconciles := sumCounter(b, "controller_runtime_reconcile_total")
		writes := sumCounter(b, "outpost_operator_writes_total")
		start := time.Now()
		createBackends(ctx, b, k8s, ns, backends)
		created := time.Since(start)
		waitAllReady(ctx, b, k8s, ns, backends)
		b.ReportMetric(time.Since(start).Seconds(), "s-to-all-ready")
		b.ReportMetric(created.Seconds(), "s-to-create")
		b.ReportMetric((sumCounter(b, "controller_runtime_reconcile_total")-reconciles)/backends, "reconciles/backend")
		b.ReportMetric((sumCounter(b, "outpost_operator_writes_total")-writes)/backends, "writes/backend")
	}
}

var (
	benchOnce sync.Once
	benchStop func()
	benchCtx  context.Context
	benchK8s  client.Client
	benchErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchStop != nil {
		benchStop()
	}
	os.Exit(code)
}

// startOperator starts one API server and one operator for the whole test
// binary: controller names are process-wide, so `-count N` reuses them.
func startOperator(b *testing.B) (context.Context, client.Client) {
	benchOnce.Do(func() {
		ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
		env, cfg, err := testenv.Start()
		if err != nil {
			benchErr = err
			return
		}
		cfg.QPS = -1 // as ctrl.GetConfig in the binary: no client-side rate limit
		opts := operator.DefaultOptions()
		opts.MetricsBindAddress, opts.HealthProbeBindAddress = "0", "0"
		opts.SeveralPerProcess = true // the tests of this package run theirs in the same binary
		mgr, err := operator.New(cfg, opts)
		if err != nil {
			benchErr = err
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() { _ = mgr.Start(ctx); close(stopped) }()
		benchCtx = ctx
		benchStop = func() { // called by TestMain: the operator first, then its API server
			cancel()
			<-stopped
			_ = env.Stop()
		}
		benchK8s, benchErr = client.New(cfg, client.Options{Scheme: operator.Scheme()})
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchCtx, benchK8s
}

func sumCounter(b *testing.B, name string) float64 {
	families, err := metrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.Metric {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func createBackends(ctx context.Context, b *testing.B, k8s client.Client, ns string, n int) {
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				xb := &v1alpha1.ExternalBackend{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("xb-%d", i)},
					Spec: v1alpha1.ExternalBackendSpec{
						Addresses: []string{
							fmt.Sprintf("192.168.%d.%d", i/250, i%250+1),
							fmt.Sprintf("198.51.100.%d", i%250+1),
							fmt.Sprintf("2001:db8::%x", i+1),
						},
						Ports: []v1alpha1.BackendPort{{Port: 5432}},
					},
				}
				if err := k8s.Create(ctx, xb); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func waitAllReady(ctx context.Context, b *testing.B, k8s client.Client, ns string, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		list := &v1alpha1.ExternalBackendList{}
		if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		ready := 0
		for _, xb := range list.Items {
			if meta.IsStatusConditionTrue(xb.Status.Conditions, v1alpha1.ConditionReady) && xb.Status.ReadyEndpoints == 3 {
				ready++
			}
		}
		if ready == n {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	b.Fatalf("not all %d ExternalBackends Ready after 5 minutes", n)
}
