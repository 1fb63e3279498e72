package dns

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/process"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// A benchShape is the Corefile both plugins are measured in.
type benchShape struct {
	name           string
	shipped, cache bool // Corefile.example, with its cache line
}

// benchShapes: the shipped shape is what users run; there cache, metrics,
// errors and loadbalance wrap the response writer. The bare block shows the
// plugins alone.
var benchShapes = []benchShape{
	{name: "bare"},
	{name: "shipped", shipped: true},
	{name: "shipped+cache", shipped: true, cache: true},
}

// corefile returns the shape's Corefile for plugin and the DNS port it
// serves on.
func (sh benchShape) corefile(b *testing.B, plugin string) (string, int) {
	if sh.shipped {
		ex := exampleCorefile(b, plugin, sh.cache)
		return ex.corefile, ex.dns
	}
	port := loopback.FreePort(b)
	kc := testenv.AdminKubeconfigFile(b, env, "coredns-test", "")
	return fmt.Sprintf(".:%d {\n    bind 127.0.0.1\n    %s cluster.local in-addr.arpa ip6.arpa {\n        kubeconfig %s\n    }\n}\n", port, plugin, kc), port
}

// benchServer is one CoreDNS process serving one plugin.
type benchServer struct {
	plugin   string
	port     int
	proc     *process.Process
	pprof    int       // port of its pprof endpoint; 0 without one
	syncedAt time.Time // when it first answered for the last Service
	mode     string    // what its memory figures are recorded under
}

// startBenchServers starts one CoreDNS per plugin (kubernetes first,
// unless outpostFirst) in shape sh and waits until both answer for the last of services Services.
// Pinned ones run on CPU 0 from the start, so that the Go runtime sizes
// itself for one CPU (GOMAXPROCS 1), as in a pod limited to one CPU.
func startBenchServers(b *testing.B, sh benchShape, services, namespaces int, pinned, withPprof, outpostFirst bool) []*benchServer {
	var wrapper []string
	if pinned {
		wrapper = []string{"taskset", "-c", "0"}
	}
	plugins := []string{"kubernetes", "outpost"}
	if outpostFirst {
		slices.Reverse(plugins)
	}
	var servers []*benchServer
	for _, plugin := range plugins {
		corefile, port := sh.corefile(b, plugin)
		s := &benchServer{plugin: plugin, port: port}
		if withPprof {
			// A server block of its own: pprof does not wrap the writer,
			// but the measured block stays exactly the shape.
			s.pprof = loopback.FreePort(b)
			corefile += fmt.Sprintf(".:%d {\n    bind 127.0.0.1\n    pprof 127.0.0.1:%d\n}\n", loopback.FreePort(b), s.pprof)
		}
		s.proc = startCoreDNSWith(b, corefile, port, wrapper)
		servers = append(servers, s)
	}
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			errs[i] = s.proc.Until(context.Background(), 20*time.Millisecond, 10*time.Minute,
				fmt.Sprintf("%s answers for the last of %d Services", s.plugin, services),
				func() error { return synced(s.port, services, namespaces) })
			s.syncedAt = time.Now()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return servers
}

// stopBenchServers stops the servers together: each waits out its health
// plugin's lameduck first.
func stopBenchServers(servers []*benchServer) {
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(s.proc.Stop)
	}
	wg.Wait()
}

func pinning(pinned bool) string {
	if pinned {
		return "pinned"
	}
	return "unpinned"
}

// measureShape measures throughput in shape sh pinned and unpinned; in the
// shipped shapes also CPU per query and p99 latency at an equal offered
// load, and (without cache, which would hold old answers) propagation.
func measureShape(b *testing.B, cfg *benchConfig, res *results, services, namespaces int, sh benchShape, queries string) {
	onePass := []string{"-d", queries, "-n", "1"}
	for _, pinned := range []bool{true, false} {
		mode := sh.name + "/" + pinning(pinned)
		servers := startBenchServers(b, sh, services, namespaces, pinned, pinned && cfg.profileDir != "", false)
		// Warm-up: the first queries fault in pages, grow the goroutine and
		// buffer pools and fill the cache.
		for _, s := range servers {
			s.dnsperf(b, pinned, onePass...)
		}
		if pinned && cfg.profileDir != "" {
			for _, s := range servers {
				s.profile(b, filepath.Join(cfg.profileDir, fmt.Sprintf("%d-%s-%s.pprof", services, sh.name, s.plugin)), queries)
			}
		}
		runs := abba(b, mode, cfg.rounds, servers, func(s *benchServer) perfRun { return s.dnsperf(b, pinned, onePass...) })
		res.addRuns(services, mode, "qps", runs, func(r perfRun) float64 { return r.qps })
		if pinned && sh.shipped {
			measureAtLoad(b, cfg, res, services, mode, servers, onePass)
			if !sh.cache {
				k, o := propagation(b, servers[0].port, servers[1].port, 200, namespaces)
				res.add(services, mode, "kubernetes", "propagation_p50_ms", k[0])
				res.add(services, mode, "outpost", "propagation_p50_ms", o[0])
				res.add(services, mode, "kubernetes", "propagation_p99_ms", k[1])
				res.add(services, mode, "outpost", "propagation_p99_ms", o[1])
			}
		}
		stopBenchServers(servers)
	}
}

// measureAtLoad records CoreDNS CPU seconds per 100k queries and the p99
// latency of both (pinned) servers at the same offered load.
func measureAtLoad(b *testing.B, cfg *benchConfig, res *results, services int, mode string, servers []*benchServer, onePass []string) {
	load := cfg.cpuLoad
	if load == 0 {
		// Half of what the kubernetes plugin sustains without cache: neither
		// plugin is saturated, so both do the same work per second.
		load = int(res.median(services, "shipped/pinned", "kubernetes", "qps") / 2)
		if load == 0 {
			b.Fatal("the equal load is half the kubernetes plugin's shipped/pinned QPS: measure the shipped shape too (BENCH_DNS_SHAPES), or set BENCH_DNS_CPU_QPS")
		}
	}
	atLoad := append(slices.Clone(onePass), "-Q", strconv.Itoa(load), "-v")
	runs := abba(b, fmt.Sprintf("%s at %d QPS", mode, load), cfg.rounds, servers, func(s *benchServer) perfRun { return s.dnsperf(b, true, atLoad...) })
	res.add(services, mode, "", "offered_qps", float64(load))
	res.addRuns(services, mode, "cpu_s_per_100k", runs, func(r perfRun) float64 { return r.cpuPer100k() })
	res.addRuns(services, mode, "p99_ms", runs, func(r perfRun) float64 { return r.p99 * 1000 })
}

// abba runs each server once per round, kubernetes first in odd rounds and
// outpost first in even ones, so that a drift in the machine's load falls
// on both alike. It prints every round and fails when the two plugins'
// response codes differ: they answered the same queries.
func abba(b *testing.B, label string, rounds int, servers []*benchServer, run func(*benchServer) perfRun) map[string][]perfRun {
	runs := map[string][]perfRun{}
	for round := range rounds {
		order := slices.Clone(servers)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		got := map[string]perfRun{}
		for _, s := range order {
			got[s.plugin] = runWithoutLoss(label, round, s, run)
			runs[s.plugin] = append(runs[s.plugin], got[s.plugin])
		}
		k, o := got["kubernetes"], got["outpost"]
		fmt.Printf("%-36s round %d  kubernetes %s  outpost %s\n", label, round+1, k, o)
		if !maps.Equal(k.rcodes, o.rcodes) || k.lost != 0 || o.lost != 0 {
			b.Fatalf("%s round %d: the plugins' response codes differ on the same queries:\n  kubernetes %v, %d lost\n  outpost    %v, %d lost\n(lost: unanswered within dnsperf's 5 s timeout, three runs in a row)",
				label, round+1, k.rcodes, k.lost, o.rcodes, o.lost)
		}
	}
	return runs
}

// runWithoutLoss repeats a run (up to three times) in which dnsperf lost
// queries: the UDP socket's buffer overflowed or a query timed out on a busy
// machine, and the response codes of such a run cannot be compared.
func runWithoutLoss(label string, round int, s *benchServer, run func(*benchServer) perfRun) perfRun {
	r := run(s)
	for try := 2; r.lost > 0 && try <= 3; try++ {
		fmt.Printf("%-36s round %d  %s lost %d queries; run %d of 3\n", label, round+1, s.plugin, r.lost, try)
		r = run(s)
	}
	return r
}

// perfRun is one dnsperf run against one server.
type perfRun struct {
	qps             float64
	completed, lost int
	rcodes          map[string]int // "NOERROR": count
	p99             float64        // seconds; with -v only
	cpu             float64        // CoreDNS user+system seconds during the run
}

func (r perfRun) cpuPer100k() float64 { return r.cpu / float64(r.completed) * 100000 }

func (r perfRun) String() string {
	s := fmt.Sprintf("%7.0f QPS", r.qps)
	if r.p99 > 0 {
		s += fmt.Sprintf(" %5.2f CPU s/100k p99 %5.2f ms", r.cpuPer100k(), r.p99*1000)
	}
	return s
}

var (
	qpsLine       = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	completedLine = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	lostLine      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	rcodesLine    = regexp.MustCompile(`Response codes:\s+(.*)`)
	rcodeCount    = regexp.MustCompile(`([A-Z]+) (\d+) \(`)
)

// dnsperf runs dnsperf with args against the server (on CPU 1 when pinned)
// and reads its statistics, the server's CPU time during the run, and with
// -v in args every query's latency.
func (s *benchServer) dnsperf(b *testing.B, pinned bool, args ...string) perfRun {
	argv := append([]string{"dnsperf", "-s", "127.0.0.1", "-p", strconv.Itoa(s.port), "-c", "4", "-q", "100", "-t", "5"}, args...)
	if pinned {
		argv = append([]string{"taskset", "-c", "1"}, argv...)
	}
	before := processCPU(b, s.proc.Pid())
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	r := perfRun{cpu: processCPU(b, s.proc.Pid()) - before, rcodes: map[string]int{}}
	number := func(re *regexp.Regexp) float64 {
		m := re.FindSubmatch(out)
		if m == nil {
			b.Fatalf("dnsperf output without %q:\n%.3000s", re, out)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	r.qps, r.completed, r.lost = number(qpsLine), int(number(completedLine)), int(number(lostLine))
	if m := rcodesLine.FindSubmatch(out); m != nil {
		for _, c := range rcodeCount.FindAllSubmatch(m[1], -1) {
			r.rcodes[string(c[1])], _ = strconv.Atoi(string(c[2]))
		}
	}
	if slices.Contains(args, "-v") {
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
		r.p99 = lat[len(lat)*99/100]
	}
	return r
}

// profile writes a CPU profile of the server under 5 s of dnsperf load.
func (s *benchServer) profile(b *testing.B, path, queries string) {
	const seconds = 5
	var wg sync.WaitGroup
	wg.Go(func() { cpuProfile(b, s.pprof, seconds, path) })
	s.dnsperf(b, true, "-d", queries, "-l", strconv.Itoa(seconds))
	wg.Wait()
}

// clockTicks is the unit of /proc/PID/stat's times (sysconf(_SC_CLK_TCK),
// 100 on every Linux architecture Go supports).
const clockTicks = 100

// processCPU is the user+system CPU seconds a process has used
// (/proc/PID/stat, proc(5)).
func processCPU(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name, field 2, may hold spaces: count from after it.
	// Field 3 (state) is then the first, utime (14) and stime (15) the
	// 12th and 13th.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		b.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return (utime + stime) / clockTicks
}
