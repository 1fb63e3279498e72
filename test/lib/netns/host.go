package netns

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/outpost-dev/outpost/test/lib/netns/setns"
)

const (
	slots   = 16
	lockDir = "/run/outpost-netns"
	// InsideAddrs is how many addresses per family the namespace has.
	InsideAddrs = 10
)

// Host is a network namespace joined to the test's own namespace by a veth
// pair: a machine "outside the cluster" with real servers inside.
type Host struct {
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

// NewHost creates a Host for tb and deletes it when tb ends.
func NewHost(tb testing.TB) *Host {
	tb.Helper()
	RequireRoot(tb)
	slot, lock := takeSlot(tb)
	n := &Host{
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

func (n *Host) enableIPv6(tb testing.TB, nsLink string) {
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
func (n *Host) removeLeftovers() {
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
func (n *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Do runs fn with the calling goroutine's OS thread inside the namespace.
// Sockets created by fn stay in the namespace after Do returns.
func (n *Host) Do(fn func() error) error { return setns.Do(n.Name, fn) }
