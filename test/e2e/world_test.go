// Package e2e walks end to end the user stories the README lists (its
// "User stories", the samples in config/samples) and two more (7: a
// database whose DNS name moves on failover; 8: pods behind ordinary
// Services), with every part real: a kube-apiserver and etcd
// (test/lib/testenv) with the CRD, the bin/outpost-operator process,
// bin/coredns with the outpost plugin answering real queries on 127.0.0.1,
// and bin/outpost-syncer programming iptables in a "node" network namespace. A client namespace connects
// through the ClusterIPs and NodePorts the syncer wrote to real TCP servers
// standing at each story's backend addresses, one namespace per machine.
//
// Topology (every address exists only inside namespaces this test makes):
//
//	client 198.51.100.2 --veth-- 198.51.100.1 node [br0 192.168.1.1 192.168.2.1 192.168.3.1 203.0.113.1]
//	                                                 |-- veth -- machine 192.168.1.2 (svc1, rocketmq)
//	                                                 |-- veth -- machine 203.0.113.21 (external-service-1)
//	                                                 ...
//
// The syncer runs in the host namespace (it must reach the API server on
// 127.0.0.1) and programs the node with --netns. CoreDNS has no forward
// plugin: no query leaves the machine, and the public names the alias
// stories point at are never resolved.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/operator"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/netns"
	"github.com/outpost-dev/outpost/test/lib/process"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

const (
	nodeName = "node1"
	nodeIP   = "198.51.100.1"
	clientIP = "198.51.100.2"
	// podCIDR holds story 8's pods; traffic from outside it is masqueraded.
	podCIDR = "192.168.2.0/24"
	// clusterDomain is the zone the plugin serves.
	clusterDomain = "cluster.local"
)

// bridgeNets are the node's subnets towards the machines; a machine's
// gateway is the .1 of its /24.
var bridgeNets = []string{"192.168.1.1/24", "192.168.2.1/24", "192.168.3.1/24", "203.0.113.1/24"}

// bins holds the binaries under test, built once for the package.
var bins struct{ coredns, operator, syncer string }

// TestMain builds the three binaries once, into a directory of its own so
// packages testing in parallel never overwrite each other's bin/ files.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "outpost-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := testenv.Build(dir+"/", "./plugin/coredns", "./operator/cmd/outpost-operator", "./operator/cmd/outpost-syncer"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	crlog.SetLogger(logr.Discard()) // envtest and the client log through controller-runtime
	bins.coredns = filepath.Join(dir, "coredns")
	bins.operator = filepath.Join(dir, "outpost-operator")
	bins.syncer = filepath.Join(dir, "outpost-syncer")
	return m.Run()
}

// machine is a network namespace standing for one host outside the
// cluster (or one pod), with TCP servers on its address.
type machine struct {
	ip string
	ns *netns.NS
}

// world is the running sandbox.
type world struct {
	tb       testing.TB
	kube     kubernetes.Interface
	client   client.Client
	node     *netns.NS
	clientNS *netns.NS
	machines map[string]*machine
	// upstream answers the operator's queries for DNS names in
	// spec.addresses (story 7).
	upstream *dnsserver.Server
	dnsAddr  string // CoreDNS, 127.0.0.1:PORT
}

// newWorld brings up the control plane, the namespaces with servers on
// the given machine ports, the operator, CoreDNS and the syncer.
func newWorld(tb testing.TB, machinePorts map[string][]int) *world {
	tb.Helper()
	netns.Require(tb)
	env, err := testenv.New()
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		tb.Fatalf("start envtest: %v", err)
	}
	tb.Cleanup(func() { _ = env.Stop() })
	w := &world{tb: tb, machines: map[string]*machine{}, upstream: dnsserver.Start(tb)}
	w.kube = kubernetes.NewForConfigOrDie(cfg)
	if w.client, err = client.New(cfg, client.Options{Scheme: operator.Scheme()}); err != nil {
		tb.Fatal(err)
	}
	kubeconfig := testenv.AdminKubeconfigFile(tb, env, "outpost-e2e", "")

	w.buildNetwork(machinePorts)

	w.start("operator", bins.operator, "--kubeconfig", kubeconfig,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--service-cidr", testenv.DualStackServiceCIDRs, "--dns-server", w.upstream.Addr)
	w.start("syncer", bins.syncer, "--kubeconfig", kubeconfig,
		"--node-name", nodeName, "--node-ip", nodeIP, "--cluster-cidr", podCIDR, "--netns", w.node.Name,
		"--min-sync-period", "100ms", "--metrics-bind-address", "0", "--healthz-bind-address", "0")
	w.startCoreDNS(kubeconfig)
	return w
}

// buildNetwork makes the node, the client and one namespace per machine.
// Links are created inside the node (ip -n), so their names never meet
// those of another test in the host namespace.
func (w *world) buildNetwork(machinePorts map[string][]int) {
	tb := w.tb
	w.node = netns.New(tb, "e2e-node")
	w.clientNS = netns.New(tb, "e2e-client")
	w.node.Must(tb, "ip", "link", "add", "toclient", "type", "veth", "peer", "name", "eth0", "netns", w.clientNS.Name)
	w.node.Must(tb, "ip", "addr", "add", nodeIP+"/24", "dev", "toclient")
	w.node.Must(tb, "ip", "link", "set", "toclient", "up")
	w.clientNS.Must(tb, "ip", "addr", "add", clientIP+"/24", "dev", "eth0")
	w.clientNS.Must(tb, "ip", "link", "set", "eth0", "up")
	w.clientNS.Must(tb, "ip", "route", "add", "default", "via", nodeIP)
	w.node.RouteLikeANode(tb)
	w.node.Must(tb, "ip", "link", "add", "br0", "type", "bridge")
	for _, gw := range bridgeNets {
		w.node.Must(tb, "ip", "addr", "add", gw, "dev", "br0")
	}
	w.node.Must(tb, "ip", "link", "set", "br0", "up")

	ips := make([]string, 0, len(machinePorts))
	for ip := range machinePorts {
		ips = append(ips, ip)
	}
	slices.Sort(ips)
	for i, ip := range ips {
		m := &machine{ip: ip, ns: netns.New(tb, "e2e-"+strings.ReplaceAll(ip, ".", "-"))}
		link := fmt.Sprintf("m%d", i)
		w.node.Must(tb, "ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", m.ns.Name)
		w.node.Must(tb, "ip", "link", "set", link, "master", "br0")
		w.node.Must(tb, "ip", "link", "set", link, "up")
		m.ns.Must(tb, "ip", "addr", "add", ip+"/24", "dev", "eth0")
		m.ns.Must(tb, "ip", "link", "set", "eth0", "up")
		m.ns.Must(tb, "ip", "route", "add", "default", "via", gateway(ip))
		for _, port := range machinePorts[ip] {
			w.serve(m, port)
		}
		w.machines[ip] = m
	}
}

// gateway is the node's address on ip's /24.
func gateway(ip string) string { return ip[:strings.LastIndex(ip, ".")] + ".1" }

// serve starts a TCP server at m's address and port that answers each
// connection with "<its own address:port> <the peer's address:port>", so a
// test sees which machine and port it reached and who it came from.
func (w *world) serve(m *machine, port int) {
	var ln net.Listener
	if err := m.ns.Do(func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(m.ip, fmt.Sprint(port)))
		return err
	}); err != nil {
		w.tb.Fatal(err)
	}
	w.tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", c.LocalAddr(), c.RemoteAddr())
			c.Close()
		}
	}()
}

// reply is what a server answered.
type reply struct{ server, peer string }

// connect opens one TCP connection from the client namespace and reads the
// server's answer.
func (w *world) connect(addr string, timeout time.Duration) (reply, error) {
	var c net.Conn
	if err := w.clientNS.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	}); err != nil {
		return reply{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return reply{}, fmt.Errorf("read from %s: %w", addr, err)
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return reply{}, fmt.Errorf("%s answered %q", addr, line)
	}
	return reply{server: f[0], peer: f[1]}, nil
}

// start runs a binary in the host namespace for the life of the test.
func (w *world) start(name, path string, args ...string) *process.Process {
	return process.StartForTest(w.tb, name, append([]string{path}, args...)...)
}

// startCoreDNS runs bin/coredns with the outpost plugin on a free
// loopback port and waits until it answers.
func (w *world) startCoreDNS(kubeconfig string) {
	tb := w.tb
	port := loopback.FreePort(tb)
	w.dnsAddr = fmt.Sprintf("127.0.0.1:%d", port)
	corefile := fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    errors
    outpost %s in-addr.arpa ip6.arpa {
        kubeconfig %s
    }
}
`, port, clusterDomain, kubeconfig)
	path := filepath.Join(tb.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o600); err != nil {
		tb.Fatal(err)
	}
	p := w.start("coredns", bins.coredns, "-conf", path)
	p.Eventually(tb, 60*time.Second, "CoreDNS answers", func() error {
		_, err := w.lookup("dns-version."+clusterDomain+".", dns.TypeTXT)
		return err
	})
}

// lookup asks CoreDNS one question over UDP.
func (w *world) lookup(name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, w.dnsAddr)
	return r, err
}

// addresses looks up the A records of a name; an error unless the answer
// is NOERROR with at least one A record.
func (w *world) addresses(name string) ([]string, error) {
	r, err := w.lookup(name, dns.TypeA)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("%s A: %s", name, dns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s A: no A records in %v", name, r.Answer)
	}
	slices.Sort(out)
	return out, nil
}

// serviceName is a Service's DNS name.
func serviceName(name string) string { return name + ".default.svc." + clusterDomain }

// ctx is the context of API calls; every call is short.
func ctx() context.Context { return context.Background() }

// keyOf names an object in the default namespace.
func keyOf(name string) client.ObjectKey { return client.ObjectKey{Namespace: "default", Name: name} }
