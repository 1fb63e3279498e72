package outpost

import (
	"net"
	"net/netip"
)

// address is an IP held inline in the objects of the index. A and AAAA
// records take a slice of it (ip), so answering allocates no IP; reverse
// lookups key maps by its netip.Addr. The zero value is "no address".
type address struct {
	b  [16]byte
	v6 bool
	ok bool
}

func parseAddress(s string) address {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return address{}
	}
	return addressOf(a)
}

func addressOf(a netip.Addr) address {
	if a.Is4() || a.Is4In6() {
		v4 := a.Unmap().As4()
		var out address
		copy(out.b[:], v4[:])
		out.ok = true
		return out
	}
	return address{b: a.As16(), v6: true, ok: true}
}

// ip returns the address as a net.IP that shares the array: callers must
// hold a pointer to an address that is never modified again.
func (a *address) ip() net.IP {
	switch {
	case !a.ok:
		return nil
	case a.v6:
		return a.b[:]
	default:
		return a.b[:4]
	}
}

func (a address) addr() netip.Addr {
	switch {
	case !a.ok:
		return netip.Addr{}
	case a.v6:
		return netip.AddrFrom16(a.b)
	default:
		return netip.AddrFrom4([4]byte(a.b[:4]))
	}
}

func (a address) String() string {
	if !a.ok {
		return ""
	}
	return a.addr().String()
}

// appendDashed appends the address as an endpoint label: dots and colons
// become dashes, and an IPv6 address ending in "::" gets a final "0", as
// the kubernetes plugin names endpoints without a hostname.
func (a address) appendDashed(buf []byte) []byte {
	start := len(buf)
	buf = a.addr().AppendTo(buf)
	for i := start; i < len(buf); i++ {
		if buf[i] == '.' || buf[i] == ':' {
			buf[i] = '-'
		}
	}
	if len(buf) > start && buf[len(buf)-1] == '-' {
		buf = append(buf, '0')
	}
	return buf
}
