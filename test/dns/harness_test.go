// Package dns holds the end-to-end tests of the outpost plugin: the real
// bin/coredns binary answering real UDP and TCP queries on 127.0.0.1, fed by
// a real kube-apiserver and etcd (test/lib/testenv).
package dns

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/test"
	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/process"
	"github.com/outpost-dev/outpost/test/lib/testenv"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
)

var (
	coredns string // path of the binary under test
	env     *envtest.Environment
	kube    *kubernetes.Clientset
	apiHost string // host:port of the API server
)

// TestMain builds bin/coredns once and starts one API server for the package.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root := testenv.RepoRoot()
	coredns = filepath.Join(root, "bin", "coredns")
	if err := testenv.Build(coredns, "./plugin/coredns"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	crlog.SetLogger(logr.Discard()) // envtest logs through controller-runtime
	var err error
	env, err = testenv.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A certificate directory of its own, so that BenchmarkDNS can restart
	// kube-apiserver (testenv.StopAPIServer) under running CoreDNS.
	certDir, err := os.MkdirTemp("", "outpost-dns-certs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(certDir)
	env.ControlPlane.GetAPIServer().CertDir = certDir
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start envtest: %v\n", err)
		return 1
	}
	defer env.Stop()
	u, err := url.Parse(cfg.Host)
	if err != nil {
		fmt.Fprintf(os.Stderr, "API server URL %q: %v\n", cfg.Host, err)
		return 1
	}
	apiHost = u.Host
	if kube, err = kubernetes.NewForConfig(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "client: %v\n", err)
		return 1
	}
	return m.Run()
}

// startCoreDNS runs bin/coredns with corefile and waits until it answers on
// probe (a 127.0.0.1 port). It is stopped at the end of the test.
func startCoreDNS(t testing.TB, corefile string, probe int) *process.Process {
	t.Helper()
	return startCoreDNSWith(t, corefile, probe, nil)
}

// startCoreDNSWith is startCoreDNS with the binary run through wrapper
// (e.g. taskset), when given.
func startCoreDNSWith(t testing.TB, corefile string, probe int, wrapper []string) *process.Process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o600); err != nil {
		t.Fatal(err)
	}
	p := process.StartForTest(t, "coredns", append(slices.Clone(wrapper), coredns, "-conf", path)...)
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("dns-version.cluster.local.", dns.TypeTXT)
	addr := fmt.Sprintf("127.0.0.1:%d", probe)
	p.Eventually(t, 30*time.Second, "coredns answering on "+addr, func() error {
		_, _, err := c.Exchange(m, addr)
		return err
	})
	return p
}

// query sends one question over proto ("udp" or "tcp") to 127.0.0.1:port.
func query(t testing.TB, proto string, port int, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return exchange(t, proto, port, m)
}

func exchange(t testing.TB, proto string, port int, m *dns.Msg) *dns.Msg {
	t.Helper()
	r, err := tryExchange(proto, port, m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryExchange sends m over proto to 127.0.0.1:port, three times at most: on
// a loaded CI machine a UDP answer can be late. Safe to call from any
// goroutine.
func tryExchange(proto string, port int, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: proto, Timeout: 5 * time.Second}
	var lastErr error
	for range 3 {
		r, _, err := c.Exchange(m, fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return r, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("%s %s over %s: %w", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], proto, lastErr)
}

// checkCase queries tc over proto and compares with it (sections sorted,
// SOA serials and TTL 303 ignored as in CoreDNS' own tests).
func checkCase(t testing.TB, proto string, port int, tc test.Case) {
	t.Helper()
	resp := query(t, proto, port, tc.Qname, tc.Qtype)
	for _, rrs := range [][]dns.RR{tc.Answer, tc.Ns, tc.Extra} {
		sort.Sort(test.RRSet(rrs))
	}
	if err := test.SortAndCheck(resp, tc); err != nil {
		t.Errorf("%s %s over %s: %v\ngot:\n%s", dns.TypeToString[tc.Qtype], tc.Qname, proto, err, resp)
	}
}

// startUpstream runs a DNS server (UDP and TCP) on 127.0.0.1 standing in for
// the resolvers behind forward: it answers A for every name under "example."
// with 203.0.113.7, for names under cluster.local. (which only fallthrough
// sends it) with fallthroughIP, and NXDOMAIN for anything else.
func startUpstream(t testing.TB) int {
	t.Helper()
	p := loopback.FreePort(t)
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatal(err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case dns.IsSubDomain("example.", q.Name) && q.Qtype == dns.TypeA:
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("203.0.113.7")}}
		case dns.IsSubDomain("example.", q.Name):
		case dns.IsSubDomain("cluster.local.", q.Name) && q.Qtype == dns.TypeA:
			// Only reached through outpost's fallthrough.
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(fallthroughIP)}}
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	return p
}

const fallthroughIP = "203.0.113.8"

// namespace creates a namespace for one test and deletes it afterwards.
func namespace(t testing.TB, name string, labels map[string]string) string {
	t.Helper()
	ctx := context.Background()
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

func port(name string, p int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: p, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(p)}
}

func createService(t testing.TB, svc *corev1.Service) *corev1.Service {
	t.Helper()
	out, err := kube.CoreV1().Services(svc.Namespace).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s/%s: %v", svc.Namespace, svc.Name, err)
	}
	return out
}

func clusterIPService(ns, name string, dual bool, ports ...corev1.ServicePort) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: ports},
	}
	if dual {
		policy := corev1.IPFamilyPolicyRequireDualStack
		svc.Spec.IPFamilyPolicy = &policy
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	}
	return svc
}

func headlessService(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	svc := clusterIPService(ns, name, false, ports...)
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	return svc
}

func externalService(ns, name, target string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: target},
	}
}

// endpoint describes one endpoint of a slice.
type endpoint struct {
	ip, hostname, pod string
	notReady          bool
}

func createSlice(t testing.TB, ns, service, name string, family discovery.AddressType, ports []discovery.EndpointPort, eps ...endpoint) *discovery.EndpointSlice {
	t.Helper()
	es := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discovery.LabelServiceName: service}},
		AddressType: family,
		Ports:       ports,
	}
	for _, e := range eps {
		ready := !e.notReady
		ep := discovery.Endpoint{Addresses: []string{e.ip}, Conditions: discovery.EndpointConditions{Ready: &ready}}
		if e.hostname != "" {
			ep.Hostname = &e.hostname
		}
		if e.pod != "" {
			ep.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: e.pod, Namespace: ns}
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	out, err := kube.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), es, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create endpointslice %s/%s: %v", ns, name, err)
	}
	return out
}

func slicePort(name string, p int32) discovery.EndpointPort {
	proto := corev1.ProtocolTCP
	return discovery.EndpointPort{Name: &name, Port: &p, Protocol: &proto}
}

// apiProxy is a TCP proxy on 127.0.0.1 in front of the API server. Cutting
// it closes its listener and every open connection: to CoreDNS that is the
// API server going away; restoring it listens on the same port again.
type apiProxy struct {
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	target string
}

func startAPIProxy(t testing.TB) *apiProxy {
	t.Helper()
	p := &apiProxy{target: apiHost, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *apiProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *apiProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *apiProxy) restore(t testing.TB) {
	t.Helper()
	var (
		ln  net.Listener
		err error
	)
	poll.Eventually(t, 10*time.Second, "the API proxy listening again on "+p.addr, func() error {
		ln, err = net.Listen("tcp", p.addr)
		return err
	})
	p.serve(ln)
}
