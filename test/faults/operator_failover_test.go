package faults

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

const (
	// failoverBackends each resolve dbName.
	failoverBackends = 5
	// failoverMaxTTL outlasts a leader's lease (15 s) and an API server
	// outage, so any shrink the tests see is the operator's fault.
	failoverMaxTTL = time.Minute
	apiOutage      = 10 * time.Second
)

// resolvedFleet creates the backends, waits until each publishes both
// addresses, then silences the DNS server.
func resolvedFleet(t *testing.T, c *operatorCluster, dns *dnsserver.Server, ns string) {
	t.Helper()
	for i := range failoverBackends {
		if err := c.k8s.Create(context.Background(), resolvedBackend(ns, fmt.Sprintf("db%d", i), failoverMaxTTL)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range failoverBackends {
		poll.Eventually(t, 60*time.Second, fmt.Sprintf("db%d-ipv4 published", i), wantSlice(c, ns, fmt.Sprintf("db%d-ipv4", i), "198.51.100.1", "198.51.100.2"))
	}
	dns.Fail(dbName, dnsserver.Drop)
}

// allReportTimeout waits until every backend's status says its name times
// out: the operator in charge has tried, failed, and written its verdict.
func allReportTimeout(c *operatorCluster, ns string) func() error {
	return func() error {
		for i := range failoverBackends {
			xb := &v1alpha1.ExternalBackend{}
			if err := c.k8s.Get(context.Background(), objectKey(ns, fmt.Sprintf("db%d", i)), xb); err != nil {
				return err
			}
			if cond := meta.FindStatusCondition(xb.Status.Conditions, v1alpha1.ConditionResolved); cond == nil || cond.Reason != v1alpha1.ReasonTimeout {
				return fmt.Errorf("%s: Resolved %+v, want Timeout", xb.Name, cond)
			}
		}
		return nil
	}
}

func checkFleetKept(t *testing.T, c *operatorCluster, ns string, seen *sliceWatch) {
	t.Helper()
	for i := range failoverBackends {
		if err := wantSlice(c, ns, fmt.Sprintf("db%d-ipv4", i), "198.51.100.1", "198.51.100.2")(); err != nil {
			t.Error(err)
		}
	}
	if shrinks := seen.shrunk(); len(shrinks) > 0 {
		t.Errorf("what the operator published shrank: %v", shrinks)
	}
}

// TestOperatorLeaderKilled runs two operators with leader election, as a
// rolling update does, and kills the leader with SIGKILL while the DNS
// server does not answer: the other takes over from what was published.
func TestOperatorLeaderKilled(t *testing.T) {
	c := startOperatorCluster(t)
	dns := dnsserver.Start(t)
	dns.SetA(dbName, 1, "198.51.100.1", "198.51.100.2")
	const ns = "failover"
	createNamespace(t, c, ns)
	seen := watchSlices(t, c, ns)
	flags := []string{"--dns-server", dns.Addr, "--leader-elect", "--leader-election-namespace", "default"}
	replicas := []*operatorProcess{c.startOperator(t, flags...), c.startOperator(t, flags...)}

	var leader, standby *operatorProcess
	poll.Eventually(t, 60*time.Second, "one replica leads", func() error {
		for i, p := range replicas {
			if p.leads() {
				leader, standby = p, replicas[1-i]
				return nil
			}
		}
		return errors.New("no replica leads")
	})
	resolvedFleet(t, c, dns, ns)
	leader.kill()
	killed := time.Now()
	poll.Eventually(t, 60*time.Second, "the standby takes the lease", func() error {
		if !standby.leads() {
			return errors.New("the standby has not taken the lease")
		}
		return nil
	})
	tookOver := time.Since(killed)
	poll.Eventually(t, 30*time.Second, "every backend reports the DNS timeout", allReportTimeout(c, ns))
	t.Logf("leader killed: the standby led after %s and reported the DNS timeouts %s after the kill; %d backends kept their addresses",
		tookOver.Round(100*time.Millisecond), time.Since(killed).Round(100*time.Millisecond), failoverBackends)
	checkFleetKept(t, c, ns, seen)
}

// TestOperatorAPIServerOutage stops kube-apiserver for 10 s under a
// running operator while the DNS server does not answer; when it is back,
// the operator relists and publishes what it published before.
func TestOperatorAPIServerOutage(t *testing.T) {
	c := startOperatorCluster(t)
	dns := dnsserver.Start(t)
	dns.SetA(dbName, 1, "198.51.100.1", "198.51.100.2")
	const ns = "apioutage"
	createNamespace(t, c, ns)
	seen := watchSlices(t, c, ns)
	c.startOperator(t, "--dns-server", dns.Addr)
	resolvedFleet(t, c, dns, ns)

	if err := testenv.StopAPIServer(c.env); err != nil {
		t.Fatal(err)
	}
	time.Sleep(apiOutage) // the scenario: the API server is away this long
	if err := testenv.StartAPIServer(c.env); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	poll.Eventually(t, 60*time.Second, "every backend reports the DNS timeout after the outage", allReportTimeout(c, ns))
	t.Logf("API server away %s: the operator reported the DNS timeouts %s after it came back; %d backends kept their addresses",
		apiOutage, time.Since(back).Round(100*time.Millisecond), failoverBackends)
	checkFleetKept(t, c, ns, seen)
}
