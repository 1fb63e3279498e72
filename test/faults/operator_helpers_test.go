package faults

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/operator"
	"github.com/outpost-dev/outpost/test/lib/process"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// operatorCluster is an API server, a kubeconfig for operator processes
// and a client, for the operator's fault tests.
type operatorCluster struct {
	env        *envtest.Environment
	cfg        *rest.Config
	kubeconfig string
	k8s        crclient.Client

	mu     sync.Mutex
	procs  []*operatorProcess
	latest *operatorProcess // the one whose log a failed test shows
}

// logged counts the lines of every operator process's log containing s.
func (c *operatorCluster) logged(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.procs {
		n += strings.Count(p.Log(), s)
	}
	return n
}

// startOperatorCluster starts envtest with a certificate directory of its
// own, so that a restarted kube-apiserver keeps the certificate the
// operator's kubeconfig trusts.
func startOperatorCluster(t *testing.T) *operatorCluster {
	t.Helper()
	crlog.SetLogger(logr.Discard())
	env, err := testenv.New()
	if err != nil {
		t.Fatal(err)
	}
	env.ControlPlane.GetAPIServer().CertDir = t.TempDir()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig := testenv.AdminKubeconfigFile(t, env, "outpost-operator", "")
	cfg.QPS, cfg.Burst = 500, 1000
	k8s, err := crclient.New(cfg, crclient.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return &operatorCluster{env: env, cfg: cfg, kubeconfig: kubeconfig, k8s: k8s}
}

// operatorProcess is one bin/outpost-operator.
type operatorProcess struct {
	*process.Process
}

// startOperator runs the operator against c with the test's flags; it is
// killed when the test ends. A failed test shows the log of the latest
// process and of the leader, not of the fifty a crash test killed.
func (c *operatorCluster) startOperator(t *testing.T, args ...string) *operatorProcess {
	t.Helper()
	argv := append([]string{operatorBinary(t), "--kubeconfig", c.kubeconfig, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"}, args...)
	proc, err := process.Start(filepath.Join(t.TempDir(), "outpost-operator.log"), argv...)
	if err != nil {
		t.Fatal(err)
	}
	p := &operatorProcess{proc}
	c.mu.Lock()
	c.latest = p
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	t.Cleanup(func() {
		p.kill()
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.Failed() && (p == c.latest || p.leads()) {
			t.Logf("outpost-operator (pid %d) log:\n%s", p.Pid(), lastLines(p.Log(), 60))
		}
	})
	return p
}

// kill ends the process with SIGKILL, as a crash or an evicted pod would.
func (p *operatorProcess) kill() { p.StopWith(syscall.SIGKILL) }

// leads says whether the process holds the leader election lease.
func (p *operatorProcess) leads() bool {
	return strings.Contains(p.Log(), "Successfully acquired lease")
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// sliceWatch watches a namespace's EndpointSlices from before the operator
// starts and remembers every time one of them lost an address or was
// deleted: what the operator published must never shrink.
type sliceWatch struct {
	mu      sync.Mutex
	last    map[string][]string // slice name -> addresses
	shrinks []string
	readyAt map[string][]time.Time // address -> when a slice event showed it ready
	stop    func()
}

func watchSlices(t *testing.T, c *operatorCluster, ns string) *sliceWatch {
	t.Helper()
	wc, err := crclient.NewWithWatch(c.cfg, crclient.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &sliceWatch{last: map[string][]string{}, readyAt: map[string][]time.Time{}, stop: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rv := ""
		for ctx.Err() == nil {
			wi, err := wc.Watch(ctx, &discoveryv1.EndpointSliceList{}, crclient.InNamespace(ns), &crclient.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
			if err != nil {
				time.Sleep(100 * time.Millisecond) // the API server is away; try again
				continue
			}
			for ev := range wi.ResultChan() {
				if ev.Type == watch.Error {
					rv = "" // too old after an API server restart: start over from a list
					continue
				}
				s, ok := ev.Object.(*discoveryv1.EndpointSlice)
				if !ok {
					continue
				}
				rv = s.ResourceVersion
				w.observe(ev.Type, s)
			}
			wi.Stop()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func (w *sliceWatch) observe(typ watch.EventType, s *discoveryv1.EndpointSlice) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var now []string
	if typ != watch.Deleted {
		for _, ep := range s.Endpoints {
			now = append(now, ep.Addresses...)
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				for _, a := range ep.Addresses {
					w.readyAt[a] = append(w.readyAt[a], time.Now())
				}
			}
		}
	}
	if typ == watch.Bookmark {
		return
	}
	for _, a := range w.last[s.Name] {
		if !slices.Contains(now, a) {
			w.shrinks = append(w.shrinks, fmt.Sprintf("%s %s lost %s at %s", typ, s.Name, a, time.Now().Format("15:04:05.000")))
		}
	}
	w.last[s.Name] = now
}

// addresses is what the watch last saw in slice name.
func (w *sliceWatch) addresses(name string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.last[name])
}

// readySince says whether a slice showed addr ready at or after t.
func (w *sliceWatch) readySince(addr string, t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(w.readyAt[addr], func(at time.Time) bool { return !at.Before(t) })
}

// firstReadySince is the first time at or after t a slice showed addr
// ready; zero if none did.
func (w *sliceWatch) firstReadySince(addr string, t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, at := range w.readyAt[addr] {
		if !at.Before(t) {
			return at
		}
	}
	return time.Time{}
}

// shrunk lists the shrinks seen so far.
func (w *sliceWatch) shrunk() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.shrinks)
}

// startInProcessOperator runs the operator in the test's process against
// cfg's API server until the test ends (where it must probe addresses only
// the test's network namespace reaches), and returns a client that knows
// ExternalBackends. Several tests of the binary may each run one.
func startInProcessOperator(t *testing.T, cfg *rest.Config) crclient.Client {
	t.Helper()
	opts := operator.DefaultOptions()
	opts.MetricsBindAddress, opts.HealthProbeBindAddress = "0", "0"
	opts.ServiceCIDRs, opts.PodCIDRs = testenv.DualStackServiceCIDRs, dpClusterCID
	opts.SeveralPerProcess = true
	mgr, err := operator.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	})
	k8s, err := crclient.New(cfg, crclient.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return k8s
}
