package faults

// Failover between the address groups of an ExternalBackend, end to end: a
// client's connections to the ClusterIP, programmed by the real syncer from
// the EndpointSlices the in-process operator writes, go to the replica while
// the primary fails its health check and back to the primary once it passes.
//
// Topology: the node is a netns.Host, so that the operator, in the test's
// namespace, probes the backends over the Host's veth; the primary and
// replica listen on two of its addresses, and a client namespace reaches
// the ClusterIP through the node:
//
//	test (operator, API server) --veth-- node [primary, replica; syncer's rules] --veth-- client 192.0.2.2

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/netns"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

const (
	foNodeIP   = "192.0.2.1"
	foClientIP = "192.0.2.2"
	foPort     = 8080
	// foInterval is the health check interval; with thresholds of 1 a
	// move should take about one interval plus one sync of operator and
	// syncer.
	foInterval = time.Second
)

// namedServer answers every TCP connection with its name, inside a
// namespace; Stop closes the listener, so connections are refused.
type namedServer struct {
	name string
	addr netip.AddrPort
	ns   *netns.Host
	mu   sync.Mutex
	ln   net.Listener
}

func (s *namedServer) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	if err := s.ns.Do(func() (err error) { ln, err = net.Listen("tcp4", s.addr.String()); return err }); err != nil {
		t.Fatalf("listen %s: %v", s.addr, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", s.name, c.RemoteAddr())
			c.Close()
		}
	}()
}

func (s *namedServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

// answers records which backend answered each of a steady stream of
// connections from the client to one address.
type answers struct {
	mu  sync.Mutex
	log []attemptBy
}

type attemptBy struct {
	at      time.Time
	backend string // "" when the connection failed
}

// settledOn is how long after t0 the answers settled on backend: the time
// of the first attempt after t0 from which every attempt was answered by
// backend; false when they have not.
func (a *answers) settledOn(backend string, t0 time.Time) (time.Duration, int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first time.Time
	failed := 0
	for _, at := range a.log {
		if at.at.Before(t0) {
			continue
		}
		switch {
		case at.backend != backend:
			first = time.Time{}
			if at.backend == "" {
				failed++
			}
		case first.IsZero():
			first = at.at
		}
	}
	if first.IsZero() {
		return 0, failed, false
	}
	return first.Sub(t0), failed, true
}

// count is how many attempts after t0 were answered by backend.
func (a *answers) count(backend string, t0 time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, at := range a.log {
		if !at.at.Before(t0) && at.backend == backend {
			n++
		}
	}
	return n
}

func TestFailoverBetweenAddressGroupsThroughTheClusterIP(t *testing.T) {
	netns.Require(t)

	node := netns.NewHost(t)
	client := netns.New(t, "fo-client")
	short := fmt.Sprint(os.Getpid() % 100000)
	cveth, nveth := "foc"+short, "fon"+short
	netns.Must(t, "ip", "link", "add", cveth, "netns", client.Name, "type", "veth", "peer", "name", nveth, "netns", node.Name)
	client.Must(t, "ip", "addr", "add", foClientIP+"/24", "dev", cveth)
	client.Must(t, "ip", "link", "set", cveth, "up")
	client.Must(t, "ip", "route", "add", "default", "via", foNodeIP)
	nodeNS := &netns.NS{Name: node.Name}
	nodeNS.Must(t, "ip", "addr", "add", foNodeIP+"/24", "dev", nveth)
	nodeNS.Must(t, "ip", "link", "set", nveth, "up")

	primary := &namedServer{name: "primary", addr: netip.AddrPortFrom(node.IPs[0], foPort), ns: node}
	replica := &namedServer{name: "replica", addr: netip.AddrPortFrom(node.IPs[1], foPort), ns: node}
	primary.start(t)
	replica.start(t)
	t.Cleanup(primary.stop)
	t.Cleanup(replica.stop)

	crlog.SetLogger(logr.Discard())
	env, cfg := testenv.StartForTest(t)
	k8s := startInProcessOperator(t, cfg)

	syncer := startSyncer(t, testenv.AdminKubeconfigFile(t, env, "outpost-syncer", ""), node.Name, foNodeIP, nil)
	syncer.waitSynced(t)

	xb := &v1alpha1.ExternalBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: dpNamespace, Name: "db"},
		Spec: v1alpha1.ExternalBackendSpec{
			AddressGroups: []v1alpha1.AddressGroup{
				{Priority: 0, Zone: "zone-a", Addresses: []string{node.IPs[0].String()}},
				{Priority: 1, Zone: "zone-b", Addresses: []string{node.IPs[1].String()}},
			},
			Ports: []v1alpha1.BackendPort{{Name: "db", Port: 80, TargetPort: foPort}},
			HealthCheck: &v1alpha1.HealthCheck{Interval: &metav1.Duration{Duration: foInterval},
				Timeout: &metav1.Duration{Duration: 500 * time.Millisecond}, HealthyThreshold: 1, UnhealthyThreshold: 1},
		},
	}
	if err := k8s.Create(context.Background(), xb); err != nil {
		t.Fatal(err)
	}
	var clusterIP string
	poll.Eventually(t, 30*time.Second, "the Service has a ClusterIP", func() error {
		got := &v1alpha1.ExternalBackend{}
		if err := k8s.Get(context.Background(), crclient.ObjectKeyFromObject(xb), got); err != nil {
			return err
		}
		if got.Status.ServiceName == "" {
			return fmt.Errorf("no Service yet")
		}
		svc := &corev1.Service{}
		if err := k8s.Get(context.Background(), crclient.ObjectKey{Namespace: dpNamespace, Name: got.Status.ServiceName}, svc); err != nil {
			return err
		}
		clusterIP = svc.Spec.ClusterIP
		return nil
	})
	target := net.JoinHostPort(clusterIP, "80")

	// A client connection every 20 ms, recording who answered.
	seen := &answers{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = client.Do(func() error {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return nil
				case <-tick.C:
				}
				at, backend := time.Now(), ""
				if c, err := net.DialTimeout("tcp4", target, 200*time.Millisecond); err == nil {
					_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
					if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
						backend, _, _ = strings.Cut(line, " ")
					}
					c.Close()
				}
				seen.mu.Lock()
				seen.log = append(seen.log, attemptBy{at, backend})
				seen.mu.Unlock()
			}
		})
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	began := time.Now()
	poll.Eventually(t, 60*time.Second, "the client reaches the primary through "+target, func() error {
		if d, _, ok := seen.settledOn("primary", began); !ok || seen.count("primary", began.Add(d)) < 10 {
			return fmt.Errorf("not settled on the primary yet")
		}
		return nil
	})

	// The move is counted from the stop, so it includes the wait for the
	// next check (up to one interval).
	stopped := time.Now()
	primary.stop()
	var failover time.Duration
	var lostOver int
	poll.Eventually(t, 30*time.Second, "the client reaches the replica", func() error {
		d, failed, ok := seen.settledOn("replica", stopped)
		if !ok || seen.count("replica", stopped.Add(d)) < 10 {
			return fmt.Errorf("not settled on the replica yet")
		}
		failover, lostOver = d, failed
		return nil
	})

	restarted := time.Now()
	primary.start(t)
	var failback time.Duration
	var lostBack int
	poll.Eventually(t, 30*time.Second, "the client reaches the primary again", func() error {
		d, failed, ok := seen.settledOn("primary", restarted)
		if !ok || seen.count("primary", restarted.Add(d)) < 10 {
			return fmt.Errorf("not settled on the primary yet")
		}
		failback, lostBack = d, failed
		return nil
	})

	t.Logf("failover (interval %s, thresholds 1): primary stopped -> client answered by the replica after %s (%d connections refused meanwhile)",
		foInterval, failover.Round(time.Millisecond), lostOver)
	t.Logf("failback: primary listening again -> client answered by the primary after %s (%d connections failed meanwhile)",
		failback.Round(time.Millisecond), lostBack)
	// One interval for the failing check to come, a second for the
	// operator's write and the syncer's sync on a loaded machine.
	if limit := 2*foInterval + 3*time.Second; failover > limit || failback > limit {
		t.Errorf("moves took %s and %s, want each within %s", failover, failback, limit)
	}
	if lostBack > 0 {
		t.Errorf("%d connections failed while moving back to a healthy primary; the replica serves until then", lostBack)
	}
}
