// Package netns gives a test a network namespace of its own, joined to
// the test's namespace by a veth pair on an on-link documentation range,
// with real TCP, HTTP and HTTPS servers inside that the test can stop and
// start. Addresses in it are accepted by the API server in EndpointSlices
// (unlike 127.0.0.0/8), yet no packet leaves the machine.
//
// Each namespace takes one of 16 slots: a /27 of 198.51.100.0/24 or
// 203.0.113.0/24 and a /64 of 2001:db8::/32. A slot is held with an
// flock(2) on /run/outpost-netns/slot-N.lock for the life of the
// namespace, so test packages running in parallel never share a range or
// an interface name, and leftovers of a killed run in a free slot are
// deleted before the slot is reused. Cleanup (registered with tb.Cleanup)
// deletes the namespace and the veth pair.
//
// Servers are created inside the namespace by switching one locked OS
// thread into it just for the socket() and bind() calls: a socket stays in
// the namespace it was made in, so the server runs in this process, and
// stopping or starting it is a Close or a new Listen.
//
// It needs root and iproute2. Without them New fails the test when
// CI=true and skips it otherwise.
package netns

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	slots   = 16
	lockDir = "/run/outpost-netns"
	// InsideAddrs is how many addresses per family the namespace has.
	InsideAddrs = 10
)

// Namespace is a network namespace made for one test.
type Namespace struct {
	// Name is the `ip netns` name.
	Name string
	// HostIP and HostIP6 are the test side of the veth pair.
	HostIP, HostIP6 netip.Addr
	// IPs and IPs6 are the addresses inside the namespace, on-link from
	// the test side.
	IPs, IPs6 []netip.Addr

	hostLink string
	lock     *os.File
}

// RequireRoot fails (CI=true) or skips the test unless it runs as root
// with the ip tool.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root (network namespaces)"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs the ip tool (apt-get install iproute2)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("netns: %s; CI must run this test", why)
	}
	tb.Skipf("netns: %s", why)
}

// New creates a namespace for tb and deletes it when tb ends.
func New(tb testing.TB) *Namespace {
	tb.Helper()
	RequireRoot(tb)
	slot, lock := takeSlot(tb)
	n := &Namespace{
		Name:     fmt.Sprintf("outpost-test-%d", slot),
		hostLink: fmt.Sprintf("outp%dh", slot),
		lock:     lock,
	}
	base := netip.MustParseAddr("198.51.100.0")
	if slot >= 8 {
		base = netip.MustParseAddr("203.0.113.0")
	}
	b := base.As4()
	b[3] = byte(32 * (slot % 8))
	prefix := netip.PrefixFrom(netip.AddrFrom4(b), 27)
	prefix6 := netip.MustParsePrefix(fmt.Sprintf("2001:db8:0:%x::/64", 0x100+slot))
	n.HostIP = prefix.Addr().Next()
	n.HostIP6 = prefix6.Addr().Next()
	for a, a6 := n.HostIP.Next(), addN(prefix6.Addr(), 0x10); len(n.IPs) < InsideAddrs; a, a6 = a.Next(), a6.Next() {
		n.IPs, n.IPs6 = append(n.IPs, a), append(n.IPs6, a6)
	}
	nsLink := fmt.Sprintf("outp%dn", slot)

	n.removeLeftovers()
	tb.Cleanup(func() {
		n.removeLeftovers()
		lock.Close() // releases the slot
	})
	bits, bits6 := prefix.Bits(), prefix6.Bits()
	cmds := [][]string{
		{"netns", "add", n.Name},
		{"link", "add", n.hostLink, "type", "veth", "peer", "name", nsLink, "netns", n.Name},
		{"addr", "add", fmt.Sprintf("%s/%d", n.HostIP, bits), "dev", n.hostLink},
		{"-6", "addr", "add", fmt.Sprintf("%s/%d", n.HostIP6, bits6), "dev", n.hostLink, "nodad"},
		{"link", "set", n.hostLink, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "link", "set", nsLink, "up"},
	}
	for i := range n.IPs {
		cmds = append(cmds,
			[]string{"-n", n.Name, "addr", "add", fmt.Sprintf("%s/%d", n.IPs[i], bits), "dev", nsLink},
			[]string{"-n", n.Name, "-6", "addr", "add", fmt.Sprintf("%s/%d", n.IPs6[i], bits6), "dev", nsLink, "nodad"})
	}
	for i, args := range cmds {
		if i == 2 {
			// Both ends exist now. A container may run with IPv6 off by
			// default; turn it on for these two interfaces only.
			n.enableIPv6(tb, nsLink)
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			tb.Fatalf("netns: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return n
}

func (n *Namespace) enableIPv6(tb testing.TB, nsLink string) {
	tb.Helper()
	sysctl := func(link string) error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/"+link+"/disable_ipv6", []byte("0"), 0o644)
	}
	if err := sysctl(n.hostLink); err != nil {
		tb.Fatalf("netns: enable IPv6 on %s: %v", n.hostLink, err)
	}
	// /proc/sys/net shows the network namespace of the thread that opens it.
	if err := n.Do(func() error { return sysctl(nsLink) }); err != nil {
		tb.Fatalf("netns: enable IPv6 on %s in %s: %v", nsLink, n.Name, err)
	}
}

func addN(a netip.Addr, n int) netip.Addr {
	for range n {
		a = a.Next()
	}
	return a
}

// removeLeftovers deletes the namespace and host link of this slot; errors
// are expected when they do not exist.
func (n *Namespace) removeLeftovers() {
	_ = exec.Command("ip", "netns", "del", n.Name).Run()
	_ = exec.Command("ip", "link", "del", n.hostLink).Run()
}

// takeSlot locks the first free slot.
func takeSlot(tb testing.TB) (int, *os.File) {
	tb.Helper()
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		tb.Fatalf("netns: %v", err)
	}
	for slot := range slots {
		f, err := os.OpenFile(filepath.Join(lockDir, fmt.Sprintf("slot-%d.lock", slot)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			tb.Fatalf("netns: %v", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			return slot, f
		}
		f.Close()
	}
	tb.Fatalf("netns: all %d slots in use", slots)
	return 0, nil
}

// Command returns a command that runs inside the namespace (ip netns exec).
func (n *Namespace) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Do runs fn with the calling goroutine's OS thread inside the namespace.
// Sockets created by fn stay in the namespace after Do returns.
func (n *Namespace) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is unlocked only once it is back in the test's
		// namespace; otherwise it dies with this goroutine.
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("netns: %w", err)
			return
		}
		defer home.Close()
		target, err := os.Open(filepath.Join("/run/netns", n.Name))
		if err != nil {
			errc <- fmt.Errorf("netns: %w", err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netns: enter %s: %w", n.Name, err)
			return
		}
		err = fn()
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
