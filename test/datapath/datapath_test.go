// Package datapath is the syncer's end-to-end test on a real datapath: a
// real kube-apiserver, the real bin/outpost-syncer process, real
// iptables-restore inside a "node" network namespace, and real TCP/UDP
// connections from a "client" namespace to servers in "backend"
// namespaces, through ClusterIPs and NodePorts.
//
// Topology (all addresses exist only inside the namespaces this test makes):
//
//	client 203.0.113.2 --veth-- 203.0.113.1 node [br0 198.51.100.1] --veth-- b1..b4 198.51.100.11-14
//
// b4 has no route back to the client: it answers only when the node
// masquerades. The syncer runs in the host namespace (it must reach the API
// server on 127.0.0.1) and programs the node with --netns.
package datapath

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/outpost-dev/outpost/test/lib/netns"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/process"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

const (
	nodeName = "node1"
	nodeIP   = "203.0.113.1"
	clientIP = "203.0.113.2"
	bridgeIP = "198.51.100.1"
	// The backends are the node's pods: their bridge is the cluster CIDR,
	// so their own calls to a ClusterIP are not masqueraded (hairpin).
	clusterCID = "198.51.100.0/24"
)

var syncerBin string

func TestMain(m *testing.M) {
	// Build the real binary once for the package.
	syncerBin = filepath.Join(testenv.RepoRoot(), "bin", "outpost-syncer")
	if err := testenv.Build(syncerBin, "./operator/cmd/outpost-syncer"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

type world struct {
	t        *testing.T
	client   *netns.NS
	node     *netns.NS
	backends []netns.Backend
	kube     kubernetes.Interface
	// kubeconfig is the syncer's, for the control plane setup started.
	kubeconfig string
}

var backendTCPPorts = []int{8080, 31496, 31337}

const backendUDPPort = 5353

// setup starts a control plane and the node network with its backends
// serving.
func setup(t *testing.T) *world {
	t.Helper()
	netns.Require(t)
	env, cfg := testenv.StartForTest(t)
	w := &world{t: t, kube: kubernetes.NewForConfigOrDie(cfg), kubeconfig: testenv.AdminKubeconfigFile(t, env, "outpost-syncer", "")}
	nodeNet := netns.NewNodeNetwork(t, netns.NodeNetworkSpec{
		Prefix: "op", ClientIP: clientIP, NodeIP: nodeIP, BridgeIP: bridgeIP,
		Backends: 4, NoRouteBack: []int{4}, // b4 has no way back to the client
	})
	w.node, w.client, w.backends = nodeNet.Node, nodeNet.Client, nodeNet.Backends
	for _, b := range w.backends {
		b.ServeWhoAmI(t, backendUDPPort, backendTCPPorts...)
	}
	return w
}

// reply is what a backend answered.
type reply struct{ backend, from string }

// get opens one TCP connection from the client namespace.
func (w *world) get(addr string) (reply, error) { return w.getFrom(w.client, addr) }

// getFrom opens one TCP connection from a namespace of the test.
func (w *world) getFrom(from *netns.NS, addr string) (reply, error) {
	var c net.Conn
	if err := from.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 2*time.Second)
		return err
	}); err != nil {
		return reply{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return reply{}, err
	}
	return parseReply(line)
}

// udp sends one datagram from the client namespace.
func (w *world) udp(addr string) (reply, error) {
	var c net.Conn
	if err := w.client.Do(func() (err error) {
		c, err = net.Dial("udp4", addr)
		return err
	}); err != nil {
		return reply{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		return reply{}, err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return reply{}, err
	}
	return parseReply(string(buf[:n]))
}

// parseReply reads a backend's answer (netns.Backend.ServeWhoAmI).
func parseReply(answer string) (reply, error) {
	name, client, err := netns.ParseWhoAmI(answer)
	if err != nil {
		return reply{}, err
	}
	return reply{name, client.Addr().String()}, nil
}

// counts opens n connections and counts answers per backend.
func (w *world) counts(addr string, n int) map[string]int {
	w.t.Helper()
	out := map[string]int{}
	for range n {
		r, err := w.get(addr)
		if err != nil {
			w.t.Fatalf("connect %s: %v", addr, err)
		}
		out[r.backend]++
	}
	return out
}

func (w *world) service(name string, typ v1.ServiceType, mutate func(*v1.Service), ports ...v1.ServicePort) *v1.Service {
	w.t.Helper()
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "outpost-operator"}},
		Spec:       v1.ServiceSpec{Type: typ, Ports: ports},
	}
	if mutate != nil {
		mutate(svc)
	}
	out, err := w.kube.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatalf("create service %s: %v", name, err)
	}
	return out
}

type ep struct {
	b    netns.Backend
	node string
}

func (w *world) slice(svc, portName string, proto v1.Protocol, port int32, eps ...ep) {
	w.t.Helper()
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: svc + "-" + strings.ToLower(string(proto)) + portName,
			Labels: map[string]string{discovery.LabelServiceName: svc, discovery.LabelManagedBy: "outpost-operator"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To(portName), Protocol: ptr.To(proto), Port: ptr.To(port)}},
	}
	for _, e := range eps {
		d := discovery.Endpoint{Addresses: []string{e.b.IP}, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}}
		if e.node != "" {
			d.NodeName = ptr.To(e.node)
		}
		s.Endpoints = append(s.Endpoints, d)
	}
	ctx := context.Background()
	cur, err := w.kube.DiscoveryV1().EndpointSlices("default").Get(ctx, s.Name, metav1.GetOptions{})
	if err == nil {
		s.ResourceVersion = cur.ResourceVersion
		_, err = w.kube.DiscoveryV1().EndpointSlices("default").Update(ctx, s, metav1.UpdateOptions{})
	} else {
		_, err = w.kube.DiscoveryV1().EndpointSlices("default").Create(ctx, s, metav1.CreateOptions{})
	}
	if err != nil {
		w.t.Fatalf("write slice %s: %v", s.Name, err)
	}
}

func tcpPort(name string, port, target int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Port: port, Protocol: v1.ProtocolTCP, TargetPort: intstr.FromInt32(target)}
}

func TestDatapath(t *testing.T) {
	w := setup(t)
	kubeconfig := w.kubeconfig

	b1, b2, b3, b4 := w.backends[0], w.backends[1], w.backends[2], w.backends[3]
	all := []ep{{b: b1}, {b: b2}, {b: b3}}
	web := w.service("web", v1.ServiceTypeNodePort, nil, tcpPort("http", 80, 8080))
	w.slice("web", "http", v1.ProtocolTCP, 8080, all...)
	// User story 1: two named ports to one machine.
	svc1 := w.service("svc1", v1.ServiceTypeClusterIP, nil, tcpPort("a", 7064, 31496), tcpPort("b", 7164, 31337))
	w.slice("svc1", "a", v1.ProtocolTCP, 31496, ep{b: b1})
	w.slice("svc1", "b", v1.ProtocolTCP, 31337, ep{b: b2})
	empty := w.service("empty", v1.ServiceTypeClusterIP, nil, tcpPort("", 80, 8080))
	sticky := w.service("sticky", v1.ServiceTypeClusterIP, func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](300)}}
	}, tcpPort("http", 80, 8080))
	w.slice("sticky", "http", v1.ProtocolTCP, 8080, all...)
	local := w.service("local", v1.ServiceTypeNodePort, func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}, tcpPort("http", 80, 8080))
	w.slice("local", "http", v1.ProtocolTCP, 8080, ep{b: b1, node: nodeName}, ep{b: b2, node: "node2"})
	noroute := w.service("noroute", v1.ServiceTypeClusterIP, nil, tcpPort("", 80, 8080))
	w.slice("noroute", "", v1.ProtocolTCP, 8080, ep{b: b4})
	dns := w.service("dns", v1.ServiceTypeClusterIP, nil, v1.ServicePort{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP, TargetPort: intstr.FromInt32(backendUDPPort)})
	w.slice("dns", "dns", v1.ProtocolUDP, backendUDPPort, all...)
	// Not selected by --service-selector: must get no rules.
	other := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "other"}, Spec: v1.ServiceSpec{Ports: []v1.ServicePort{tcpPort("", 80, 8080)}}}
	other, err := w.kube.CoreV1().Services("default").Create(context.Background(), other, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.slice("other", "", v1.ProtocolTCP, 8080, all...)

	syncer := process.StartForTest(t, "syncer", syncerBin,
		"--kubeconfig", kubeconfig, "--node-name", nodeName, "--node-ip", nodeIP, "--cluster-cidr", clusterCID,
		"--netns", w.node.Name, "--service-selector", "app.kubernetes.io/managed-by=outpost-operator",
		"--min-sync-period", "100ms", "--canary-period", "500ms", "--metrics-bind-address", "0", "--healthz-bind-address", "0", "--zap-log-level", "1")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node nat table:\n%s", w.node.Must(t, "iptables-save", "-t", "nat"))
		}
	})

	clusterAddr := func(s *v1.Service, port int32) string { return net.JoinHostPort(s.Spec.ClusterIP, fmt.Sprint(port)) }
	nodePortAddr := func(s *v1.Service) string { return net.JoinHostPort(nodeIP, fmt.Sprint(s.Spec.Ports[0].NodePort)) }

	poll.Eventually(t, 20*time.Second, "web reachable through its ClusterIP", func() error { _, err := w.get(clusterAddr(web, 80)); return err })

	t.Run("ClusterIP spreads over three backends", func(t *testing.T) {
		const n = 300
		c := w.counts(clusterAddr(web, 80), n)
		// Binomial(300, 1/3): mean 100, sd 8.2; allow about five sd.
		for _, b := range []string{"b1", "b2", "b3"} {
			if c[b] < 60 || c[b] > 140 {
				t.Errorf("backend %s got %d of %d connections: %v", b, c[b], n, c)
			}
		}
	})

	t.Run("NodePort reaches the backends, masqueraded", func(t *testing.T) {
		for range 20 {
			r, err := w.get(nodePortAddr(web))
			if err != nil {
				t.Fatal(err)
			}
			if r.from != bridgeIP {
				t.Fatalf("backend saw %s, want the node's %s (Cluster policy masquerades)", r.from, bridgeIP)
			}
		}
	})

	t.Run("story 1: both named ports", func(t *testing.T) {
		for port, want := range map[int32]string{7064: "b1", 7164: "b2"} {
			r, err := w.get(clusterAddr(svc1, port))
			if err != nil || r.backend != want {
				t.Errorf("svc1:%d -> %v %v, want %s", port, r, err, want)
			}
		}
	})

	t.Run("UDP", func(t *testing.T) {
		seen := map[string]bool{}
		for range 30 {
			r, err := w.udp(clusterAddr(dns, 53))
			if err != nil {
				t.Fatal(err)
			}
			seen[r.backend] = true
		}
		if len(seen) < 2 {
			t.Errorf("UDP answers only from %v", seen)
		}
	})

	t.Run("no endpoints: refused at once", func(t *testing.T) {
		start := time.Now()
		_, err := w.get(clusterAddr(empty, 80))
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("got %v, want connection refused", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("refusal took %s", d)
		}
	})

	t.Run("service not selected gets no rules", func(t *testing.T) {
		if _, err := w.get(clusterAddr(other, 80)); err == nil {
			t.Error("a Service outside --service-selector was programmed")
		}
	})

	t.Run("session affinity pins a client", func(t *testing.T) {
		c := w.counts(clusterAddr(sticky, 80), 30)
		if len(c) != 1 {
			t.Errorf("ClientIP affinity spread one client over %v", c)
		}
	})

	t.Run("externalTrafficPolicy Local", func(t *testing.T) {
		for range 20 {
			r, err := w.get(nodePortAddr(local))
			if err != nil {
				t.Fatal(err)
			}
			if r.backend != "b1" || r.from != clientIP {
				t.Fatalf("got %+v, want the node-local b1 seeing the client address %s", r, clientIP)
			}
		}
	})

	t.Run("backend without a route back answers through masquerade", func(t *testing.T) {
		r, err := w.get(clusterAddr(noroute, 80))
		if err != nil || r.backend != "b4" || r.from != bridgeIP {
			t.Errorf("got %+v %v", r, err)
		}
	})

	t.Run("removed endpoint gets no new connections", func(t *testing.T) {
		w.slice("web", "http", v1.ProtocolTCP, 8080, ep{b: b1}, ep{b: b2})
		poll.Eventually(t, 20*time.Second, "b3 drained", func() error {
			if c := w.counts(clusterAddr(web, 80), 20); c["b3"] > 0 {
				return fmt.Errorf("b3 still gets connections: %v", c)
			}
			return nil
		})
		if c := w.counts(clusterAddr(web, 80), 60); c["b3"] != 0 || c["b1"] == 0 || c["b2"] == 0 {
			t.Errorf("after removal: %v", c)
		}
	})

	t.Run("flushed nat table is restored", func(t *testing.T) {
		w.node.Must(t, "iptables", "-t", "nat", "-F")
		w.node.Must(t, "iptables", "-t", "nat", "-X")
		if _, err := w.get(clusterAddr(web, 80)); err == nil {
			// The service is gone until the syncer notices; a connection
			// may not succeed now (nothing routes the ClusterIP).
			t.Log("connection succeeded right after the flush")
		}
		poll.Eventually(t, 20*time.Second, "rules restored after flush", func() error { _, err := w.get(clusterAddr(web, 80)); return err })
		if r, err := w.get(nodePortAddr(web)); err != nil || r.backend == "b3" {
			t.Errorf("NodePort after restore: %+v %v", r, err)
		}
		if !strings.Contains(syncer.Log(), "Canary chain gone") {
			t.Error("the syncer did not report the flush through its canary")
		}
		if n := strings.Count(w.node.Must(t, "iptables-save", "-t", "nat"), "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j OUTPOST-SERVICES"); n != 1 {
			t.Errorf("PREROUTING jump present %d times after the resync", n)
		}
	})

	t.Run("a pod calling its own Service is masqueraded only when it lands on itself", w.testHairpin)
	t.Run("loadBalancerSourceRanges admit the range, drop the others", w.testLoadBalancerSourceRanges)
	t.Run("health check node port answers by local endpoints", w.testHealthCheckNodePort)

	t.Run("--once --dry-run prints the restore input", func(t *testing.T) {
		out, err := exec.Command(syncerBin, "--kubeconfig", kubeconfig, "--node-name", nodeName, "--cluster-cidr", clusterCID,
			"--service-selector", "app.kubernetes.io/managed-by=outpost-operator", "--chain-prefix", "KUBE", "--layout", "kube-proxy",
			"--once", "--dry-run").Output()
		if err != nil {
			t.Fatal(err)
		}
		text := string(out)
		for _, want := range []string{"*nat\n", ":KUBE-SERVICES - [0:0]", "-d " + web.Spec.ClusterIP + " --dport 80 -j KUBE-SVC-", "-j KUBE-SEP-", "COMMIT\n"} {
			if !strings.Contains(text, want) {
				t.Errorf("dry-run output lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, other.Spec.ClusterIP) {
			t.Error("dry-run output has the unselected Service")
		}
	})
}
