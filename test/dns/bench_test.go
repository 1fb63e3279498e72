package dns

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// BenchmarkDNS compares outpost with the kubernetes plugin in the same
// bin/coredns over the same API data: 10,000 Services (10% headless), each
// with an EndpointSlice of 5 endpoints. It reports, side by side:
//   - throughput (dnsperf, equal durations, alternating plugins),
//   - p99 latency at an equal offered load (dnsperf -Q with -v),
//   - RSS of two separate CoreDNS processes (one per plugin) after sync,
//   - propagation: EndpointSlice update to changed answer, 200 updates.
//
// Run it with `make bench-dns` (dnsperf must be installed).
func BenchmarkDNS(b *testing.B) {
	if _, err := exec.LookPath("dnsperf"); err != nil {
		b.Fatal("dnsperf not installed (apt-get install dnsperf)")
	}
	const (
		services   = 10000
		namespaces = 10
	)
	fastClient(b)
	start := time.Now()
	populate(b, services, namespaces)
	fmt.Printf("populated %d Services + %d EndpointSlices in %s\n", services, services, time.Since(start).Round(time.Second))

	kc := testenv.AdminKubeconfigFile(b, env, "coredns-test", "")
	block := func(plugin string, port int) string {
		return fmt.Sprintf(".:%d {\n    bind 127.0.0.1\n    %s cluster.local in-addr.arpa ip6.arpa {\n        kubeconfig %s\n        startup_timeout 120s\n    }\n}\n", port, plugin, kc)
	}
	// CoreDNS on CPU 0 and dnsperf on CPU 1, so that the server, not the
	// load generator, is what saturates.
	kPort, oPort := loopback.FreePort(b), loopback.FreePort(b)
	// BENCH_DNS_PROFILE=DIR writes a CPU profile of CoreDNS under each
	// plugin's first throughput run to DIR/<plugin>.pprof, to see where the
	// time goes (go tool pprof -top bin/coredns DIR/outpost.pprof).
	profileDir, pprofPort := os.Getenv("BENCH_DNS_PROFILE"), 0
	pprofBlock := ""
	if profileDir != "" {
		pprofPort = loopback.FreePort(b)
		pprofBlock = fmt.Sprintf(".:%d {\n    bind 127.0.0.1\n    pprof 127.0.0.1:%d\n}\n", loopback.FreePort(b), pprofPort)
	}
	startCoreDNSWith(b, block("kubernetes", kPort)+block("outpost", oPort)+pprofBlock, oPort, []string{"taskset", "-c", "0"})
	waitSynced(b, kPort, oPort, services, namespaces)

	queries := writeQueryFile(b, services, namespaces)
	// Throughput: short runs in ABBA order (kubernetes, outpost, outpost,
	// kubernetes, ...), equal total time for both. The machine is shared, so
	// load from elsewhere drifts; each adjacent pair gives a ratio, and the
	// median of those ratios is what is reported next to the mean QPS.
	seconds := envInt("BENCH_DNS_SECONDS", 4)
	rounds := envInt("BENCH_DNS_ROUNDS", 12)
	qps := map[string]float64{}
	var ratios []float64
	for round := range rounds {
		order := []struct {
			name string
			port int
		}{{"kubernetes", kPort}, {"outpost", oPort}}
		if round%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		got := map[string]float64{}
		for _, side := range order {
			var profiled sync.WaitGroup
			if round == 0 && profileDir != "" {
				profiled.Go(func() { cpuProfile(b, pprofPort, seconds-1, filepath.Join(profileDir, side.name+".pprof")) })
			}
			got[side.name] = dnsperf(b, side.port, queries, seconds, 0, false).qps
			profiled.Wait()
			qps[side.name] += got[side.name] / float64(rounds)
		}
		ratios = append(ratios, got["outpost"]/got["kubernetes"])
		fmt.Printf("round %2d  kubernetes %8.0f QPS  outpost %8.0f QPS  ratio %.2f\n", round+1, got["kubernetes"], got["outpost"], ratios[len(ratios)-1])
	}
	slices.Sort(ratios)
	medianRatio := ratios[len(ratios)/2]
	// Latency at the same offered load for both: half of what the
	// kubernetes plugin sustains, so neither is saturated.
	load := envInt("BENCH_DNS_P99_QPS", int(qps["kubernetes"]/2))
	kLat := dnsperf(b, kPort, queries, 10, load, true)
	oLat := dnsperf(b, oPort, queries, 10, load, true)

	kProp, oProp := propagation(b, kPort, oPort, 200, namespaces)

	// RSS: one process per plugin, measured after sync and a settle time.
	rss, anon, file := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, plugin := range []string{"kubernetes", "outpost"} {
		p := loopback.FreePort(b)
		srv := startCoreDNSWith(b, block(plugin, p), p, []string{"taskset", "-c", "0"})
		waitSynced1(b, p, services, namespaces)
		time.Sleep(5 * time.Second)
		rss[plugin], anon[plugin], file[plugin] = rssMiB(b, srv.Pid())
		srv.Stop()
	}

	fmt.Printf("\n%-34s %12s %12s %8s\n", "", "kubernetes", "outpost", "ratio")
	row := func(name, unit string, k, o float64) {
		fmt.Printf("%-34s %10.1f%-2s %10.1f%-2s %7.2fx\n", name, k, unit, o, unit, o/k)
	}
	row("throughput, mean (QPS)", "", qps["kubernetes"], qps["outpost"])
	fmt.Printf("%-34s %38.2fx\n", "throughput, median of pair ratios", medianRatio)
	row(fmt.Sprintf("p99 latency at %d QPS (ms)", load), "", kLat.p99*1000, oLat.p99*1000)
	row("RSS after sync (MiB)", "", rss["kubernetes"], rss["outpost"])
	row("  of it anonymous (MiB)", "", anon["kubernetes"], anon["outpost"])
	row("  of it the binary's pages (MiB)", "", file["kubernetes"], file["outpost"])
	row("propagation p50 (ms)", "", kProp[0], oProp[0])
	row("propagation p99 (ms)", "", kProp[1], oProp[1])
	b.ReportMetric(medianRatio, "qps-ratio")
	b.ReportMetric(rss["outpost"]/rss["kubernetes"], "rss-ratio")
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

func populate(b *testing.B, services, namespaces int) {
	ctx := context.Background()
	for i := range namespaces {
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
	for i := range services {
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

// waitSynced waits until both ports answer for the last Service created.
func waitSynced(b *testing.B, kPort, oPort, services, namespaces int) {
	waitSynced1(b, kPort, services, namespaces)
	waitSynced1(b, oPort, services, namespaces)
}

func waitSynced1(b *testing.B, port, services, namespaces int) {
	last := services - 1
	name := benchService(last) + "." + benchNamespace(last, namespaces) + ".svc.cluster.local."
	poll.Eventually(b, 120*time.Second, fmt.Sprintf("CoreDNS on port %d answers for the last of %d Services", port, services), func() error {
		r := query(b, "udp", port, name, dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return fmt.Errorf("port %d not synced: %s", port, dns.RcodeToString[r.Rcode])
		}
		return nil
	})
}

// writeQueryFile writes a dnsperf query file: ClusterIP A 60%, headless A
// 10%, SRV 10%, AAAA (NODATA) 10%, missing names (NXDOMAIN) 10%.
func writeQueryFile(b *testing.B, services, namespaces int) string {
	path := filepath.Join(b.TempDir(), "queries.txt")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(7, 7))
	for range 100000 {
		i := rng.IntN(services)
		name := benchService(i) + "." + benchNamespace(i, namespaces) + ".svc.cluster.local"
		switch r := rng.IntN(10); {
		case r < 6:
			if i%10 == 0 {
				i++ // keep headless at its own share
				name = benchService(i) + "." + benchNamespace(i, namespaces) + ".svc.cluster.local"
			}
			fmt.Fprintf(w, "%s A\n", name)
		case r == 6:
			i -= i % 10
			fmt.Fprintf(w, "%s.%s.svc.cluster.local A\n", benchService(i), benchNamespace(i, namespaces))
		case r == 7:
			fmt.Fprintf(w, "_http._tcp.%s SRV\n", name)
		case r == 8:
			fmt.Fprintf(w, "%s AAAA\n", name)
		default:
			fmt.Fprintf(w, "nosuch-%d.%s.svc.cluster.local A\n", i, benchNamespace(i, namespaces))
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return path
}

type perfResult struct {
	qps float64
	p99 float64 // seconds
}

var qpsLine = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)

// dnsperf runs dnsperf against 127.0.0.1:port. With verbose it also reads
// every query's latency (dnsperf -v) to compute the 99th percentile.
func dnsperf(b *testing.B, port int, queries string, seconds, maxQPS int, verbose bool) perfResult {
	args := []string{"-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", queries, "-l", strconv.Itoa(seconds), "-c", "4", "-q", "200", "-t", "2"}
	if maxQPS > 0 {
		args = append(args, "-Q", strconv.Itoa(maxQPS))
	}
	if verbose {
		args = append(args, "-v")
	}
	out, err := exec.Command("taskset", append([]string{"-c", "1", "dnsperf"}, args...)...).CombinedOutput()
	if err != nil {
		b.Fatalf("dnsperf: %v\n%s", err, out)
	}
	m := qpsLine.FindSubmatch(out)
	if m == nil {
		b.Fatalf("dnsperf output without QPS:\n%s", out)
	}
	res := perfResult{}
	res.qps, _ = strconv.ParseFloat(string(m[1]), 64)
	if verbose {
		var lat []float64
		for line := range strings.Lines(string(out)) {
			// "> NOERROR svc-00001.bench-1.svc.cluster.local A 0.000123"
			if !strings.HasPrefix(line, "> ") {
				continue
			}
			fields := strings.Fields(line)
			if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
				lat = append(lat, v)
			}
		}
		if len(lat) == 0 {
			b.Fatalf("dnsperf -v printed no latencies:\n%.2000s", out)
		}
		slices.Sort(lat)
		res.p99 = lat[len(lat)*99/100]
	}
	return res
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

// rssMiB reads a process's resident memory from /proc: VmRSS, and of it
// RssAnon (heap, stacks: what the plugin's data costs) and RssFile (pages of
// the binary, the same for both plugins but varying with the page cache:
// large folios map text in 2 MiB pieces).
func rssMiB(b *testing.B, pid int) (total, anon, file float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	fields := map[string]*float64{"VmRSS:": &total, "RssAnon:": &anon, "RssFile:": &file}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) >= 2 && fields[f[0]] != nil {
			kb, _ := strconv.ParseFloat(f[1], 64)
			*fields[f[0]] = kb / 1024
			delete(fields, f[0])
		}
	}
	if len(fields) > 0 {
		b.Fatalf("/proc/%d/status without %v", pid, slices.Collect(maps.Keys(fields)))
	}
	return total, anon, file
}
