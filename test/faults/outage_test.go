// Package faults breaks what the outpost plugin depends on while real
// CoreDNS processes answer a steady query load, and checks that nothing is
// lost: no wrong answer, (almost) no unanswered query, and the plugin caught
// up within seconds of the fault ending.
package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/process"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

const (
	namespace = "faults"
	// services is the cluster's size: every 10th Service headless, each
	// with an EndpointSlice of three ready endpoints.
	services = 1000
	outage   = 30 * time.Second
	// caughtUp is how soon after the API server is back a change must be
	// answered: the watches re-establish on their own, not at a resync.
	caughtUp = 5 * time.Second
)

// TestAPIServerOutage stops kube-apiserver (etcd stays) for 30 s under a
// steady query load and starts it again, which makes every watch of both
// plugins relist (the new API server's watch cache starts past their
// resource versions: 410 Gone). Run with -v for the figures.
func TestAPIServerOutage(t *testing.T) {
	crlog.SetLogger(logr.Discard())
	env, err := testenv.New()
	if err != nil {
		t.Fatal(err)
	}
	api := env.ControlPlane.GetAPIServer()
	// A directory of our own, so that a restart keeps the serving
	// certificate (envtest makes a new one in a new temporary directory,
	// which CoreDNS' kubeconfig would not trust).
	api.CertDir = t.TempDir()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { env.Stop() })
	kubeconfig := testenv.AdminKubeconfigFile(t, env, "coredns-faults", "")
	kube := client(t, cfg)
	want := populate(t, kube)

	coredns := binary(t, "coredns", "./plugin/coredns")
	outpost := startCoreDNS(t, coredns, "outpost", kubeconfig)
	kubernetesPlugin := startCoreDNS(t, coredns, "kubernetes", kubeconfig)
	last := fmt.Sprintf("svc-%d", services-1)
	for _, srv := range []*coreDNS{outpost, kubernetesPlugin} {
		poll.Eventually(t, 60*time.Second, srv.plugin+" answers the last Service", func() error { return srv.answers(last, want[last]) })
	}

	load := startLoad(outpost.port, want)
	poll.Eventually(t, 30*time.Second, "load under way", func() error {
		if load.sent.Load() < 1000 {
			return fmt.Errorf("load generator sent %d queries", load.sent.Load())
		}
		return nil
	})

	if err := testenv.StopAPIServer(env); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage) // the scenario: the API server is away this long
	for _, srv := range []*coreDNS{outpost, kubernetesPlugin} {
		srv.resetPeakRSS(t)
	}
	if err := testenv.StartAPIServer(env); err != nil {
		t.Fatal(err)
	}

	// A Service made now must be answered within caughtUp.
	var after *corev1.Service
	poll.Eventually(t, 30*time.Second, "create a Service once kube-apiserver is back", func() error {
		after, err = kube.CoreV1().Services(namespace).Create(context.Background(), clusterIPService("after"), metav1.CreateOptions{})
		return err
	})
	created := time.Now()
	afterIPs := []string{after.Spec.ClusterIP}
	poll.Eventually(t, 90*time.Second, "outpost answers the new Service", func() error { return outpost.answers("after", afterIPs) })
	outpostCaughtUp := time.Since(created)
	poll.Eventually(t, 90*time.Second, "kubernetes answers the new Service", func() error { return kubernetesPlugin.answers("after", afterIPs) })
	kubernetesCaughtUp := time.Since(created)
	// The relist shows as an update of every Service.
	if updates := outpost.metric(t, `coredns_outpost_events_total{kind="service",type="update"}`); updates < services {
		t.Errorf("outpost applied %.0f Service updates after the API server came back, want a relist of all %d", updates, services)
	}
	result := load.stop()
	outpostHWM, kubernetesHWM := outpost.peakRSS(t), kubernetesPlugin.peakRSS(t)

	t.Logf("queries sent %d, answered %d (%.3f%%), right %d, wrong %d, unanswered %d",
		result.sent, result.answered, 100*float64(result.answered)/float64(result.sent), result.right, result.wrong, result.sent-result.answered)
	t.Logf("change after the API server came back answered in %s by outpost, %s by kubernetes",
		outpostCaughtUp.Round(time.Millisecond), kubernetesCaughtUp.Round(time.Millisecond))
	t.Logf("peak RSS (VmHWM) during the relist of %d Services + %d EndpointSlices: outpost %.1f MiB, kubernetes %.1f MiB (%.2fx)",
		services, services, outpostHWM, kubernetesHWM, outpostHWM/kubernetesHWM)
	for _, w := range result.wrongExamples {
		t.Errorf("wrong answer: %s", w)
	}
	if result.answered*1000 < result.sent*999 {
		t.Errorf("%d of %d queries answered, want at least 99.9%%", result.answered, result.sent)
	}
	if outpostCaughtUp > caughtUp {
		t.Errorf("outpost answered a change %s after the API server came back, want within %s", outpostCaughtUp.Round(time.Millisecond), caughtUp)
	}
}

func client(t *testing.T, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 1000, 2000 // populating is most of the set-up time
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kube
}

func clusterIPService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
}

// populate creates the Services and their EndpointSlices and returns the
// A records each Service name must answer with.
func populate(t *testing.T, kube *kubernetes.Clientset) map[string][]string {
	t.Helper()
	ctx := context.Background()
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		want = map[string][]string{}
		errs []error
		work = make(chan int)
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				name, ips, err := createService(ctx, kube, i)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					want[name] = ips
				}
				mu.Unlock()
			}
		})
	}
	for i := range services {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return want
}

// createService creates Service i with a slice of three endpoints.
func createService(ctx context.Context, kube *kubernetes.Clientset, i int) (string, []string, error) {
	name := fmt.Sprintf("svc-%d", i)
	svc := clusterIPService(name)
	headless := i%10 == 0
	if headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	created, err := kube.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return "", nil, fmt.Errorf("create Service %s: %w", name, err)
	}
	es := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: namespace, Labels: map[string]string{discovery.LabelServiceName: name}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: new("http"), Port: new(int32(8080)), Protocol: new(corev1.ProtocolTCP)}},
	}
	var endpoints []string
	for j := range 3 {
		ip := fmt.Sprintf("10.%d.%d.%d", 100+i/250, i%250, 1+j)
		endpoints = append(endpoints, ip)
		es.Endpoints = append(es.Endpoints, discovery.Endpoint{Addresses: []string{ip}, Conditions: discovery.EndpointConditions{Ready: new(true)}})
	}
	if _, err := kube.DiscoveryV1().EndpointSlices(namespace).Create(ctx, es, metav1.CreateOptions{}); err != nil {
		return "", nil, fmt.Errorf("create EndpointSlice %s: %w", es.Name, err)
	}
	if headless {
		return name, endpoints, nil
	}
	return name, []string{created.Spec.ClusterIP}, nil
}

// coreDNS is a running bin/coredns serving cluster.local with one plugin.
type coreDNS struct {
	plugin      string
	port        int
	metricsPort int
	proc        *process.Process
}

func startCoreDNS(t *testing.T, bin, plugin, kubeconfig string) *coreDNS {
	t.Helper()
	port, metricsPort := loopback.FreePort(t), loopback.FreePort(t)
	corefile := fmt.Sprintf(".:%d {\n    bind 127.0.0.1\n    prometheus 127.0.0.1:%d\n    %s cluster.local in-addr.arpa ip6.arpa {\n        kubeconfig %s\n        startup_timeout 60s\n    }\n}\n", port, metricsPort, plugin, kubeconfig)
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o600); err != nil {
		t.Fatal(err)
	}
	return &coreDNS{plugin: plugin, port: port, metricsPort: metricsPort,
		proc: process.StartForTest(t, "coredns-"+plugin, bin, "-conf", path)}
}

// answers reports whether name.faults.svc.cluster.local has exactly the A
// records ips.
func (s *coreDNS) answers(name string, ips []string) error {
	r, err := exchange(s.port, name+"."+namespace+".svc.cluster.local.")
	if err != nil {
		return fmt.Errorf("%s: %s: %w", s.plugin, name, err)
	}
	return rightAnswer(r, ips)
}

// metric reads one sample from the plugin's /metrics (0 if absent).
func (s *coreDNS) metric(t *testing.T, sample string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.metricsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(body)) {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// resetPeakRSS restarts VmHWM at the current RSS (proc(5), clear_refs).
func (s *coreDNS) resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.proc.Pid()), []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS of %s's CoreDNS (needs root or the same user): %v", s.plugin, err)
	}
}

// peakRSS reads VmHWM in MiB.
func (s *coreDNS) peakRSS(t *testing.T) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.proc.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", f[1], err)
			}
			return kb / 1024
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", s.proc.Pid())
	return 0
}

func exchange(port int, name string) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := c.Exchange(m, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	return r, err
}

// rightAnswer checks a response against the A records it must carry: none
// means NXDOMAIN.
func rightAnswer(r *dns.Msg, ips []string) error {
	if len(ips) == 0 {
		if r.Rcode != dns.RcodeNameError {
			return fmt.Errorf("want NXDOMAIN, got %s", dns.RcodeToString[r.Rcode])
		}
		return nil
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("want %v, got %s", ips, dns.RcodeToString[r.Rcode])
	}
	var got []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			got = append(got, a.A.String())
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, slices.Sorted(slices.Values(ips))) {
		return fmt.Errorf("want %v, got %v", ips, got)
	}
	return nil
}

// load asks CoreDNS, from a few workers, for every Service and as many
// missing names in turn, and checks each answer. Every answer is due to be
// right: the load starts after the first sync, so not even SERVFAIL is.
type load struct {
	sent, answered, right atomic.Int64
	mu                    sync.Mutex
	wrong                 []string
	quit                  chan struct{}
	done                  sync.WaitGroup
}

type loadResult struct {
	sent, answered, right, wrong int64
	wrongExamples                []string
}

func startLoad(port int, want map[string][]string) *load {
	type question struct {
		name string
		ips  []string
	}
	var questions []question
	for name, ips := range want {
		questions = append(questions, question{name, ips})
		questions = append(questions, question{"no-" + name, nil})
	}
	l := &load{quit: make(chan struct{})}
	const workers = 4
	for w := range workers {
		l.done.Go(func() {
			// Paced, so that the load is steady and leaves the shared
			// machine's CPU to the API server and CoreDNS: 4 x 250 QPS.
			tick := time.NewTicker(4 * time.Millisecond)
			defer tick.Stop()
			for i := w; ; i += workers {
				select {
				case <-l.quit:
					return
				case <-tick.C:
				}
				q := questions[i%len(questions)]
				l.sent.Add(1)
				r, err := exchange(port, q.name+"."+namespace+".svc.cluster.local.")
				if err != nil {
					continue
				}
				l.answered.Add(1)
				if err := rightAnswer(r, q.ips); err != nil {
					l.mu.Lock()
					l.wrong = append(l.wrong, fmt.Sprintf("%s at %s: %v", q.name, time.Now().Format(time.TimeOnly), err))
					l.mu.Unlock()
					continue
				}
				l.right.Add(1)
			}
		})
	}
	return l
}

func (l *load) stop() loadResult {
	close(l.quit)
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadResult{
		sent: l.sent.Load(), answered: l.answered.Load(), right: l.right.Load(), wrong: int64(len(l.wrong)),
		wrongExamples: l.wrong[:min(len(l.wrong), 10)],
	}
}
