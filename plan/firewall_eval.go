package plan

import (
	"net/netip"
	"slices"
)

// Packet is a new connection's first packet, for [Firewall.Decide].
type Packet struct {
	Src, Dst netip.Addr
	// Proto is tcp or udp.
	Proto string
	Port  uint16
	// IIFName is the input interface; empty is any interface but lo.
	IIFName string
}

// Decide runs a new connection through the input chain as the kernel
// would (sets as planned: the ban sets empty) and reports whether it is
// accepted, and the rule that decided (nil: the chain's policy).
func (f *Firewall) Decide(p Packet) (bool, *FirewallRule) {
	in := f.Chain("input")
	if in == nil {
		return true, nil
	}
	pf := 6
	if p.Src.Is4() {
		pf = 4
	}
	for i := range in.Rules {
		r := &in.Rules[i]
		if f.matches(r, p, pf) {
			return r.Verdict == "accept", r
		}
	}
	return in.Policy != "drop", nil
}

func (f *Firewall) matches(r *FirewallRule, p Packet, pf int) bool {
	if len(r.CtState) > 0 && !slices.Contains(r.CtState, "new") {
		return false // a new connection is neither established, related nor invalid
	}
	if r.IIFName != "" && r.IIFName != p.IIFName {
		return false
	}
	if r.Family != 0 && r.Family != pf {
		return false
	}
	inSet := func(name string, a netip.Addr) bool {
		s := f.Set(name)
		return s != nil && slices.ContainsFunc(s.Elements, func(e netip.Prefix) bool { return e.Contains(a) })
	}
	if r.SrcSet != "" && !inSet(r.SrcSet, p.Src) {
		return false
	}
	if r.Dst.IsValid() && r.Dst != p.Dst {
		return false
	}
	if r.DstNotSet != "" && inSet(r.DstNotSet, p.Dst) {
		return false
	}
	switch r.L4Proto {
	case "":
	case "icmp", "ipv6-icmp":
		return false
	default:
		if r.L4Proto != p.Proto {
			return false
		}
	}
	return r.DPort == 0 || r.DPort == p.Port
}
