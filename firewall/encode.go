package firewall

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/offedge/offedge/plan"
)

// The encoding follows what nft itself emits for the rule texts of
// plan.FirewallRule.Nft, expression for expression, so that `nft list
// table inet offedge` prints back the planned text.

func table(name string) *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: name}
}

func keyType(family int) nftables.SetDatatype {
	if family == 6 {
		return nftables.TypeIP6Addr
	}
	return nftables.TypeIPAddr
}

func newSet(t *nftables.Table, s plan.FirewallSet) *nftables.Set {
	return &nftables.Set{
		Table: t, Name: s.Name, KeyType: keyType(s.Family), Interval: true,
		HasTimeout: s.Ban, Comment: plan.Comment(s.From),
	}
}

// elements encodes prefixes as the start and (exclusive) end keys of
// intervals, as nft does for interval sets.
func elements(prefixes []netip.Prefix) []nftables.SetElement {
	var out []nftables.SetElement
	for _, p := range prefixes {
		out = append(out, nftables.SetElement{Key: p.Masked().Addr().AsSlice()})
		if end, ok := afterPrefix(p); ok {
			out = append(out, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

// afterPrefix is the first address after p, when there is one.
func afterPrefix(p netip.Prefix) (netip.Addr, bool) {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := bits; i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - uint(i%8))
	}
	last, _ := netip.AddrFromSlice(b)
	next := last.Next()
	return next, next.IsValid()
}

func chainType(t string) nftables.ChainType {
	if t == "nat" {
		return nftables.ChainTypeNAT
	}
	return nftables.ChainTypeFilter
}

func hook(h string) (*nftables.ChainHook, error) {
	switch h {
	case "input":
		return nftables.ChainHookInput, nil
	case "forward":
		return nftables.ChainHookForward, nil
	case "output":
		return nftables.ChainHookOutput, nil
	case "prerouting":
		return nftables.ChainHookPrerouting, nil
	case "postrouting":
		return nftables.ChainHookPostrouting, nil
	}
	return nil, fmt.Errorf("unknown hook %q", h)
}

func newChain(t *nftables.Table, c plan.FirewallChain) (*nftables.Chain, error) {
	h, err := hook(c.Hook)
	if err != nil {
		return nil, fmt.Errorf("chain %s: %w", c.Name, err)
	}
	pol := nftables.ChainPolicyAccept
	switch c.Policy {
	case "drop":
		pol = nftables.ChainPolicyDrop
	case "accept", "":
	default:
		return nil, fmt.Errorf("chain %s: unknown policy %q", c.Name, c.Policy)
	}
	return &nftables.Chain{
		Name: c.Name, Table: t, Type: chainType(c.Type), Hooknum: h,
		Priority: nftables.ChainPriorityRef(nftables.ChainPriority(c.Priority)), Policy: &pol,
	}, nil
}

var l4protos = map[string]byte{"icmp": unix.IPPROTO_ICMP, "tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "ipv6-icmp": unix.IPPROTO_ICMPV6}

func nfproto(family int) byte {
	if family == 6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// addrOffset is where the source (or destination) address sits in the
// IPv4 or IPv6 header, and its length.
func addrOffset(family int, src bool) (offset, length uint32) {
	switch {
	case family == 6 && src:
		return 8, 16
	case family == 6:
		return 24, 16
	case src:
		return 12, 4
	default:
		return 16, 4
	}
}

func ifname(s string) []byte {
	b := make([]byte, 16)
	copy(b, s)
	return b
}

// ruleExprs encodes one rule, in the order FirewallRule.Nft prints it.
func ruleExprs(r plan.FirewallRule) ([]expr.Any, error) {
	var ex []expr.Any
	famDone := false
	needFamily := func() error {
		if r.Family != 4 && r.Family != 6 {
			return fmt.Errorf("rule %q matches addresses but has no family", r.From)
		}
		if !famDone {
			ex = append(ex, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto(r.Family)}})
			famDone = true
		}
		return nil
	}
	addr := func(src bool, match func() expr.Any) error {
		if err := needFamily(); err != nil {
			return err
		}
		off, l := addrOffset(r.Family, src)
		ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: l}, match())
		return nil
	}
	lookup := func(set string, invert bool) func() expr.Any {
		return func() expr.Any { return &expr.Lookup{SourceRegister: 1, SetName: set, Invert: invert} }
	}
	if len(r.CtState) > 0 {
		var bits uint32
		for _, s := range r.CtState {
			switch s {
			case "invalid":
				bits |= expr.CtStateBitINVALID
			case "established":
				bits |= expr.CtStateBitESTABLISHED
			case "related":
				bits |= expr.CtStateBitRELATED
			case "new":
				bits |= expr.CtStateBitNEW
			default:
				return nil, fmt.Errorf("rule %q: unknown ct state %q", r.From, s)
			}
		}
		mask := make([]byte, 4)
		binary.NativeEndian.PutUint32(mask, bits)
		ex = append(ex, &expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	}
	if r.IIFName != "" {
		ex = append(ex, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(r.IIFName)})
	}
	srcFirst := r.SrcSet != "" && r.DPort == 0 && !r.Dst.IsValid()
	if srcFirst {
		if err := addr(true, lookup(r.SrcSet, false)); err != nil {
			return nil, err
		}
	}
	if r.Dst.IsValid() {
		if (r.Dst.Is4() && r.Family != 4) || (r.Dst.Is6() && r.Family != 6) {
			return nil, fmt.Errorf("rule %q: destination %s is not of family %d", r.From, r.Dst, r.Family)
		}
		d := r.Dst.AsSlice()
		if err := addr(false, func() expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: d} }); err != nil {
			return nil, err
		}
	}
	if r.DstNotSet != "" {
		if err := addr(false, lookup(r.DstNotSet, true)); err != nil {
			return nil, err
		}
	}
	if r.L4Proto != "" {
		p, ok := l4protos[r.L4Proto]
		if !ok {
			return nil, fmt.Errorf("rule %q: unknown protocol %q", r.From, r.L4Proto)
		}
		ex = append(ex, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}})
		if r.DPort != 0 {
			if r.L4Proto != "tcp" && r.L4Proto != "udp" {
				return nil, fmt.Errorf("rule %q: a port needs tcp or udp", r.From)
			}
			ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, r.DPort)})
		}
	} else if r.DPort != 0 {
		return nil, fmt.Errorf("rule %q: a port needs tcp or udp", r.From)
	}
	if r.SrcSet != "" && !srcFirst {
		if err := addr(true, lookup(r.SrcSet, false)); err != nil {
			return nil, err
		}
	}
	switch r.Verdict {
	case "accept":
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictAccept})
	case "drop":
		ex = append(ex, &expr.Verdict{Kind: expr.VerdictDrop})
	case "dnat":
		if !r.DNAT.IsValid() || fam(r.DNAT.Addr()) != r.Family {
			return nil, fmt.Errorf("rule %q: dnat needs a target of family %d", r.From, r.Family)
		}
		ex = append(ex,
			&expr.Immediate{Register: 1, Data: r.DNAT.Addr().AsSlice()},
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, r.DNAT.Port())},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(nfproto(r.Family)), RegAddrMin: 1, RegProtoMin: 2, Specified: true})
	case "snat":
		if !r.SNAT.IsValid() || fam(r.SNAT) != r.Family {
			return nil, fmt.Errorf("rule %q: snat needs an address of family %d", r.From, r.Family)
		}
		ex = append(ex,
			&expr.Immediate{Register: 1, Data: r.SNAT.AsSlice()},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: uint32(nfproto(r.Family)), RegAddrMin: 1})
	default:
		return nil, fmt.Errorf("rule %q: unknown verdict %q", r.From, r.Verdict)
	}
	return ex, nil
}

func fam(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func comment(s string) []byte {
	if s == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, plan.Comment(s))
}

// queue adds the whole table to the connection's pending batch; nothing is
// sent until Flush. Sets come first so that rules can refer to them.
func queue(c *nftables.Conn, fw *plan.Firewall, extra map[string][]nftables.SetElement) error {
	t := c.AddTable(table(fw.Table))
	for _, s := range fw.Sets {
		els := elements(s.Elements)
		els = append(els, extra[s.Name]...)
		if err := c.AddSet(newSet(t, s), els); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	for _, ch := range fw.Chains {
		nc, err := newChain(t, ch)
		if err != nil {
			return err
		}
		c.AddChain(nc)
		for _, r := range ch.Rules {
			ex, err := ruleExprs(r)
			if err != nil {
				return fmt.Errorf("chain %s: %w", ch.Name, err)
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: nc, Exprs: ex, UserData: comment(r.From)})
		}
	}
	return nil
}
