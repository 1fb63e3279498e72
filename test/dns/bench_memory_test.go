package dns

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// measureMemory starts one fresh CoreDNS per plugin in the shipped shape
// with cache (what users run) over the same data and records, per plugin:
//   - peak RSS (VmHWM) up to the end of the initial sync: the decoded
//     lists, which a memory limit must allow for;
//   - RSS (VmRSS) at each of cfg.rssAt after its sync: the steady state,
//     once the Go runtime has returned the sync's garbage to the system;
//   - peak RSS during the relist after kube-apiserver restarts (VmHWM
//     reset through /proc/PID/clear_refs just before).
func measureMemory(b *testing.B, cfg *benchConfig, res *results, services, namespaces int) {
	// Pinned (GOMAXPROCS 1, as under a one-CPU limit) and unpinned, each
	// plugin in its own process; the four wait out their RSS times together.
	var servers []*benchServer
	for _, pinned := range []bool{true, false} {
		for _, s := range startBenchServers(b, benchShape{name: "memory", shipped: true, cache: true}, services, namespaces, pinned, false) {
			s.mode = "shipped+cache/" + pinning(pinned)
			servers = append(servers, s)
			res.add(services, s.mode, s.plugin, "peak_sync_mib", s.status(b, "VmHWM:"))
		}
	}
	defer stopBenchServers(servers)
	// The waits overlap: both processes are read at their own times after
	// their own sync.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			for _, at := range cfg.rssAt {
				time.Sleep(time.Until(s.syncedAt.Add(at)))
				rss := s.status(b, "VmRSS:")
				mu.Lock()
				res.add(services, s.mode, s.plugin, fmt.Sprintf("rss_%ds_mib", int(at.Seconds())), rss)
				mu.Unlock()
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
	if err := env.ControlPlane.GetAPIServer().Start(); err != nil {
		b.Fatalf("start kube-apiserver again: %v", err)
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
		res.add(services, s.mode, s.plugin, "peak_relist_mib", s.status(b, "VmHWM:"))
	}
	for _, mode := range []string{"shipped+cache/pinned", "shipped+cache/unpinned"} {
		fmt.Printf("%-36s kubernetes %s  outpost %s\n", fmt.Sprintf("%s memory (%d Services)", mode, services),
			res.memoryLine(services, mode, "kubernetes"), res.memoryLine(services, mode, "outpost"))
	}
	// Leave the data as populate made it for the next size.
	if err := kube.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
}

// status reads a memory figure of /proc/PID/status ("VmHWM:", "VmRSS:")
// in MiB.
func (s *benchServer) status(b *testing.B, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.proc.Pid()))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatalf("/proc/%d/status %s %q: %v", s.proc.Pid(), field, f[1], err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("/proc/%d/status has no %s", s.proc.Pid(), field)
	return 0
}
