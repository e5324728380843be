package protect

import "net/netip"

// ClientPrefix is the unit a client is counted and banned by: its IPv4
// address, or the /64 of its IPv6 address (one subscriber's allocation, as
// a single host may use any address of it). IPv4-mapped IPv6 addresses
// count as their IPv4 address.
func ClientPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, err := a.Prefix(64)
	if err != nil { // the zero Addr
		return netip.Prefix{}
	}
	return p
}

// ClientKey is ClientPrefix as a compact map key (the address bytes of the
// prefix, 4 or 8 of them), nginx's $binary_remote_addr with IPv6 by /64.
func ClientKey(a netip.Addr) string {
	p := ClientPrefix(a)
	if !p.IsValid() {
		return ""
	}
	b := p.Addr().AsSlice()
	if len(b) == 16 {
		b = b[:8]
	}
	return string(b)
}
