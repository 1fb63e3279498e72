// Package netns gives tests network namespaces of their own, for a real
// datapath (iptables, veth, TCP) without a packet leaving the machine.
//
// New makes a bare named namespace (the syncer's node, client and backends
// are wired by their test). NewHost makes a namespace joined to the test's
// own namespace by a veth pair on an on-link documentation range, with real
// TCP, HTTP and HTTPS servers inside that the test can stop and start; its
// addresses are accepted by the API server in EndpointSlices (unlike
// 127.0.0.0/8).
//
// Each Host takes one of 16 slots: a /27 of 198.51.100.0/24 or
// 203.0.113.0/24 and a /64 of 2001:db8::/32. A slot is held with an
// flock(2) on /run/outpost-netns/slot-N.lock for the life of the
// namespace, so test packages running in parallel never share a range or
// an interface name, and leftovers of a killed run in a free slot are
// deleted before the slot is reused. Cleanup (registered with tb.Cleanup)
// deletes the namespace and the veth pair.
//
// Servers are created inside a Host by switching one locked OS thread into
// it just for the socket() and bind() calls: a socket stays in the namespace
// it was made in, so the server runs in this process, and stopping or
// starting it is a Close or a new Listen.
//
// Everything here needs root and iproute2: without them the test fails when
// CI=true and is skipped otherwise.
package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/outpost-dev/outpost/test/lib/netns/setns"
)

// Require fails (CI=true) or skips the test unless it runs as root with
// iproute2 and iptables, for tests that program a datapath.
func Require(t testing.TB) {
	t.Helper()
	require(t, "ip", "iptables", "iptables-restore", "iptables-save")
}

// RequireRoot is Require for tests that need namespaces but not iptables.
func RequireRoot(t testing.TB) {
	t.Helper()
	require(t, "ip")
}

func require(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("network namespace test needs %s (.ci/run installs iptables and iproute2)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must run this test")
	}
	t.Skip(msg)
}

// NS is a named network namespace.
type NS struct{ Name string }

// New creates a namespace with loopback up, deleted when the test ends.
// name gets the pid appended so parallel runs do not collide.
func New(t testing.TB, name string) *NS {
	t.Helper()
	ns := &NS{Name: fmt.Sprintf("%s-%d", name, os.Getpid())}
	_ = exec.Command("ip", "netns", "del", ns.Name).Run()
	Must(t, "ip", "netns", "add", ns.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns.Name).Run() })
	ns.Must(t, "ip", "link", "set", "lo", "up")
	return ns
}

// Do runs fn with the calling goroutine's OS thread inside the namespace.
// Sockets created by fn stay in the namespace after Do returns.
func (ns *NS) Do(fn func() error) error { return setns.Do(ns.Name, fn) }

// Cmd returns a command running inside the namespace.
func (ns *NS) Cmd(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// RouteLikeANode makes the namespace forward IPv4 and gives it a default
// route to an uplink that goes nowhere, as a real node has: packets to a
// ClusterIP are then routed, and traverse FORWARD, where a Service without
// endpoints rejects them.
func (ns *NS) RouteLikeANode(t testing.TB) {
	t.Helper()
	ns.Must(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	ns.Must(t, "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1")
	ns.Must(t, "ip", "link", "set", "uplink0", "up")
	ns.Must(t, "ip", "link", "set", "uplink1", "up")
	ns.Must(t, "ip", "route", "add", "default", "dev", "uplink0")
}

// Must runs a command inside the namespace and fails the test on error.
func (ns *NS) Must(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := ns.Cmd(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("netns %s: %s %s: %v\n%s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Must runs a command in the test's namespace and fails the test on error.
func Must(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
