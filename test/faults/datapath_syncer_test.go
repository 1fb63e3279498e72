package faults

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/outpost-dev/outpost/test/lib/netns"
	"github.com/outpost-dev/outpost/test/lib/poll"
)

// loadTargets makes a ClusterIP and a NodePort Service over three
// backends, starts the syncer and waits until both answer.
func (w *dpWorld) loadTargets(env ...string) (*corev1.Service, *syncerProc, []string) {
	w.t.Helper()
	web := w.service("web", corev1.ServiceTypeNodePort, corev1.ProtocolTCP)
	w.endpoints(web, w.backends...)
	p := w.startSyncer(env...)
	targets := []string{clusterAddr(web), nodePortAddr(web)}
	for _, addr := range targets {
		poll.Eventually(w.t, 30*time.Second, fmt.Sprintf("%s answers", addr), func() error { _, err := w.get(addr, time.Second); return err })
	}
	return web, p, targets
}

// TestSyncerRestartUnderLoad stops the syncer with SIGTERM and with
// SIGKILL and starts it again while new connections keep coming: the rules
// stay while it is down, and its first sync replaces them atomically.
func TestSyncerRestartUnderLoad(t *testing.T) {
	w := newDPWorld(t)
	_, p, targets := w.loadTargets()
	jump := `-A PREROUTING -m comment --comment "kubernetes service portals" -j OUTPOST-SERVICES`
	load := w.startDPLoad(targets...)
	load.waitMore(t, dpRate)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		p.StopWith(sig)
		if nat := w.natRules(); !strings.Contains(nat, jump) {
			t.Fatalf("after %s the nat table lost our rules:\n%s", sig, nat)
		}
		load.waitMore(t, dpRate) // a second of load with no syncer
		p = w.startSyncer()
		took := p.waitSynced(t)
		load.waitMore(t, dpRate/2)
		t.Logf("%s: restarted syncer synced in %s", sig, took.Round(time.Millisecond))
	}
	logLoad(t, load, "two restarts (SIGTERM, SIGKILL)")
}

// restoreWrapper writes an iptables-restore that fails while failFile
// holds a positive count (decrementing it), or while the input contains
// the string in markerFile, and otherwise runs the real one. It logs the
// time of every call to callsFile. It returns the PATH entry to put first.
// The wrapper takes the name of each backend's command too
// (iptables-nft-restore, iptables-legacy-restore), whichever the syncer's
// --iptables-backend auto runs.
func restoreWrapper(t *testing.T) (dir, failFile, markerFile, callsFile string) {
	t.Helper()
	dir = t.TempDir()
	failFile, markerFile, callsFile = filepath.Join(dir, "fail"), filepath.Join(dir, "marker"), filepath.Join(dir, "calls")
	for _, name := range []string{"iptables-restore", "iptables-nft-restore", "iptables-legacy-restore"} {
		real, err := exec.LookPath(name)
		if err != nil {
			continue // not installed: the syncer does not run it either
		}
		script := fmt.Sprintf(`#!/bin/sh
in=$(mktemp)
trap 'rm -f "$in"' EXIT
cat > "$in"
date +%%s.%%N >> %[2]q
n=$(cat %[3]q 2>/dev/null || echo 0)
if [ "$n" -gt 0 ]; then
	echo $((n - 1)) > %[3]q
	echo "iptables-restore: injected failure" >&2
	exit 1
fi
if [ -s %[4]q ] && grep -qF -f %[4]q "$in"; then
	echo "iptables-restore: line 1 failed (injected: input holds $(cat %[4]q))" >&2
	exit 1
fi
%[1]q "$@" < "$in"
`, real, callsFile, failFile, markerFile)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, failFile, markerFile, callsFile
}

// callTimes reads the wrapper's call log.
func callTimes(t *testing.T, callsFile string) []time.Time {
	t.Helper()
	data, err := os.ReadFile(callsFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, line := range strings.Fields(string(data)) {
		var sec, nsec int64
		if _, err := fmt.Sscanf(strings.Replace(line, ".", " ", 1), "%d %d", &sec, &nsec); err != nil {
			t.Fatalf("wrapper call log %q: %v", line, err)
		}
		out = append(out, time.Unix(sec, nsec))
	}
	return out
}

// failedSync is a failed sync as the syncer logged it: when, and the
// backoff it announced before the next attempt.
type failedSync struct {
	at         time.Time
	retryAfter time.Duration
}

// syncAttempts returns the failed syncs the syncer logged and when it
// logged the first success after them (zero if it has not yet).
func syncAttempts(t *testing.T, log string) (failed []failedSync, recovered time.Time) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		var entry struct {
			TS    string  `json:"ts"`
			Msg   string  `json:"msg"`
			After float64 `json:"after"` // seconds, as zap writes durations
		}
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		isFailure := strings.HasPrefix(entry.Msg, "Sync failed")
		if !isFailure && !(len(failed) > 0 && entry.Msg == "Sync succeeded again") {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, entry.TS)
		if err != nil {
			t.Fatalf("syncer log time %q: %v", entry.TS, err)
		}
		if !isFailure {
			return failed, ts
		}
		failed = append(failed, failedSync{at: ts, retryAfter: time.Duration(entry.After * float64(time.Second))})
	}
	return failed, time.Time{}
}

// drained waits until n connections in a row avoid the backend.
func (w *dpWorld) drained(t *testing.T, addr, backend string, timeout time.Duration) {
	t.Helper()
	poll.Eventually(t, timeout, fmt.Sprintf("%s no longer reaches %s", addr, backend), func() error {
		for range 15 {
			got, err := w.get(addr, time.Second)
			if err != nil {
				return err
			}
			if got == backend {
				return fmt.Errorf("%s still answers on %s", backend, addr)
			}
		}
		return nil
	})
}

// TestSyncerRestoreFailsUnderLoad makes iptables-restore fail several times
// in a row while an endpoint is removed: the old rules keep serving, the
// retries back off, the failures show in metrics and Node Events, and the
// change is applied once the tool works again.
func TestSyncerRestoreFailsUnderLoad(t *testing.T) {
	w := newDPWorld(t)
	dir, failFile, _, callsFile := restoreWrapper(t)
	web, p, targets := w.loadTargets("PATH=" + dir + ":" + os.Getenv("PATH"))
	load := w.startDPLoad(targets...)
	load.waitMore(t, dpRate/2)

	const failures = 6
	if err := os.WriteFile(failFile, []byte(fmt.Sprint(failures)), 0o644); err != nil {
		t.Fatal(err)
	}
	before := len(callTimes(t, callsFile))
	start := time.Now()
	w.endpoints(web, w.backends[0], w.backends[1])
	w.drained(t, clusterAddr(web), w.backends[2].Name, 45*time.Second)
	converged := time.Since(start)
	load.waitMore(t, dpRate/2)

	// The rules are in the kernel as soon as a restore succeeds; the
	// syncer logs its recovery and resets its streak just after.
	var failedSyncs []failedSync
	poll.Eventually(t, 10*time.Second, "the syncer to log its recovery and end its failure streak", func() error {
		consecutive, err := p.metric("outpost_syncer_sync_consecutive_failures")
		if err != nil {
			return err
		}
		if consecutive != 0 {
			return fmt.Errorf("outpost_syncer_sync_consecutive_failures %v", consecutive)
		}
		var recovered time.Time
		if failedSyncs, recovered = syncAttempts(t, p.Log()); recovered.IsZero() {
			return fmt.Errorf("no \"Sync succeeded again\" after %d failed syncs in its log", len(failedSyncs))
		}
		return nil
	})
	calls := len(callTimes(t, callsFile)) - before
	failed, err := p.metric("outpost_syncer_restore_failures_total")
	if err != nil {
		t.Fatal(err)
	}
	var gaps, announced []time.Duration
	for i, f := range failedSyncs {
		announced = append(announced, f.retryAfter.Round(10*time.Millisecond))
		if i > 0 {
			gaps = append(gaps, f.at.Sub(failedSyncs[i-1].at).Round(10*time.Millisecond))
		}
	}
	t.Logf("%d injected failures: change applied after %s; %d iptables-restore runs; %d failed syncs, retries announced after %v, attempted %v apart; restore_failures_total %v",
		failures, converged.Round(time.Millisecond), calls, len(failedSyncs), announced, gaps, failed)
	if failed < 1 {
		t.Errorf("restore_failures_total %v: want the failures counted", failed)
	}
	// Backoff from --min-sync-period (100ms), doubling with 10% jitter,
	// and never retried before the announced delay. (The time between
	// attempts also holds each failing restore, which a busy machine
	// stretches, so the gaps themselves need not double.)
	if len(failedSyncs) < 2 {
		t.Fatalf("%d failed syncs logged, want at least 2 to see a backoff", len(failedSyncs))
	}
	for i := 1; i < len(failedSyncs); i++ {
		prev, cur := failedSyncs[i-1], failedSyncs[i]
		if float64(cur.retryAfter) < 1.8*float64(prev.retryAfter) {
			t.Errorf("retries did not back off: announced %v after failure %d, %v after failure %d", prev.retryAfter, i, cur.retryAfter, i+1)
		}
		if gap := cur.at.Sub(prev.at); gap < prev.retryAfter {
			t.Errorf("retried %v after failure %d, before the announced %v", gap, i, prev.retryAfter)
		}
	}
	if strings.Contains(p.Log(), "RulesRefused") || strings.Contains(p.Log(), "refuses this Service") {
		t.Error("a fault of iptables-restore itself was blamed on a Service")
	}
	poll.Eventually(t, 10*time.Second, "SyncFailed and SyncRecovered Events on the Node", func() error {
		reasons := w.events("Node", dpNodeName)
		if !slices.Contains(reasons, "SyncFailed") || !slices.Contains(reasons, "SyncRecovered") {
			return fmt.Errorf("Node Events %v, want SyncFailed and SyncRecovered", reasons)
		}
		return nil
	})
	logLoad(t, load, fmt.Sprintf("%d failed restores", failures))
}

// TestSyncerRefusedServiceDoesNotBlockOthers makes the kernel refuse one
// Service's rules (no Service the renderer can produce is refused by a
// real kernel that we know of, so the wrapper refuses any input holding
// that Service's name): the other Services, old and new, are
// programmed, and the refused one is named in an Event and a metric.
func TestSyncerRefusedServiceDoesNotBlockOthers(t *testing.T) {
	w := newDPWorld(t)
	dir, _, markerFile, _ := restoreWrapper(t)
	_, p, targets := w.loadTargets("PATH=" + dir + ":" + os.Getenv("PATH"))
	load := w.startDPLoad(targets...)
	load.waitMore(t, dpRate/2)

	// Its rules carry its name in their comments.
	if err := os.WriteFile(markerFile, []byte(dpNamespace+"/refused:p"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := w.service("refused", corev1.ServiceTypeClusterIP, corev1.ProtocolTCP)
	w.endpoints(refused, w.backends[0])
	start := time.Now()
	fresh := w.service("fresh", corev1.ServiceTypeClusterIP, corev1.ProtocolTCP)
	w.endpoints(fresh, w.backends[1])
	poll.Eventually(t, 30*time.Second, "the Service created during the fault answers", func() error { _, err := w.get(clusterAddr(fresh), time.Second); return err })
	converged := time.Since(start)
	poll.Eventually(t, 10*time.Second, "a RulesRefused Event on the refused Service", func() error {
		if reasons := w.events("Service", "refused"); !slices.Contains(reasons, "RulesRefused") {
			return fmt.Errorf("Events of Service refused: %v", reasons)
		}
		return nil
	})
	n, err := p.metric("outpost_syncer_services_refused_total")
	if err != nil || n < 1 {
		t.Errorf("services_refused_total %v (%v), want at least 1", n, err)
	}
	if _, err := w.get(clusterAddr(refused), 300*time.Millisecond); err == nil {
		t.Error("the refused Service answers: the wrapper did not refuse it")
	}
	t.Logf("a new Service created beside a refused one answered after %s", converged.Round(time.Millisecond))
	load.waitMore(t, dpRate/2)
	logLoad(t, load, "a refused Service")
}

// TestSyncerXtablesLockHeld holds the xtables lock for 10 s (as another
// iptables user would) while an endpoint is removed. iptables-legacy waits
// for it (-w 5, then the sync is retried); iptables-nft does not take it.
// Either way no connection is lost and the change lands.
func TestSyncerXtablesLockHeld(t *testing.T) {
	w := newDPWorld(t)
	web, _, targets := w.loadTargets()
	load := w.startDPLoad(targets...)
	load.waitMore(t, dpRate/2)

	const hold = 10 * time.Second
	lock := w.node.Cmd("flock", "/run/xtables.lock", "sleep", fmt.Sprint(hold.Seconds()))
	if err := lock.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lock.Process.Kill(); _ = lock.Wait() })
	poll.Eventually(t, 5*time.Second, "the xtables lock held by flock", func() error {
		// flock -n fails while the holder has it.
		if exec.Command("flock", "-n", "/run/xtables.lock", "true").Run() == nil {
			return fmt.Errorf("lock not held yet")
		}
		return nil
	})
	start := time.Now()
	w.endpoints(web, w.backends[0], w.backends[1])
	w.drained(t, clusterAddr(web), w.backends[2].Name, hold+45*time.Second)
	converged := time.Since(start)
	_ = lock.Wait()
	load.waitMore(t, dpRate/2)
	version, _ := exec.Command("iptables", "-V").Output()
	t.Logf("xtables lock held %s (%s): endpoint removal applied after %s", hold, strings.TrimSpace(string(version)), converged.Round(time.Millisecond))
	logLoad(t, load, "the xtables lock held")
}

// TestDatapathNatFlushedUnderLoad flushes the node's nat table ("iptables
// -t nat -F" keeps the chains, so only the missing jumps give it away) and
// measures how long connections fail.
func TestDatapathNatFlushedUnderLoad(t *testing.T) {
	w := newDPWorld(t)
	_, p, targets := w.loadTargets()
	load := w.startDPLoad(targets...)
	load.waitMore(t, dpRate/2)

	flushed := time.Now()
	w.node.Must(t, "iptables", "-t", "nat", "-F")
	poll.Eventually(t, 30*time.Second, "rules back after the flush", func() error {
		n, err := p.metric("outpost_syncer_canary_resyncs_total")
		if err != nil || n < 1 {
			return fmt.Errorf("canary_resyncs_total %v (%v)", n, err)
		}
		return nil
	})
	load.waitMore(t, dpRate)
	recovery, ok := load.recoveredAfter(flushed)
	attempted, failed, rate, _ := load.report()
	if !ok {
		t.Fatal("connections never recovered after the flush")
	}
	t.Logf("nat table flushed under %.0f connections/s: %d of %d connections failed, recovered %s after the flush (canary period %s)",
		rate, failed, attempted, recovery.Round(time.Millisecond), dpCanaryPeriod)
	// The canary runs every period; the resync that follows takes a few
	// hundred milliseconds of iptables on this machine.
	if limit := dpCanaryPeriod + 2*time.Second; recovery > limit {
		t.Errorf("recovered %s after the flush, want within the canary period (%s) plus a sync (limit %s)", recovery, dpCanaryPeriod, limit)
	}
}

// TestConntrackUDPFlowMovesOffRemovedEndpoint sends datagrams on one
// 5-tuple (fixed client port) to a UDP ClusterIP. conntrack pins the flow
// to the endpoint its first datagram was DNATed to; once that endpoint is
// removed (it still answers: only the EndpointSlice changed), the next
// datagram must reach a remaining endpoint.
func TestConntrackUDPFlowMovesOffRemovedEndpoint(t *testing.T) {
	w := newDPWorld(t)
	dns := w.service("dns", corev1.ServiceTypeClusterIP, corev1.ProtocolUDP)
	w.endpoints(dns, w.backends[0], w.backends[1])
	p := w.startSyncer()
	p.waitSynced(t)

	var conn *net.UDPConn
	if err := w.client.Do(func() (err error) {
		conn, err = net.DialUDP("udp4", &net.UDPAddr{Port: 40053}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(clusterAddr(dns))))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func() (string, error) {
		if _, err := conn.Write([]byte("hello")); err != nil {
			return "", err
		}
		_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 64)
		n, err := conn.Read(buf)
		if err != nil {
			return "", err
		}
		name, _, err := netns.ParseWhoAmI(string(buf[:n]))
		return name, err
	}
	var pinned string
	poll.Eventually(t, 30*time.Second, "a datagram answered", func() (err error) { pinned, err = ask(); return err })
	for range 5 {
		if got, err := ask(); err != nil || got != pinned {
			t.Fatalf("one 5-tuple answered by %q (%v) after %q: conntrack does not pin it", got, err, pinned)
		}
	}
	var remaining netns.Backend
	for _, b := range w.backends[:2] {
		if b.Name != pinned {
			remaining = b
		}
	}
	start := time.Now()
	w.endpoints(dns, remaining)
	datagrams := 0
	poll.Eventually(t, 15*time.Second, "a datagram to the remaining endpoint", func() error {
		datagrams++
		got, err := ask()
		if err != nil {
			return err
		}
		if got != remaining.Name {
			return fmt.Errorf("the flow still reaches the removed %s", got)
		}
		return nil
	})
	moved := time.Since(start)
	deleted, err := p.metric("outpost_syncer_conntrack_entries_deleted_total")
	if err != nil || deleted < 1 {
		t.Errorf("conntrack_entries_deleted_total %v (%v), want at least 1", deleted, err)
	}
	t.Logf("UDP flow on a fixed 5-tuple moved from the removed %s to %s after %s (%d datagrams); conntrack entries deleted: %v",
		pinned, remaining.Name, moved.Round(time.Millisecond), datagrams, deleted)
}
