package faults

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
	"github.com/outpost-dev/outpost/test/lib/poll"
)

const (
	// restartMaxTTL is the resolution grace of the restart tests: long
	// enough for a restart, short enough to watch it end.
	restartMaxTTL = 10 * time.Second
	dbName        = "db.example.test"
)

// resolvedBackend is an ExternalBackend of one DNS name with a short grace.
func resolvedBackend(ns, name string, maxTTL time.Duration) *v1alpha1.ExternalBackend {
	return &v1alpha1.ExternalBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ExternalBackendSpec{
			Addresses:  []string{dbName},
			Ports:      []v1alpha1.BackendPort{{Port: 5432}},
			Resolution: &v1alpha1.Resolution{MinTTL: &metav1.Duration{Duration: time.Second}, MaxTTL: &metav1.Duration{Duration: maxTTL}},
		},
	}
}

func createNamespace(t *testing.T, c *operatorCluster, name string) {
	t.Helper()
	if err := c.k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

func getBackend(t *testing.T, c *operatorCluster, ns, name string) *v1alpha1.ExternalBackend {
	t.Helper()
	xb := &v1alpha1.ExternalBackend{}
	if err := c.k8s.Get(context.Background(), crclient.ObjectKey{Namespace: ns, Name: name}, xb); err != nil {
		t.Fatal(err)
	}
	return xb
}

// sliceAddresses reads slice name and returns its addresses and which are ready.
func sliceAddresses(c *operatorCluster, ns, name string) (all []string, ready []string, err error) {
	s := &discoveryv1.EndpointSlice{}
	if err := c.k8s.Get(context.Background(), crclient.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		return nil, nil, err
	}
	for _, ep := range s.Endpoints {
		all = append(all, ep.Addresses...)
		if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
			ready = append(ready, ep.Addresses...)
		}
	}
	slices.Sort(all)
	slices.Sort(ready)
	return all, ready, nil
}

func wantSlice(c *operatorCluster, ns, name string, want ...string) func() error {
	return func() error {
		got, _, err := sliceAddresses(c, ns, name)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("slice %s has %v, want %v", name, got, want)
		}
		return nil
	}
}

// TestOperatorRestartKeepsWhatItPublished kills the operator (SIGKILL)
// while the DNS server does not answer and starts a new one: the resolved
// addresses stay published until one maxTTL after they were last
// resolved. The restored health state is TestOperatorRestartKeepsHealthState's.
func TestOperatorRestartKeepsWhatItPublished(t *testing.T) {
	c := startOperatorCluster(t)
	dns := dnsserver.Start(t)
	dns.SetA(dbName, 1, "198.51.100.1", "198.51.100.2")

	const ns = "restart"
	createNamespace(t, c, ns)
	slicesSeen := watchSlices(t, c, ns)
	flags := []string{"--dns-server", dns.Addr}
	first := c.startOperator(t, flags...)

	ctx := context.Background()
	if err := c.k8s.Create(ctx, resolvedBackend(ns, "db", restartMaxTTL)); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, 60*time.Second, "db-ipv4 published", wantSlice(c, ns, "db-ipv4", "198.51.100.1", "198.51.100.2"))
	poll.Eventually(t, 10*time.Second, "two rows with lastResolved", func() error {
		rows := getBackend(t, c, ns, "db").Status.Endpoints
		if len(rows) != 2 || rows[0].LastResolved == nil {
			return fmt.Errorf("rows %+v, want two with lastResolved", rows)
		}
		return nil
	})

	// The DNS server goes silent and the operator dies at once.
	dns.Fail(dbName, dnsserver.Drop)
	first.kill()
	killed := time.Now()
	// The last resolution the new operator can know of is the one the
	// status recorded; the old operator may have resolved again since, in
	// which case the grace ends sooner, never later.
	stale := getBackend(t, c, ns, "db").Status.Endpoints[0].LastResolved.Time
	c.startOperator(t, flags...)

	poll.Eventually(t, 30*time.Second, "Resolved=False Timeout after the restart", func() error {
		xb := getBackend(t, c, ns, "db")
		cond := meta.FindStatusCondition(xb.Status.Conditions, v1alpha1.ConditionResolved)
		if cond == nil || cond.Reason != v1alpha1.ReasonTimeout {
			return fmt.Errorf("Resolved %+v, want the new operator's Timeout", cond)
		}
		return nil
	})
	if err := wantSlice(c, ns, "db-ipv4", "198.51.100.1", "198.51.100.2")(); err != nil {
		t.Errorf("after the restart with the DNS server down: %v", err)
	}
	if shrinks := slicesSeen.shrunk(); len(shrinks) > 0 {
		t.Errorf("what the operator published shrank across the restart: %v", shrinks)
	}
	// The grace counts from the last resolution, not from the restart.
	poll.Eventually(t, 30*time.Second, "db-ipv4 empty one maxTTL after lastResolved", wantSlice(c, ns, "db-ipv4"))
	dropped := time.Since(stale)
	t.Logf("restart with the DNS server down: addresses kept %s after their last resolution (maxTTL %s; operator killed %s after it)",
		dropped.Round(100*time.Millisecond), restartMaxTTL, killed.Sub(stale).Round(100*time.Millisecond))
	if dropped < restartMaxTTL-time.Second || dropped > restartMaxTTL+5*time.Second {
		t.Errorf("addresses dropped %s after their last resolution, want maxTTL (%s)", dropped, restartMaxTTL)
	}
	if shrinks := slicesSeen.shrunk(); len(shrinks) != 2 {
		t.Errorf("shrinks %v, want only the two addresses dropped at the end of the grace", shrinks)
	}
}

func objectKey(ns, name string) crclient.ObjectKey {
	return crclient.ObjectKey{Namespace: ns, Name: name}
}
