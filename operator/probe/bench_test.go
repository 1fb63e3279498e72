package probe

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/test/lib/cpumeter"
)

// The scenario: 1000 addresses probed every 10s, run 10x faster (every
// 1s) so a few seconds of benchmark cover several rounds. The backends are
// 1000 listeners on 127.1.x.y in this process; their accept loops are in
// the goroutine baseline (an HTTP server's per-connection goroutines are
// not, and count on both sides alike) and their CPU is included on both sides.
// "millicores@10s" scales the CPU per probe back to the real rate
// (1000 targets / 10s = 100 probes/s).
const (
	benchTargets   = 1000
	realInterval   = 10 * time.Second
	scaledInterval = time.Second
	benchPort      = 31496
	benchWorkers   = 32
)

// The runnables default to the controller-runtime logger, which complains
// when nobody set it; the operator's main sets it, the tests here do not log.
func init() { ctrllog.SetLogger(logr.Discard()) }

// loopbackBackends starts benchTargets listeners of the given type (TCP:
// accept and close; HTTP: answer 200) and counts connections or requests.
func loopbackBackends(b *testing.B, typ Type) ([]netip.Addr, *atomic.Int64) {
	var hits atomic.Int64
	web := &http.Server{
		ReadHeaderTimeout: time.Second,
		Handler:           http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }),
	}
	addrs := make([]netip.Addr, benchTargets)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(1 + i%250)})
		ln, err := net.Listen("tcp", netip.AddrPortFrom(addrs[i], benchPort).String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		if typ == HTTP {
			go web.Serve(ln) //nolint:errcheck // ends when ln closes
			continue
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				hits.Add(1)
				c.Close()
			}
		}()
	}
	return addrs, &hits
}

func measure(b *testing.B, accepted *atomic.Int64, start func(ctx context.Context) (stop func())) {
	meter := cpumeter.Baseline()
	ctx, cancel := context.WithCancel(context.Background())
	stop := start(ctx)
	defer func() { cancel(); stop() }()
	time.Sleep(scaledInterval + 500*time.Millisecond)
	window := cpumeter.Window()
	before := accepted.Load()
	meter.Measure(window)
	cpu, n := meter.CPU(), accepted.Load()-before
	if n == 0 {
		b.Fatal("no probes")
	}
	perProbe := float64(cpu.Nanoseconds()) / float64(n)
	b.ReportMetric(perProbe, "cpu-ns/probe")
	b.ReportMetric(float64(n)/window.Seconds(), "probes/s")
	b.ReportMetric(float64(meter.Goroutines()), "goroutines")
	b.ReportMetric(perProbe*benchTargets/realInterval.Seconds()/1e6, "millicores@10s")
}

// BenchmarkProbe1000Targets compares the Prober (bounded workers, one
// delaying queue) with a goroutine per target on a ticker, the shape of
// the kubelet's and Linkerd's probe workers, for TCP and HTTP checks.
func BenchmarkProbe1000Targets(b *testing.B) {
	for _, typ := range []Type{TCP, HTTP} {
		b.Run("type="+string(typ)+"/impl=prober", func(b *testing.B) {
			for range b.N {
				addrs, hits := loopbackBackends(b, typ)
				measure(b, hits, func(ctx context.Context) func() {
					p := NewProber(Options{Workers: benchWorkers, Log: logr.Discard()})
					done := make(chan struct{})
					go func() { p.Start(ctx); close(done) }() //nolint:errcheck
					spec := Spec{Checks: []Check{{Type: typ, Port: benchPort}}, Interval: scaledInterval, Timeout: 500 * time.Millisecond}
					for i, a := range addrs {
						o := types.NamespacedName{Namespace: "bench", Name: fmt.Sprint(i)}
						if err := p.Ensure(o, []Target{{Addr: a}}, spec); err != nil {
							b.Fatal(err)
						}
					}
					return func() { <-done }
				})
			}
		})
		b.Run("type="+string(typ)+"/impl=reference-goroutine-per-target", func(b *testing.B) {
			for range b.N {
				addrs, hits := loopbackBackends(b, typ)
				measure(b, hits, func(ctx context.Context) func() {
					var wg sync.WaitGroup
					for _, a := range addrs {
						wg.Go(func() { referenceWorker(ctx, typ, netip.AddrPortFrom(a, benchPort)) })
					}
					return wg.Wait
				})
			}
		})
	}
}

// referenceWorker probes one target on a ticker until ctx ends.
func referenceWorker(ctx context.Context, typ Type, addr netip.AddrPort) {
	var d net.Dialer
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + addr.String() + "/"
	time.Sleep(time.Duration(rand.Int64N(int64(scaledInterval))))
	tick := time.NewTicker(scaledInterval)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		if typ == TCP {
			if c, err := d.DialContext(pctx, "tcp", addr.String()); err == nil {
				c.Close()
			}
		} else if req, err := http.NewRequestWithContext(pctx, http.MethodGet, url, nil); err == nil {
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
