package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/offedge/offedge/plan"
)

// Foreign is a rule in offedge's table that offedge did not write (someone
// ran nft by hand): diff shows it, and a confirmed apply refuses to start
// because it could not put it back on rollback.
type Foreign struct {
	Chain  string
	Handle uint64
	What   string
}

// Live is offedge's table as the kernel holds it, decoded back into the
// plan's terms.
type Live struct {
	Firewall *plan.Firewall
	Foreign  []Foreign
	// Banned counts the elements of the ban sets (runtime state, not part
	// of any plan).
	Banned map[string]int
}

// ErrNoTable says the node has no offedge table (never applied, or removed).
var ErrNoTable = errors.New("no table inet offedge")

func lookupTable(c *nftables.Conn, name string) (*nftables.Table, error) {
	t, err := c.ListTableOfFamily(name, nftables.TableFamilyINet)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no such file") {
			return nil, ErrNoTable
		}
		return nil, fmt.Errorf("listing table inet %s: %w", name, err)
	}
	return t, nil
}

var hookNames = map[nftables.ChainHook]string{
	*nftables.ChainHookInput: "input", *nftables.ChainHookForward: "forward", *nftables.ChainHookOutput: "output",
	*nftables.ChainHookPrerouting: "prerouting", *nftables.ChainHookPostrouting: "postrouting",
}

// Read decodes offedge's table; it returns ErrNoTable when there is none.
func Read(c *nftables.Conn, name string) (*Live, error) {
	t, err := lookupTable(c, name)
	if err != nil {
		return nil, err
	}
	live := &Live{Firewall: &plan.Firewall{Table: name}, Banned: map[string]int{}}
	fw := live.Firewall
	sets, err := c.GetSets(t)
	if err != nil {
		return nil, fmt.Errorf("listing sets of inet %s: %w", name, err)
	}
	for _, s := range sets {
		fs := plan.FirewallSet{Name: s.Name, Ban: s.HasTimeout}
		switch s.KeyType.Name {
		case nftables.TypeIPAddr.Name:
			fs.Family = 4
		case nftables.TypeIP6Addr.Name:
			fs.Family = 6
		default:
			live.Foreign = append(live.Foreign, Foreign{What: fmt.Sprintf("set %s of type %s", s.Name, s.KeyType.Name)})
			continue
		}
		els, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("listing set %s: %w", s.Name, err)
		}
		ps := prefixesFromElements(els, s.Interval)
		if fs.Ban {
			live.Banned[s.Name] = len(ps)
		} else {
			fs.Elements = ps
		}
		fw.Sets = append(fw.Sets, fs)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name != name {
			continue
		}
		fc := plan.FirewallChain{Name: ch.Name, Type: string(ch.Type), Policy: "accept"}
		if ch.Hooknum != nil {
			fc.Hook = hookNames[*ch.Hooknum]
		}
		if ch.Priority != nil {
			fc.Priority = int(*ch.Priority)
		}
		if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
			fc.Policy = "drop"
		}
		if fc.Name == "input" {
			fw.Input = fc.Policy
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return nil, fmt.Errorf("listing chain %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			fr, err := decodeRule(r.Exprs)
			if err != nil {
				f := Foreign{Chain: ch.Name, Handle: r.Handle, What: err.Error()}
				live.Foreign = append(live.Foreign, f)
				fc.Rules = append(fc.Rules, plan.FirewallRule{From: fmt.Sprintf("rule handle %d not written by offedge: %s", r.Handle, err)})
				continue
			}
			fr.From, _ = userdata.GetString(r.UserData, userdata.TypeComment)
			fc.Rules = append(fc.Rules, fr)
		}
		fw.Chains = append(fw.Chains, fc)
	}
	sortLike(fw)
	return live, nil
}

// sortLike orders chains as plans do (filter chains, then NAT).
func sortLike(fw *plan.Firewall) {
	order := map[string]int{"input": 0, "forward": 1, "prerouting": 2, "postrouting": 3}
	slices.SortStableFunc(fw.Chains, func(a, b plan.FirewallChain) int {
		oa, ok := order[a.Name]
		if !ok {
			oa = 9
		}
		ob, ok := order[b.Name]
		if !ok {
			ob = 9
		}
		return oa - ob
	})
}

// prefixesFromElements turns interval elements (start keys, and exclusive
// end keys flagged IntervalEnd) back into prefixes.
func prefixesFromElements(els []nftables.SetElement, interval bool) []netip.Prefix {
	type el struct {
		a   netip.Addr
		end bool
	}
	var all []el
	for _, e := range els {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok {
			continue
		}
		all = append(all, el{a, e.IntervalEnd})
	}
	// An interval's end key equals the next interval's start when they
	// touch: the end sorts first.
	slices.SortFunc(all, func(x, y el) int {
		if c := x.a.Compare(y.a); c != 0 {
			return c
		}
		if x.end == y.end {
			return 0
		}
		if x.end {
			return -1
		}
		return 1
	})
	var out []netip.Prefix
	if !interval {
		for _, e := range all {
			out = append(out, netip.PrefixFrom(e.a, e.a.BitLen()))
		}
		return out
	}
	for i := 0; i < len(all); i++ {
		if all[i].end {
			continue
		}
		start := all[i].a
		var last netip.Addr
		if i+1 < len(all) && all[i+1].end {
			last = all[i+1].a.Prev()
			i++
		} else {
			last = maxAddr(start)
		}
		out = append(out, rangePrefixes(start, last)...)
	}
	return out
}

func maxAddr(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	var b [16]byte
	for i := range b {
		b[i] = 0xff
	}
	return netip.AddrFrom16(b)
}

// rangePrefixes covers [first, last] with the fewest prefixes.
func rangePrefixes(first, last netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for first.IsValid() && first.Compare(last) <= 0 {
		bits := first.BitLen()
		for bits > 0 {
			p := netip.PrefixFrom(first, bits-1).Masked()
			end, ok := afterPrefix(p)
			if p.Addr() != first || (ok && end.Prev().Compare(last) > 0) || (!ok && maxAddr(first).Compare(last) > 0) {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(first, bits)
		out = append(out, p)
		next, ok := afterPrefix(p)
		if !ok {
			break
		}
		first = next
	}
	return out
}

var protoNames = map[byte]string{unix.IPPROTO_ICMP: "icmp", unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp", unix.IPPROTO_ICMPV6: "ipv6-icmp"}

// decodeRule reads back the expression sequences ruleExprs writes.
func decodeRule(ex []expr.Any) (plan.FirewallRule, error) {
	var r plan.FirewallRule
	bad := func(i int) (plan.FirewallRule, error) {
		var kinds []string
		for _, e := range ex {
			kinds = append(kinds, strings.TrimPrefix(fmt.Sprintf("%T", e), "*expr."))
		}
		return plan.FirewallRule{}, fmt.Errorf("expressions %s (at %d)", strings.Join(kinds, " "), i)
	}
	at := func(i int) expr.Any {
		if i < len(ex) {
			return ex[i]
		}
		return nil
	}
	for i := 0; i < len(ex); {
		switch e := ex[i].(type) {
		case *expr.Ct:
			bw, ok1 := at(i + 1).(*expr.Bitwise)
			cmp, ok2 := at(i + 2).(*expr.Cmp)
			if e.Key != expr.CtKeySTATE || !ok1 || !ok2 || cmp.Op != expr.CmpOpNeq || len(bw.Mask) != 4 {
				return bad(i)
			}
			bits := binary.NativeEndian.Uint32(bw.Mask)
			for _, s := range []struct {
				bit  uint32
				name string
			}{{expr.CtStateBitINVALID, "invalid"}, {expr.CtStateBitESTABLISHED, "established"}, {expr.CtStateBitRELATED, "related"}, {expr.CtStateBitNEW, "new"}} {
				if bits&s.bit != 0 {
					r.CtState = append(r.CtState, s.name)
				}
			}
			i += 3
		case *expr.Meta:
			cmp, ok := at(i + 1).(*expr.Cmp)
			if !ok || cmp.Op != expr.CmpOpEq {
				return bad(i)
			}
			switch e.Key {
			case expr.MetaKeyIIFNAME:
				r.IIFName = strings.TrimRight(string(cmp.Data), "\x00")
			case expr.MetaKeyNFPROTO:
				switch {
				case len(cmp.Data) == 1 && cmp.Data[0] == unix.NFPROTO_IPV4:
					r.Family = 4
				case len(cmp.Data) == 1 && cmp.Data[0] == unix.NFPROTO_IPV6:
					r.Family = 6
				default:
					return bad(i)
				}
			case expr.MetaKeyL4PROTO:
				if len(cmp.Data) != 1 || protoNames[cmp.Data[0]] == "" {
					return bad(i)
				}
				r.L4Proto = protoNames[cmp.Data[0]]
			default:
				return bad(i)
			}
			i += 2
		case *expr.Payload:
			next := at(i + 1)
			switch {
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == 2 && e.Len == 2:
				cmp, ok := next.(*expr.Cmp)
				if !ok || cmp.Op != expr.CmpOpEq || len(cmp.Data) != 2 {
					return bad(i)
				}
				r.DPort = binary.BigEndian.Uint16(cmp.Data)
			case e.Base == expr.PayloadBaseNetworkHeader:
				srcOff, _ := addrOffset(r.Family, true)
				dstOff, _ := addrOffset(r.Family, false)
				switch n := next.(type) {
				case *expr.Lookup:
					switch {
					case e.Offset == srcOff && !n.Invert:
						r.SrcSet = n.SetName
					case e.Offset == dstOff && n.Invert:
						r.DstNotSet = n.SetName
					default:
						return bad(i)
					}
				case *expr.Cmp:
					a, ok := netip.AddrFromSlice(n.Data)
					if !ok || n.Op != expr.CmpOpEq || e.Offset != dstOff {
						return bad(i)
					}
					r.Dst = a
				default:
					return bad(i)
				}
			default:
				return bad(i)
			}
			i += 2
		case *expr.Verdict:
			switch e.Kind {
			case expr.VerdictAccept:
				r.Verdict = "accept"
			case expr.VerdictDrop:
				r.Verdict = "drop"
			default:
				return bad(i)
			}
			i++
		case *expr.Immediate:
			a, ok := netip.AddrFromSlice(e.Data)
			if !ok || e.Register != 1 {
				return bad(i)
			}
			var port uint16
			j := i + 1
			if im, ok := at(j).(*expr.Immediate); ok && im.Register == 2 && len(im.Data) == 2 {
				port = binary.BigEndian.Uint16(im.Data)
				j++
			}
			nat, ok := at(j).(*expr.NAT)
			if !ok {
				return bad(j)
			}
			switch nat.Type {
			case expr.NATTypeDestNAT:
				r.Verdict, r.DNAT = "dnat", netip.AddrPortFrom(a, port)
			case expr.NATTypeSourceNAT:
				r.Verdict, r.SNAT = "snat", a
			default:
				return bad(j)
			}
			i = j + 1
		default:
			return bad(i)
		}
	}
	if r.Verdict == "" {
		return bad(len(ex))
	}
	return r, nil
}
