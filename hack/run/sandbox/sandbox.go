// Package sandbox is the part of `make run` that shows the syncer's
// datapath: a "node" network namespace where bin/outpost-syncer programs
// its iptables rules, and a "backend" namespace standing for a machine
// outside the cluster, with a real HTTP server at a sample's backend
// address. A request to the sample's ClusterIP from inside the node goes
// through the syncer's rules to that server.
//
// Topology (every address exists only inside the two namespaces, which
// have no link to the host: no packet leaves the machine):
//
//	node [uplink0=uplink1: default route] 192.168.1.1 --veth-- 192.168.1.2 backend (HTTP on :31496)
//
// The node has a default route to a veth pair with both ends inside it (a
// link to nowhere; kernels without the dummy module have veth), like a real node has
// one to its uplink: a socket to a ClusterIP needs a route before the
// syncer's DNAT sends it to the backend. The syncer runs in the host
// namespace (it reaches the API server on 127.0.0.1) and applies its rules
// inside the node with --netns, as in test/e2e.
//
// Namespaces are named Prefix+"node-"+pid and Prefix+"backend-"+pid, so
// runs never collide, and the leftovers of a killed run (whose pid is gone)
// are deleted on the next start.
package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-dev/outpost/test/lib/netns/setns"
	"github.com/outpost-dev/outpost/test/lib/process"
)

// Prefix starts the name of every namespace a sandbox makes.
const Prefix = "outpost-run-"

const (
	nodeAddr    = "192.168.1.1"
	backendAddr = "192.168.1.2"
	// podCIDR holds no pod: traffic from the node to a ClusterIP is
	// masqueraded, as kube-proxy does for traffic from outside the pods.
	podCIDR = "10.244.0.0/16"
)

// Backend is the one machine the sandbox hosts: a sample's address and
// target port. Its answer names it, so a reader of the curl output sees
// where the request went.
type Backend struct{ IP, Port string }

// Greeting is the server's one-line answer.
func (b Backend) Greeting() string {
	return fmt.Sprintf("hello from %s (an outside machine)", net.JoinHostPort(b.IP, b.Port))
}

// Options configure Start.
type Options struct {
	// Syncer is the path of bin/outpost-syncer.
	Syncer string
	// Kubeconfig is the syncer's way to the API server.
	Kubeconfig string
	// LogPath receives the syncer's output.
	LogPath string
	// Target is the Service address (ClusterIP:port) whose backend is
	// Backend; Start returns once a GET through it gets Backend's answer.
	Target string
	// Backend must be on 192.168.1.0/24, the node's link to the backend.
	Backend Backend
	// Wait bounds the wait for the syncer's rules (default 30s).
	Wait time.Duration
	// MetricsBindAddress is the syncer's --metrics-bind-address on the
	// host's loopback; empty serves none, so that sandboxes of concurrent
	// tests never compete for a port.
	MetricsBindAddress string
}

// Sandbox is a running sandbox; Close removes it.
type Sandbox struct {
	// Node is the node namespace's name.
	Node string
	// Command is a shell command that fetches the backend's answer
	// through the ClusterIP from inside the node, checked by Start.
	Command string

	undo []func()
}

// Skip says why this machine cannot run a sandbox, or "" if it can.
func Skip() string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "needs " + strings.Join(missing, " and ")
}

// Start builds the namespaces, starts the HTTP server and the syncer, and
// waits until a GET to opts.Target from inside the node gets the backend's
// answer. On error everything made so far is removed.
func Start(ctx context.Context, opts Options) (_ *Sandbox, err error) {
	if opts.Wait == 0 {
		opts.Wait = 30 * time.Second
	}
	if _, ipnet, _ := net.ParseCIDR(nodeAddr + "/24"); !ipnet.Contains(net.ParseIP(opts.Backend.IP)) {
		return nil, fmt.Errorf("sandbox: backend %s is not on the node's link %s", opts.Backend.IP, ipnet)
	}
	RemoveLeftovers()
	pid := os.Getpid()
	s := &Sandbox{Node: fmt.Sprintf("%snode-%d", Prefix, pid)}
	backend := fmt.Sprintf("%sbackend-%d", Prefix, pid)
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	for _, ns := range []string{s.Node, backend} {
		if err := ip("netns", "add", ns); err != nil {
			return nil, err
		}
		s.undo = append(s.undo, func() { _ = ip("netns", "del", ns) })
		if err := ip("-n", ns, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
	}
	// Links are made inside the node (ip -n), so their names never meet
	// the host's, and go away with the namespaces.
	for _, args := range [][]string{
		{"-n", s.Node, "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1"},
		{"-n", s.Node, "link", "set", "uplink0", "up"},
		{"-n", s.Node, "link", "set", "uplink1", "up"},
		{"-n", s.Node, "route", "add", "default", "dev", "uplink0"},
		{"-n", s.Node, "link", "add", "backend0", "type", "veth", "peer", "name", "eth0", "netns", backend},
		{"-n", s.Node, "addr", "add", nodeAddr + "/24", "dev", "backend0"},
		{"-n", s.Node, "link", "set", "backend0", "up"},
		{"-n", backend, "addr", "add", opts.Backend.IP + "/24", "dev", "eth0"},
		{"-n", backend, "link", "set", "eth0", "up"},
		{"-n", backend, "route", "add", "default", "via", nodeAddr},
	} {
		if err := ip(args...); err != nil {
			return nil, err
		}
	}

	stopServer, err := serve(backend, opts.Backend)
	if err != nil {
		return nil, err
	}
	s.undo = append(s.undo, stopServer)

	syncer, err := startSyncer(opts, s.Node)
	if err != nil {
		return nil, err
	}
	s.undo = append(s.undo, syncer.Stop)

	url := "http://" + opts.Target + "/"
	if err := waitForAnswer(ctx, syncer, s.Node, url, opts.Backend.Greeting(), opts.Wait); err != nil {
		return nil, fmt.Errorf("sandbox: %w (syncer log: %s)", err, opts.LogPath)
	}
	s.Command = fmt.Sprintf("sudo ip netns exec %s curl -s %s", s.Node, url)
	return s, nil
}

// Close stops the syncer and the server and deletes the namespaces (and
// with them the veth pair and the syncer's rules), newest first.
func (s *Sandbox) Close() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		s.undo[i]()
	}
	s.undo = nil
}

// RemoveLeftovers deletes the namespaces of earlier runs whose process is
// gone (killed before it could clean up).
func RemoveLeftovers() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, name := range leftovers(string(out), processExists) {
		_ = ip("netns", "del", name)
	}
}

// leftovers picks from `ip netns list` output the sandbox namespaces whose
// owning pid does not run.
func leftovers(list string, running func(pid int) bool) []string {
	var out []string
	for _, line := range strings.Split(list, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], Prefix) {
			continue
		}
		name := fields[0]
		pid, err := strconv.Atoi(name[strings.LastIndex(name, "-")+1:])
		if err != nil || !running(pid) {
			out = append(out, name)
		}
	}
	return out
}

func processExists(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// serve starts the backend's HTTP server inside its namespace.
func serve(ns string, b Backend) (stop func(), err error) {
	var ln net.Listener
	if err := setns.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(b.IP, b.Port))
		return err
	}); err != nil {
		return nil, fmt.Errorf("sandbox: backend server: %w", err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, b.Greeting())
		}),
	}
	go srv.Serve(ln) //nolint:errcheck // ends on Close
	// Closing the listener also lets the kernel free the namespace.
	return func() { _ = srv.Close() }, nil
}

// startSyncer runs the syncer in the host namespace, applying its rules in
// the node; it dies with this process even when this one is killed.
func startSyncer(opts Options, node string) (*process.Process, error) {
	metrics := opts.MetricsBindAddress
	if metrics == "" {
		metrics = "0"
	}
	return process.Start(opts.LogPath, opts.Syncer, "--kubeconfig", opts.Kubeconfig, "--netns", node,
		"--node-name", "outpost-run", "--node-ip", nodeAddr, "--cluster-cidr", podCIDR,
		"--min-sync-period", "100ms", "--metrics-bind-address", metrics, "--healthz-bind-address", "0")
}

// waitForAnswer GETs url from inside the node until the answer is want,
// while the syncer runs.
func waitForAnswer(ctx context.Context, syncer *process.Process, node, url, want string, timeout time.Duration) error {
	client := &http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
				err = setns.Do(node, func() (err error) {
					c, err = (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}
	return syncer.Until(ctx, 200*time.Millisecond, timeout, "GET "+url+" from the node", func() error {
		got, err := get(client, url)
		if err == nil && got != want {
			err = fmt.Errorf("answer %q, want %q", got, want)
		}
		return err
	})
}

func get(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(io.LimitReader(resp.Body, 1024)).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read %s: %w", url, err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}
