package policy

import (
	"fmt"
	"net/netip"
)

// metadataAddresses are the clouds' instance metadata and credential
// services. Each hands out the node's (or a Pod's) cloud credentials to
// whoever connects from the node, so a Service pointing at one lets anyone
// who may create an ExternalBackend read them. They are refused whatever
// --denied-cidrs says: the IPv4 ones fall inside the default 169.254.0.0/16,
// but an admin who replaces that list to add a range must not lose them.
var metadataAddresses = []struct {
	addr  netip.Addr
	whose string
}{
	{netip.MustParseAddr("169.254.169.254"), "AWS, GCP, Azure, OCI, OpenStack and most others"},
	{netip.MustParseAddr("169.254.170.2"), "AWS ECS task credentials"},
	{netip.MustParseAddr("169.254.170.23"), "EKS Pod Identity agent"},
	{netip.MustParseAddr("169.254.0.23"), "Tencent Cloud"},
	{netip.MustParseAddr("100.100.100.200"), "Alibaba Cloud"},
	{netip.MustParseAddr("168.63.129.16"), "Azure WireServer, which serves VM extension settings"},
	{netip.MustParseAddr("fd00:ec2::254"), "AWS, over IPv6"},
	{netip.MustParseAddr("fd00:ec2::23"), "EKS Pod Identity agent, over IPv6"},
	{netip.MustParseAddr("fd20:ce::254"), "GCP, over IPv6"},
	{netip.MustParseAddr("fe80::a9fe:a9fe"), "OpenStack, over IPv6"},
}

// ipv4InIPv6 are the ways of writing an IPv4 address as an IPv6 one. Such
// an address is refused rather than unwrapped and checked as IPv4: whether
// and where it reaches an IPv4 host is decided by what is on the path (a
// dual-stack socket for ::ffff:a.b.c.d, the network's NAT64 translator, a
// 6to4 or Teredo relay), not by this policy, and the same backend can always
// be listed by its IPv4 address, which the policy does check.
var ipv4InIPv6 = []struct {
	prefix netip.Prefix
	name   string
	// ipv4 is the address packets end up at, when the form says it.
	ipv4 func(netip.Addr) netip.Addr
}{
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped ::ffff:0:0/96", lastFourBytes},
	// IPv4-compatible addresses are deprecated (RFC 4291) but still
	// routed to the IPv4 host by some stacks. :: and ::1 are inside the
	// prefix but are the unspecified and loopback addresses.
	{netip.MustParsePrefix("::/96"), "IPv4-compatible ::/96", lastFourBytes},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64 64:ff9b::/96", lastFourBytes},
	// RFC 8215 lets each network choose where in 64:ff9b:1::/48 the IPv4
	// address goes, so which one is meant cannot be read from the address.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 64:ff9b:1::/48", nil},
	// 6to4 (RFC 3056, deprecated by RFC 7526): 2002:AABB:CCDD::/48 is
	// tunnelled to the IPv4 gateway AA.BB.CC.DD.
	{netip.MustParsePrefix("2002::/16"), "6to4 2002::/16", func(a netip.Addr) netip.Addr {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[2:6]))
	}},
	// Teredo (RFC 4380) carries the server's IPv4 address and the client's,
	// obfuscated, in the last four bytes: the client is where packets go.
	{netip.MustParsePrefix("2001::/32"), "Teredo 2001::/32", func(a netip.Addr) netip.Addr {
		b := a.As16()
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	}},
}

func lastFourBytes(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom4([4]byte(b[12:16]))
}

var (
	limitedBroadcast = netip.MustParseAddr("255.255.255.255")
	ipv6Loopback     = netip.IPv6Loopback()
)

// neverPublished says why addr can never be a backend, whatever the flags,
// as the rest of a sentence that starts with the address; "" when it may be.
func neverPublished(addr netip.Addr) string {
	switch {
	case addr.Zone() != "":
		return fmt.Sprintf("carries a zone (%%%s), which names a network interface of one machine, not a backend every node can reach; remove the zone", addr.Zone())
	case addr.IsUnspecified():
		return "is the unspecified address, which means \"this host\" to whoever connects to it"
	case addr == limitedBroadcast:
		return "is the limited broadcast address"
	case addr.IsMulticast():
		return "is a multicast address (224.0.0.0/4, ff00::/8), not a single backend"
	}
	for _, m := range metadataAddresses {
		if addr == m.addr {
			return fmt.Sprintf("is a cloud metadata address (%s), which hands out cloud credentials", m.whose)
		}
	}
	if addr.Is6() && addr != ipv6Loopback {
		for _, e := range ipv4InIPv6 {
			if !e.prefix.Contains(addr) {
				continue
			}
			fix := "list the IPv4 address itself, which the policy checks"
			if e.ipv4 != nil {
				fix = fmt.Sprintf("list %s itself, which the policy checks", e.ipv4(addr))
			}
			return fmt.Sprintf("is an IPv4 address embedded in IPv6 (%s), denied rather than unwrapped because the path, not this policy, decides which IPv4 host it reaches; %s", e.name, fix)
		}
	}
	return ""
}
