// Package netns creates named network namespaces for tests that need a real
// datapath (iptables, veth, TCP). Tests needing it must fail, not skip, in
// CI (CI=true) when not root or when the tools are missing.
package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Require fails (in CI) or skips (elsewhere) unless we are root with the
// iptables and iproute2 tools installed.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "iptables", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("datapath test needs %s (.ci/run installs iptables and iproute2)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
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

// Cmd returns a command running inside the namespace.
func (ns *NS) Cmd(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
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
