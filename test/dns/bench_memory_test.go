package dns

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/internal/benchresult"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// measureMemory measures the memory of fresh processes, each plugin in its
// own, pinned (GOMAXPROCS 1, as under a one-CPU limit) and unpinned, in
// cfg.rounds rounds: peak RSS (VmHWM) during the initial sync, RSS at each
// of cfg.rssAt after sync with its two parts (RssAnon, the process's own
// memory, and RssFile, the binary's pages mapped from the page cache, which
// every process of the binary has), and peak RSS during the relist after
// kube-apiserver restarts. The four processes of a round run side by side,
// started in the other plugin's order every other round (ABBA), and every
// round is printed.
func measureMemory(b *testing.B, cfg *benchConfig, res *results, services, namespaces int) {
	type key struct{ mode, plugin, metric string }
	rounds := map[key][]float64{}
	var keys []key
	record := func(mode, plugin, metric string, v float64) {
		k := key{mode, plugin, metric}
		if _, ok := rounds[k]; !ok {
			keys = append(keys, k)
		}
		rounds[k] = append(rounds[k], v)
	}
	for round := range cfg.rounds {
		figures := memoryRound(b, cfg, services, namespaces, round%4 == 1 || round%4 == 2)
		for _, f := range figures {
			record(f.Mode, f.Side, f.Metric, f.Value)
		}
		for _, mode := range memoryModes {
			fmt.Printf("%-36s round %d  kubernetes %s  outpost %s\n", fmt.Sprintf("%s memory (%d Services)", mode, services), round+1,
				memoryLine(figures, mode, "kubernetes"), memoryLine(figures, mode, "outpost"))
		}
	}
	for _, k := range keys {
		res.figures = append(res.figures, benchresult.Rounds(k.metric, k.mode, unitOf(k.metric), services, k.plugin, rounds[k]))
	}
}

// memoryModes are the modes measureMemory reports.
var memoryModes = []string{"shipped+cache/pinned", "shipped+cache/unpinned"}

// memoryRound is one round of measureMemory; outpostFirst starts the
// outpost processes before the kubernetes ones.
func memoryRound(b *testing.B, cfg *benchConfig, services, namespaces int, outpostFirst bool) []benchresult.Figure {
	var (
		mu      sync.Mutex
		figures []benchresult.Figure
	)
	add := func(s *benchServer, metric string, v float64) {
		mu.Lock()
		defer mu.Unlock()
		figures = append(figures, benchresult.Figure{Metric: metric, Mode: s.mode, Unit: unitOf(metric), Size: services, Side: s.plugin, Value: v})
	}
	var servers []*benchServer
	for _, pinned := range []bool{true, false} {
		for _, s := range startBenchServers(b, benchShape{name: "memory", shipped: true, cache: true}, services, namespaces, pinned, false, outpostFirst) {
			s.mode = "shipped+cache/" + pinning(pinned)
			servers = append(servers, s)
			add(s, "peak_sync_mib", s.status(b, "VmHWM:")[0])
		}
	}
	defer stopBenchServers(servers)
	// The waits overlap: both processes are read at their own times after
	// their own sync.
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			for _, at := range cfg.rssAt {
				time.Sleep(time.Until(s.syncedAt.Add(at)))
				seconds := int(at.Seconds())
				// One read, so that the parts add up to the whole.
				rss := s.status(b, "VmRSS:", "RssAnon:", "RssFile:")
				add(s, fmt.Sprintf("rss_%ds_mib", seconds), rss[0])
				add(s, fmt.Sprintf("anon_%ds_mib", seconds), rss[1])
				add(s, fmt.Sprintf("file_%ds_mib", seconds), rss[2])
			}
		})
	}
	wg.Wait()

	for _, s := range servers {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.proc.Pid()), []byte("5"), 0); err != nil {
			b.Fatalf("reset the peak RSS of %s's CoreDNS through /proc/PID/clear_refs (run as root): %v", s.plugin, err)
		}
	}
	if err := testenv.StopAPIServer(env); err != nil {
		b.Fatal(err)
	}
	if err := testenv.StartAPIServer(env); err != nil {
		b.Fatal(err)
	}
	// A Service made after the restart is answered only once a plugin's
	// watches are back, which for a watch too old for the new API server's
	// cache means after its relist.
	ctx := context.Background()
	ns, name := benchNamespace(0, namespaces), fmt.Sprintf("relist-%d", services)
	poll.Eventually(b, 60*time.Second, "create a Service once kube-apiserver is back", func() error {
		_, err := kube.CoreV1().Services(ns).Create(ctx, clusterIPService(ns, name, false, port("http", 80)), metav1.CreateOptions{})
		return err
	})
	for _, s := range servers {
		// The kubernetes plugin's reflector backs off for up to 30 s (plus
		// jitter) while the API server is away.
		poll.Eventually(b, 3*time.Minute, s.plugin+" answers a Service made after the API server restarted", func() error {
			return answersA(s.port, name+"."+ns+".svc.cluster.local.")
		})
	}
	for _, s := range servers {
		add(s, "peak_relist_mib", s.status(b, "VmHWM:")[0])
	}
	// Leave the data as populate made it for the next round and size.
	if err := kube.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
	return figures
}

// memoryLine is one plugin's memory figures of a round in mode.
func memoryLine(figures []benchresult.Figure, mode, plugin string) string {
	var parts []string
	for _, f := range figures {
		if f.Mode == mode && f.Side == plugin {
			parts = append(parts, fmt.Sprintf("%s %.1f", strings.TrimSuffix(f.Metric, "_mib"), f.Value))
		}
	}
	return strings.Join(parts, " ") + " MiB"
}

// status reads memory figures of /proc/PID/status ("VmHWM:", "VmRSS:",
// ...) in MiB, in the order asked, from one read of the file.
func (s *benchServer) status(b *testing.B, fields ...string) []float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.proc.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	mib := map[string]float64{}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) >= 2 && slices.Contains(fields, f[0]) {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatalf("/proc/%d/status %s %q: %v", s.proc.Pid(), f[0], f[1], err)
			}
			mib[f[0]] = kb / 1024
		}
	}
	values := make([]float64, len(fields))
	for i, field := range fields {
		v, ok := mib[field]
		if !ok {
			b.Fatalf("/proc/%d/status has no %s", s.proc.Pid(), field)
		}
		values[i] = v
	}
	return values
}
