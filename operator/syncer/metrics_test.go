package syncer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
)

func TestRegistryExportsBuildInfo(t *testing.T) {
	newTestSyncer(t) // registers the metrics
	if n, err := testutil.GatherAndCount(Registry, "outpost_build_info"); err != nil || n != 1 {
		t.Fatalf("outpost_build_info series on the syncer's /metrics = %d (%v), want 1", n, err)
	}
}

// programmed returns the count and sum of the network programming latency
// histogram of one family.
func programmed(t *testing.T, family string) (uint64, float64) {
	t.Helper()
	families, err := Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "outpost_syncer_network_programming_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "family" && l.GetValue() == family {
					return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return 0, 0
}

func TestNetworkProgrammingLatencyFromTheSlicesTriggerTimeToTheAppliedRules(t *testing.T) {
	ctx := context.Background()
	s, tr, fake := newTestSyncer(t)
	tr.SetService(service("web", "10.96.0.10", tcpPort("http", 80)))
	// A change from before this syncer started was programmed by its
	// predecessor: not counted, as in kube-proxy.
	old := slice("web", "web-old", "http", 8080, "10.244.1.1")
	old.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: tr.started.Add(-time.Minute).Format(time.RFC3339Nano)}
	tr.SetSlice(old)
	if err := s.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	count0, sum0 := programmed(t, "IPv4")

	changed := slice("web", "web-new", "http", 8080, "10.244.1.2")
	at := time.Now()
	changed.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: at.Format(time.RFC3339Nano)}
	tr.SetSlice(changed)
	// Not in the kernel yet: nothing to observe until a sync succeeds.
	fake.FailNext = errors.New("iptables-restore: resource busy")
	if err := s.Sync(ctx, false); err == nil {
		t.Fatal("the sync the fake fails succeeded")
	}
	if count, _ := programmed(t, "IPv4"); count != count0 {
		t.Fatalf("observed %d latencies before the change was applied, want 0", count-count0)
	}
	if err := s.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	count, sum := programmed(t, "IPv4")
	if count-count0 != 1 {
		t.Fatalf("observed %d latencies for one change, want 1", count-count0)
	}
	// The observation reads the wall clock, the bound the monotonic one.
	if got, most := sum-sum0, applied.Sub(at).Seconds()+1e-3; got < 0 || got > most {
		t.Errorf("network programming latency %.6fs, want between 0 and %.6fs", got, most)
	}
}
