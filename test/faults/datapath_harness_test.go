package faults

// The datapath half of this package breaks what outpost-syncer depends on
// (itself, iptables-restore, the xtables lock, the nat table) while a
// steady load of new TCP connections crosses a node programmed by the real
// bin/outpost-syncer, and counts what was lost.
//
// Topology (all addresses exist only inside the namespaces a test makes):
//
//	client 203.0.113.2 --veth-- 203.0.113.1 node [br0 198.51.100.1] --veth-- b1..b3 198.51.100.11-13
//
// The syncer runs in the test's namespace (it must reach the API server on
// 127.0.0.1) and programs the node with --netns, as in test/datapath.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/netns"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/process"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

const (
	dpNodeName   = "node1"
	dpNodeIP     = "203.0.113.1"
	dpClientIP   = "203.0.113.2"
	dpBridgeIP   = "198.51.100.1"
	dpClusterCID = "10.244.0.0/16"
	dpNamespace  = "default"
	dpTCPPort    = 8080
	dpUDPPort    = 5353
	// dpRate is the load every scenario holds: new TCP connections per
	// second, spread over a ClusterIP and a NodePort.
	dpRate = 250
	// dpCanaryPeriod is the syncer's --canary-period in these tests.
	dpCanaryPeriod = time.Second
)

var (
	dpMetricsClient = &http.Client{Timeout: 2 * time.Second}
)

// dpWorld is one node with its client, backends, API server and syncer.
type dpWorld struct {
	t          *testing.T
	client     *netns.NS
	node       *netns.NS
	backends   []netns.Backend // "pods" on the node's bridge, answering with netns.Backend.ServeWhoAmI
	kube       kubernetes.Interface
	kubeconfig string
}

// newDPWorld builds the namespaces and starts an API server. Every
// scenario gets its own: a fault must not leak into the next one.
func newDPWorld(t *testing.T) *dpWorld {
	t.Helper()
	netns.Require(t)
	env, cfg := testenv.StartForTest(t)
	w := &dpWorld{t: t, kube: kubernetes.NewForConfigOrDie(cfg), kubeconfig: testenv.AdminKubeconfigFile(t, env, "outpost-syncer", "")}

	nodeNet := netns.NewNodeNetwork(t, netns.NodeNetworkSpec{
		Prefix: "of", ClientIP: dpClientIP, NodeIP: dpNodeIP, BridgeIP: dpBridgeIP, Backends: 3,
	})
	w.node, w.client, w.backends = nodeNet.Node, nodeNet.Client, nodeNet.Backends
	for _, b := range w.backends {
		b.ServeWhoAmI(t, dpUDPPort, dpTCPPort)
	}
	return w
}

// service creates a Service and returns it with its allocated addresses.
func (w *dpWorld) service(name string, typ corev1.ServiceType, proto corev1.Protocol) *corev1.Service {
	w.t.Helper()
	target := dpTCPPort
	if proto == corev1.ProtocolUDP {
		target = dpUDPPort
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: dpNamespace, Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Ports: []corev1.ServicePort{{
			Name: "p", Port: 80, Protocol: proto, TargetPort: intstr.FromInt(target),
		}}},
	}
	out, err := w.kube.CoreV1().Services(dpNamespace).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatalf("create Service %s: %v", name, err)
	}
	return out
}

// endpoints writes the Service's one EndpointSlice with these backends.
func (w *dpWorld) endpoints(svc *corev1.Service, bs ...netns.Backend) {
	w.t.Helper()
	port := svc.Spec.Ports[0]
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: dpNamespace, Name: svc.Name,
			Labels: map[string]string{discovery.LabelServiceName: svc.Name, discovery.LabelManagedBy: "faults-test"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To(port.Name), Protocol: ptr.To(port.Protocol), Port: ptr.To(port.TargetPort.IntVal)}},
	}
	for _, b := range bs {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{Addresses: []string{b.IP}, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}})
	}
	ctx := context.Background()
	slices := w.kube.DiscoveryV1().EndpointSlices(dpNamespace)
	cur, err := slices.Get(ctx, s.Name, metav1.GetOptions{})
	if err == nil {
		s.ResourceVersion = cur.ResourceVersion
		_, err = slices.Update(ctx, s, metav1.UpdateOptions{})
	} else {
		_, err = slices.Create(ctx, s, metav1.CreateOptions{})
	}
	if err != nil {
		w.t.Fatalf("write EndpointSlice %s: %v", s.Name, err)
	}
}

func clusterAddr(svc *corev1.Service) string {
	return net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)))
}

func nodePortAddr(svc *corev1.Service) string {
	return net.JoinHostPort(dpNodeIP, strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))
}

// get opens one TCP connection from the client and returns the backend
// that answered.
func (w *dpWorld) get(addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	if err := w.client.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	}); err != nil {
		return "", err
	}
	return answer(c, timeout)
}

func answer(c net.Conn, timeout time.Duration) (string, error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	name, _, err := netns.ParseWhoAmI(line)
	return name, err
}

// syncerProc is one run of bin/outpost-syncer.
type syncerProc struct {
	*process.Process
	metrics string
	started time.Time
}

// startSyncer starts the syncer programming the node; env is added to
// the test's environment (e.g. a PATH with a fault-injecting wrapper).
func (w *dpWorld) startSyncer(env ...string) *syncerProc {
	w.t.Helper()
	return startSyncer(w.t, w.kubeconfig, w.node.Name, dpNodeIP,
		[]string{"--canary-period", dpCanaryPeriod.String(), "--zap-log-level", "1", "--zap-time-encoding", "rfc3339nano"}, env...)
}

// startSyncer starts bin/outpost-syncer against the API server of
// kubeconfig, programming the network namespace ns whose node IP is nodeIP,
// with flags after the common ones and env added to the test's environment.
func startSyncer(t *testing.T, kubeconfig, ns, nodeIP string, flags []string, env ...string) *syncerProc {
	t.Helper()
	metrics := fmt.Sprintf("127.0.0.1:%d", loopback.FreePort(t))
	started := time.Now()
	args := append([]string{syncerBinary(t),
		"--kubeconfig", kubeconfig, "--node-name", dpNodeName, "--node-ip", nodeIP, "--cluster-cidr", dpClusterCID,
		"--netns", ns, "--min-sync-period", "100ms", "--metrics-bind-address", metrics, "--healthz-bind-address", "0"}, flags...)
	proc := process.StartForTestEnv(t, "outpost-syncer", env, args...)
	return &syncerProc{Process: proc, metrics: metrics, started: started}
}

// metric returns the sum of a metric's samples whose line starts with
// prefix (a name, or a name with labels), or an error if none is there yet.
func (p *syncerProc) metric(prefix string) (float64, error) {
	resp, err := dpMetricsClient.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	sum, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("no metric %s yet", prefix)
	}
	return sum, nil
}

// waitSynced waits until the syncer reports a successful sync that
// started after it did.
func (p *syncerProc) waitSynced(t *testing.T) time.Duration {
	t.Helper()
	p.Eventually(t, 30*time.Second, "a successful sync", func() error {
		ts, err := p.metric("outpost_syncer_last_successful_sync_timestamp_seconds")
		if err != nil {
			return err
		}
		if ts <= 0 {
			return fmt.Errorf("no successful sync yet")
		}
		return nil
	})
	return time.Since(p.started)
}

// natRules is the node's nat table as iptables-save prints it.
func (w *dpWorld) natRules() string {
	return w.node.Must(w.t, "iptables-save", "-t", "nat")
}

// dpLoad opens dpRate new TCP connections per second from the client to
// its targets (round robin) and records each attempt.
type dpLoad struct {
	attempted, failed atomic.Int64
	mu                sync.Mutex
	attempts          []attempt
	stopc             chan struct{}
	wg                sync.WaitGroup
	start             time.Time
}

type attempt struct {
	at  time.Time
	err error
}

// startDPLoad starts the load; workers are goroutines locked into the
// client namespace for their whole life, so that no connection pays for a
// namespace switch.
func (w *dpWorld) startDPLoad(targets ...string) *dpLoad {
	l := &dpLoad{stopc: make(chan struct{}), start: time.Now()}
	tokens := make(chan string, dpRate)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(tokens)
		// Catch up on what is due rather than one per tick: a loaded
		// machine drops ticks.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for sent := 0; ; {
			select {
			case <-l.stopc:
				return
			case <-tick.C:
				for due := int(time.Since(l.start).Seconds() * dpRate); sent < due; sent++ {
					select {
					case tokens <- targets[sent%len(targets)]:
					default: // every worker busy: the achieved rate shows it
					}
				}
			}
		}
	}()
	// Enough workers to keep the rate while connections time out.
	for range 256 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			_ = w.client.Do(func() error {
				for addr := range tokens {
					at := time.Now()
					var err error
					if c, derr := net.DialTimeout("tcp4", addr, 2*time.Second); derr != nil {
						err = derr
					} else {
						_, err = answer(c, 2*time.Second)
					}
					l.attempted.Add(1)
					if err != nil {
						l.failed.Add(1)
					}
					l.mu.Lock()
					l.attempts = append(l.attempts, attempt{at, err})
					l.mu.Unlock()
				}
				return nil
			})
		}()
	}
	w.t.Cleanup(l.stop)
	return l
}

// waitMore waits until n more connections were attempted (the load is
// running through whatever the test is doing meanwhile).
func (l *dpLoad) waitMore(t *testing.T, n int64) {
	t.Helper()
	target := l.attempted.Load() + n
	poll.Eventually(t, time.Duration(n)*time.Second/dpRate*4+5*time.Second, fmt.Sprintf("%d more connections attempted", n), func() error {
		if got := l.attempted.Load(); got < target {
			return fmt.Errorf("load attempted %d connections, waiting for %d", got, target)
		}
		return nil
	})
}

func (l *dpLoad) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
}

// report stops the load and returns its figures.
func (l *dpLoad) report() (attempted, failed int64, rate float64, firstErrs []string) {
	l.stop()
	elapsed := time.Since(l.start).Seconds()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.attempts {
		if a.err != nil && len(firstErrs) < 5 {
			firstErrs = append(firstErrs, fmt.Sprintf("%s: %v", a.at.Format("15:04:05.000"), a.err))
		}
	}
	return l.attempted.Load(), l.failed.Load(), float64(l.attempted.Load()) / elapsed, firstErrs
}

// recoveredAfter returns how long after t0 the load's connections succeed
// for good: the start of the first attempt after t0 from which every later
// one succeeded, minus t0.
func (l *dpLoad) recoveredAfter(t0 time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lastFail time.Time
	for _, a := range l.attempts {
		if a.err != nil && a.at.After(lastFail) {
			lastFail = a.at
		}
	}
	var first time.Time
	for _, a := range l.attempts {
		if a.err == nil && a.at.After(t0) && a.at.After(lastFail) && (first.IsZero() || a.at.Before(first)) {
			first = a.at
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return first.Sub(t0), true
}

// logLoad prints the figures every scenario reports and fails on any lost
// connection.
func logLoad(t *testing.T, l *dpLoad, what string) {
	t.Helper()
	attempted, failed, rate, errs := l.report()
	t.Logf("%s: %d connections attempted at %.0f/s, %d failed", what, attempted, rate, failed)
	if rate < 200 {
		t.Errorf("load held %.0f connections/s, want at least 200", rate)
	}
	if failed > 0 {
		t.Errorf("%d of %d connections failed during %s; first: %v", failed, attempted, what, errs)
	}
}

// events returns the reasons of the Events about an object.
func (w *dpWorld) events(kind, name string) []string {
	list, err := w.kube.CoreV1().Events("").List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason)
	}
	return out
}
