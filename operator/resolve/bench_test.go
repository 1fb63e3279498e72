package resolve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/test/lib/cpumeter"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
)

// The scenario: 1000 names re-resolved every 5s, run 5x faster (TTL 1s) so
// a few seconds of benchmark cover several rounds. Figures per resolution
// do not depend on the speed-up; "millicores@5s" scales them back to the
// real rate (1000 names / 5s = 200 resolutions/s). The in-process DNS
// server's CPU is included on both sides.
const (
	benchNames   = 1000
	realPeriod   = 5 * time.Second
	scaledTTL    = 1 // seconds
	benchWorkers = 16
)

// The runnables default to the controller-runtime logger, which complains
// when nobody set it; the operator's main sets it, the tests here do not log.
func init() { ctrllog.SetLogger(logr.Discard()) }

func benchServer(b *testing.B) (*dnsserver.Server, []string) {
	srv := dnsserver.Start(b)
	names := make([]string, benchNames)
	for i := range names {
		names[i] = fmt.Sprintf("db%d.bench.example.test", i)
		srv.SetA(names[i], scaledTTL, fmt.Sprintf("198.51.%d.%d", 100+i/250, 1+i%250))
	}
	return srv, names
}

// measure runs the scenario started by start for the window after a warm-up
// and reports CPU per query and goroutines.
func measure(b *testing.B, srv *dnsserver.Server, start func(ctx context.Context) (stop func())) {
	meter := cpumeter.Baseline()
	ctx, cancel := context.WithCancel(context.Background())
	stop := start(ctx)
	defer func() { cancel(); stop() }()
	time.Sleep(1500 * time.Millisecond) // first round and one refresh
	srv.ResetLog()
	window := cpumeter.Window()
	meter.Measure(window)
	cpu, n := meter.CPU(), srv.QueryCount()
	if n == 0 {
		b.Fatal("no resolutions")
	}
	perQuery := float64(cpu.Nanoseconds()) / float64(n)
	b.ReportMetric(perQuery, "cpu-ns/resolution")
	b.ReportMetric(float64(n)/window.Seconds(), "resolutions/s")
	b.ReportMetric(float64(meter.Goroutines()), "goroutines")
	b.ReportMetric(perQuery*benchNames/realPeriod.Seconds()/1e6, "millicores@5s")
}

// BenchmarkReresolve1000Names compares the Refresher with the obvious
// alternative: a goroutine per name polling net.Resolver (pure Go) on a
// ticker at the same rate (it cannot see TTLs, so it polls blindly).
func BenchmarkReresolve1000Names(b *testing.B) {
	b.Run("impl=refresher", func(b *testing.B) {
		for range b.N {
			srv, names := benchServer(b)
			measure(b, srv, func(ctx context.Context) func() {
				r, err := NewResolver([]string{srv.Addr}, time.Second)
				if err != nil {
					b.Fatal(err)
				}
				tr, err := NewRefresher(Options{Resolver: r, Workers: benchWorkers, Log: logr.Discard()})
				if err != nil {
					b.Fatal(err)
				}
				done := make(chan struct{})
				go func() { tr.Start(ctx); close(done) }() //nolint:errcheck
				for i, name := range names {
					o := types.NamespacedName{Namespace: "bench", Name: fmt.Sprint(i)}
					if err := tr.Ensure(o, []string{name}, Spec{MinTTL: time.Second, MaxTTL: time.Minute}); err != nil {
						b.Fatal(err)
					}
				}
				return func() { <-done }
			})
		}
	})
	b.Run("impl=reference-goroutine-per-name-net.Resolver", func(b *testing.B) {
		for range b.N {
			srv, names := benchServer(b)
			measure(b, srv, func(ctx context.Context) func() {
				var d net.Dialer
				res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return d.DialContext(ctx, network, srv.Addr)
				}}
				// The Refresher refreshes up to 10% early; poll at its mean rate.
				period := time.Duration(float64(scaledTTL*time.Second) * 0.95)
				var wg sync.WaitGroup
				for _, name := range names {
					wg.Go(func() {
						time.Sleep(time.Duration(rand.Int64N(int64(period))))
						tick := time.NewTicker(period)
						defer tick.Stop()
						for {
							_, _ = res.LookupIP(ctx, "ip4", name+".")
							select {
							case <-ctx.Done():
								return
							case <-tick.C:
							}
						}
					})
				}
				return wg.Wait
			})
		}
	})
}
