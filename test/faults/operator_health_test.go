package faults

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/netns"
	"github.com/outpost-dev/outpost/test/lib/poll"
)

// TestOperatorRestartKeepsHealthState: an address failing its checks is
// published not ready; the operator is killed and, the backend healthy
// again meanwhile, started anew. The address stays not ready until
// healthyThreshold checks of the new operator pass, instead of counting as
// ready from its first reconcile as a new address would.
func TestOperatorRestartKeepsHealthState(t *testing.T) {
	const (
		ns               = "health-restart"
		interval         = time.Second
		healthyThreshold = 3
	)
	host := netns.NewHost(t) // a backend the API server accepts in a slice, reachable from here
	c := startOperatorCluster(t)
	createNamespace(t, c, ns)
	slicesSeen := watchSlices(t, c, ns)

	addr := host.IPs[0]
	srv := host.StartTCP(t, netip.AddrPortFrom(addr, 31496))
	srv.Stop()
	first := c.startOperator(t)
	xb := &v1alpha1.ExternalBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: v1alpha1.ExternalBackendSpec{
			Addresses: []string{addr.String()},
			Ports:     []v1alpha1.BackendPort{{Port: 3306, TargetPort: 31496}},
			HealthCheck: &v1alpha1.HealthCheck{
				Type:               v1alpha1.HealthCheckTCP,
				Interval:           &metav1.Duration{Duration: interval},
				Timeout:            &metav1.Duration{Duration: interval},
				HealthyThreshold:   healthyThreshold,
				UnhealthyThreshold: 1,
			},
		},
	}
	if err := c.k8s.Create(context.Background(), xb); err != nil {
		t.Fatal(err)
	}
	notReady := func() error {
		all, ready, err := sliceAddresses(c, ns, "db-ipv4")
		switch {
		case err != nil:
			return err
		case len(all) != 1 || len(ready) != 0:
			return fmt.Errorf("db-ipv4 has %v, ready %v; want %s published not ready", all, ready, addr)
		}
		return nil
	}
	poll.Eventually(t, 60*time.Second, "the failing address published not ready", notReady)

	first.kill()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	second := c.startOperator(t)
	var reconciling time.Time
	second.Eventually(t, 60*time.Second, "the new operator's workers started", func() error {
		if !strings.Contains(second.Log(), "Starting workers") {
			return fmt.Errorf("no workers yet")
		}
		reconciling = time.Now()
		return nil
	})
	poll.Eventually(t, 60*time.Second, "ready again after healthyThreshold passing checks", func() error {
		if !slicesSeen.readySince(addr.String(), reconciling) {
			return fmt.Errorf("%s not ready yet", addr)
		}
		return nil
	})
	readyAfter := slicesSeen.firstReadySince(addr.String(), reconciling).Sub(reconciling)
	t.Logf("restart with the backend healthy again: not ready for %s after the new operator started reconciling (healthyThreshold %d, interval %s)",
		readyAfter.Round(10*time.Millisecond), healthyThreshold, interval)
	// The first check may come at once; the healthyThreshold-th one no
	// sooner than that many intervals minus their jitter (10%) after it.
	if least := time.Duration(float64((healthyThreshold-1)*interval) * 0.9); readyAfter < least {
		t.Errorf("ready %s after the new operator started, want at least %s: the restored not-ready state was lost", readyAfter, least)
	}
}
