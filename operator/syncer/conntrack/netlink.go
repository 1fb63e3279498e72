package conntrack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/util/retry"
)

// Netlink deletes conntrack entries through netlink, in the network
// namespace it was opened for.
type Netlink struct {
	handle *netlink.Handle
}

// NewNetlink opens a netlink handle in the named network namespace (as made
// by `ip netns add`), or in the caller's namespace when name is empty.
func NewNetlink(name string) (*Netlink, error) {
	ns := netns.None()
	if name != "" {
		h, err := netns.GetFromName(name)
		if err != nil {
			return nil, fmt.Errorf("--netns %q: %w", name, err)
		}
		defer h.Close()
		ns = h
	}
	handle, err := netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("netlink handle for conntrack: %w", err)
	}
	return &Netlink{handle: handle}, nil
}

// Close releases the netlink socket.
func (n *Netlink) Close() { n.handle.Close() }

// DeleteStale deletes the entries of one IP family that t calls stale and
// returns how many went. A dump interrupted by concurrent table changes is
// retried a few times, as kube-proxy does.
func (n *Netlink) DeleteStale(ipv6 bool, t Targets) (int, error) {
	if len(t) == 0 {
		return 0, nil
	}
	family := netlink.InetFamily(unix.AF_INET)
	if ipv6 {
		family = unix.AF_INET6
	}
	var deleted uint
	err := retry.OnError(retry.DefaultRetry, func(err error) bool { return errors.Is(err, netlink.ErrDumpInterrupted) }, func() error {
		n, err := n.handle.ConntrackDeleteFilters(netlink.ConntrackTable, family, filter{t})
		deleted += n
		return err
	})
	return int(deleted), err
}

// filter adapts Targets to netlink's CustomConntrackFilter.
type filter struct{ t Targets }

func (f filter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	return f.t.Stale(Flow{
		Proto:    flow.Forward.Protocol,
		OrigDst:  addrPort(flow.Forward.DstIP, flow.Forward.DstPort),
		ReplySrc: addrPort(flow.Reverse.SrcIP, flow.Reverse.SrcPort),
	})
}

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}
