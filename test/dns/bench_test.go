package dns

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// BenchmarkDNS compares outpost with the kubernetes plugin, the same
// bin/coredns over the same API data: at each size of BENCH_DNS_SERVICES
// (default 10000,50000) that many Services in 10 namespaces (every 10th
// headless), each with an EndpointSlice of 5 endpoints. For each size it
// measures, side by side:
//   - throughput (dnsperf) in three shapes: a bare server block, and the
//     shipped Corefile.example with its cache and without it (only the
//     plugin line differs between the plugins), each with CoreDNS pinned to
//     CPU 0 and dnsperf to CPU 1 and unpinned;
//   - CoreDNS CPU seconds per 100k queries and p99 latency at an equal
//     offered load, in the shipped shapes;
//   - propagation: EndpointSlice update to changed answer, 200 updates;
//   - memory of two fresh processes in the shipped shape: peak RSS during
//     the initial sync and during a relist after kube-apiserver restarts,
//     and RSS at BENCH_DNS_RSS_AT (default 5s,60s,300s) after sync.
//
// BENCH_DNS_SHAPES (default bare,shipped,shipped+cache,memory) picks what
// to measure, e.g. memory alone at a size where throughput was measured
// already.
//
// Every figure is the median of BENCH_DNS_ROUNDS (default 5) interleaved
// rounds (ABBA: kubernetes, outpost, outpost, kubernetes, ...), all rounds
// printed; a round runs dnsperf once through a file of BENCH_DNS_QUERIES
// queries (default 100000), so both plugins answer the same queries and
// their response-code counts must be equal. The figures also go to
// BENCH_OUT (default bin/bench/dns.json) with every round, for make plots.
//
// Run it with `make bench-dns` (dnsperf must be installed; as root, for
// the peak-RSS reset through /proc/PID/clear_refs).
func BenchmarkDNS(b *testing.B) {
	if _, err := exec.LookPath("dnsperf"); err != nil {
		b.Fatal("dnsperf not installed (apt-get install dnsperf)")
	}
	const namespaces = 10
	cfg := benchConfig{
		sizes:   envInts(b, "BENCH_DNS_SERVICES", []int{10000, 50000}),
		rounds:  envInt("BENCH_DNS_ROUNDS", 5),
		queries: envInt("BENCH_DNS_QUERIES", 100000),
		cpuLoad: envInt("BENCH_DNS_CPU_QPS", 0),
		rssAt:   envDurations(b, "BENCH_DNS_RSS_AT", []time.Duration{5 * time.Second, 60 * time.Second, 300 * time.Second}),
		// BENCH_DNS_PROFILE=DIR writes a CPU profile of each pinned
		// CoreDNS under 5 s of dnsperf after its warm-up, per size and
		// shape, to DIR/<services>-<shape>-<plugin>.pprof, to see where the
		// time goes (go tool pprof -top bin/coredns DIR/10000-shipped-outpost.pprof).
		profileDir: os.Getenv("BENCH_DNS_PROFILE"),
		shapes:     envShapes(b),
	}
	if cfg.rounds < 5 {
		fmt.Printf("BENCH_DNS_ROUNDS=%d: fewer than 5 rounds, a trial run; its medians are not results\n", cfg.rounds)
	}
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = filepath.Join(testenv.RepoRoot(), "bin", "bench", "dns.json")
	}
	fastClient(b)
	res := &results{}
	populated := 0
	for _, size := range cfg.sizes {
		start := time.Now()
		populate(b, populated, size, namespaces)
		populated = max(populated, size)
		fmt.Printf("\n=== %d Services + %d EndpointSlices (populated in %s)\n", size, size, time.Since(start).Round(time.Second))
		queries := writeQueryFile(b, size, namespaces, cfg.queries)
		for _, sh := range benchShapes {
			if cfg.shapes[sh.name] {
				measureShape(b, &cfg, res, size, namespaces, sh, queries)
			}
		}
		if cfg.shapes[memoryShape] {
			measureMemory(b, &cfg, res, size, namespaces)
		}
		// After each size, so that a run stopped later keeps its figures.
		if err := res.write(out); err != nil {
			b.Fatal(err)
		}
	}
	res.print()
	fmt.Printf("\nfigures written to %s\n", out)
	if k := res.median(cfg.sizes[0], "shipped/pinned", "kubernetes", "qps"); k > 0 {
		b.ReportMetric(res.median(cfg.sizes[0], "shipped/pinned", "outpost", "qps")/k, "qps-ratio")
	}
}

// memoryShape names measureMemory in BENCH_DNS_SHAPES.
const memoryShape = "memory"

// envShapes reads BENCH_DNS_SHAPES: the names of benchShapes and
// memoryShape to measure, all by default.
func envShapes(b *testing.B) map[string]bool {
	known := []string{memoryShape}
	for _, sh := range benchShapes {
		known = append(known, sh.name)
	}
	chosen := map[string]bool{}
	v := os.Getenv("BENCH_DNS_SHAPES")
	if v == "" {
		for _, name := range known {
			chosen[name] = true
		}
		return chosen
	}
	for f := range strings.SplitSeq(v, ",") {
		name := strings.TrimSpace(f)
		if !slices.Contains(known, name) {
			b.Fatalf("BENCH_DNS_SHAPES=%q: %q is none of %s", v, name, strings.Join(known, ", "))
		}
		chosen[name] = true
	}
	return chosen
}

// benchConfig is what the BENCH_DNS_* knobs chose.
type benchConfig struct {
	sizes      []int
	rounds     int
	queries    int
	cpuLoad    int // QPS offered in the CPU rounds; 0: half the kubernetes plugin's pinned QPS, shipped shape without cache
	rssAt      []time.Duration
	profileDir string
	shapes     map[string]bool // BENCH_DNS_SHAPES
}

// cpuProfile saves a CPU profile of the CoreDNS whose pprof plugin listens
// on port, taken over the next seconds.
func cpuProfile(b *testing.B, port, seconds int, path string) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, seconds))
	if err != nil {
		b.Errorf("cpu profile: %v", err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, data)
	}
	if err == nil {
		err = os.WriteFile(path, data, 0o644)
	}
	if err != nil {
		b.Errorf("cpu profile: %v", err)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// envInts reads a comma-separated list of integers, such as
// BENCH_DNS_SERVICES=10000,50000.
func envInts(b *testing.B, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want positive integers separated by commas, such as 10000,50000", name, v)
		}
		out = append(out, n)
	}
	slices.Sort(out) // populate adds the Services of each size to the last's
	return out
}

// envDurations reads a comma-separated list of Go durations, such as
// BENCH_DNS_RSS_AT=5s,60s.
func envDurations(b *testing.B, name string, def []time.Duration) []time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []time.Duration
	for f := range strings.SplitSeq(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d < 0 {
			b.Fatalf("%s=%q: want Go durations separated by commas, such as 5s,60s,300s", name, v)
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// fastClient lifts client-side rate limits for populating the API.
func fastClient(b *testing.B) {
	cfg := *env.Config
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		b.Fatal(err)
	}
	kube = c
}

func benchNamespace(i, namespaces int) string { return fmt.Sprintf("bench-%d", i%namespaces) }
func benchService(i int) string               { return fmt.Sprintf("svc-%05d", i) }

// endpointIP numbers endpoint addresses through 192.168.0.0/16.
func endpointIP(k int) string { return fmt.Sprintf("192.168.%d.%d", (k>>8)&255, k&255) }

// populate creates Services from..to-1 with their EndpointSlices, and the
// namespaces when from is 0.
func populate(b *testing.B, from, to, namespaces int) {
	ctx := context.Background()
	for i := range namespaces {
		if from > 0 {
			break // made with the first Services
		}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace(i, namespaces)}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				ns, name := benchNamespace(i, namespaces), benchService(i)
				svc := clusterIPService(ns, name, false, port("http", 80))
				if i%10 == 0 {
					svc = headlessService(ns, name, port("http", 80))
				}
				es := &discovery.EndpointSlice{
					ObjectMeta:  metav1.ObjectMeta{Name: name + "-x", Namespace: ns, Labels: map[string]string{discovery.LabelServiceName: name}},
					AddressType: discovery.AddressTypeIPv4,
					Ports:       []discovery.EndpointPort{slicePort("http", 80)},
				}
				for j := range 5 {
					ready := true
					es.Endpoints = append(es.Endpoints, discovery.Endpoint{Addresses: []string{endpointIP(i*5 + j)}, Conditions: discovery.EndpointConditions{Ready: &ready}})
				}
				_, err := kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
				if err == nil {
					_, err = kube.DiscoveryV1().EndpointSlices(ns).Create(ctx, es, metav1.CreateOptions{})
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("%s/%s: %w", ns, name, err):
					default:
					}
				}
			}
		})
	}
	start := time.Now()
	for i := from; i < to; i++ {
		if done := i - from; done > 0 && done%5000 == 0 {
			fmt.Printf("populate: %d of %d Services and their slices created (%s)\n", done, to-from, time.Since(start).Round(time.Second))
		}
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// synced reports whether CoreDNS on port answers for the last of services
// Services (populate creates them in order).
func synced(port, services, namespaces int) error {
	last := services - 1
	return answersA(port, benchService(last)+"."+benchNamespace(last, namespaces)+".svc.cluster.local.")
}

// answersA reports whether CoreDNS on port answers name with an address.
func answersA(port int, name string) error {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Net: "udp", Timeout: time.Second}).Exchange(m, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return fmt.Errorf("port %d answers %s %s with %d records", port, name, dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	return nil
}

// writeQueryFile writes a dnsperf query file of n queries: ClusterIP A
// 70%, headless A 10%, SRV 5%, AAAA (NODATA) 5%, missing names (NXDOMAIN)
// 10%.
func writeQueryFile(b *testing.B, services, namespaces, n int) string {
	path := filepath.Join(b.TempDir(), "queries.txt")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(7, 7))
	fqdn := func(i int) string {
		return benchService(i) + "." + benchNamespace(i, namespaces) + ".svc.cluster.local"
	}
	for range n {
		i := rng.IntN(services)
		switch r := rng.IntN(20); {
		case r < 14:
			if i%10 == 0 {
				i = (i + 1) % services // keep headless at its own share
			}
			fmt.Fprintf(w, "%s A\n", fqdn(i))
		case r < 16:
			fmt.Fprintf(w, "%s A\n", fqdn(i-i%10))
		case r == 16:
			fmt.Fprintf(w, "_http._tcp.%s SRV\n", fqdn(i))
		case r == 17:
			fmt.Fprintf(w, "%s AAAA\n", fqdn(i))
		default:
			fmt.Fprintf(w, "nosuch-%d.%s.svc.cluster.local A\n", i, benchNamespace(i, namespaces))
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// propagation updates an endpoint of a headless Service n times and times,
// for each port, how long until the new address is answered. It returns
// p50 and p99 in milliseconds for each port.
func propagation(b *testing.B, kPort, oPort, n, namespaces int) (k, o [2]float64) {
	ctx := context.Background()
	var kLat, oLat []float64
	for u := range n {
		i := (u % 1000) * 10 // headless Services
		ns, svc := benchNamespace(i, namespaces), benchService(i)
		name := svc + "." + ns + ".svc.cluster.local."
		es, err := kube.DiscoveryV1().EndpointSlices(ns).Get(ctx, svc+"-x", metav1.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		newIP := fmt.Sprintf("198.51.100.%d", u%250+1)
		if es.Endpoints[0].Addresses[0] == newIP {
			newIP = fmt.Sprintf("203.0.113.%d", u%250+1)
		}
		es.Endpoints[0].Addresses = []string{newIP}
		var wg sync.WaitGroup
		var kd, od time.Duration
		begin := time.Now()
		if _, err := kube.DiscoveryV1().EndpointSlices(ns).Update(ctx, es, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { kd = waitForAddress(b, kPort, name, newIP, begin) })
		wg.Go(func() { od = waitForAddress(b, oPort, name, newIP, begin) })
		wg.Wait()
		kLat = append(kLat, float64(kd.Microseconds())/1000)
		oLat = append(oLat, float64(od.Microseconds())/1000)
	}
	pct := func(v []float64) [2]float64 {
		slices.Sort(v)
		return [2]float64{v[len(v)/2], v[len(v)*99/100]}
	}
	return pct(kLat), pct(oLat)
}

func waitForAddress(b *testing.B, port int, name, ip string, begin time.Time) time.Duration {
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// A fine poll: the figure is a latency, and a coarser one would add to it.
	if err := poll.Until(context.Background(), 200*time.Microsecond, 30*time.Second-time.Since(begin),
		fmt.Sprintf("%s answered with %s on port %d", name, ip, port), func() error {
			r, _, err := c.Exchange(m, addr)
			if err != nil {
				return err
			}
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok && a.A.String() == ip {
					return nil
				}
			}
			return fmt.Errorf("answer %v", r.Answer)
		}); err != nil {
		b.Fatal(err)
	}
	return time.Since(begin)
}
