package plan

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// WriteNft renders the firewall as an nft script: what `nft -f` would load
// and what `offedge firewall apply` installs through netlink. Each rule's
// comment names the inventory object it comes from.
func (f *Firewall) WriteNft(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", f.Table)
	for i, s := range f.Sets {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(s.nft())
	}
	for _, c := range f.Chains {
		b.WriteString("\n")
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy %s;\n", c.Type, c.Hook, priorityName(c.Priority), c.Policy)
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r.Nft())
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (s FirewallSet) nft() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tset %s {\n", s.Name)
	fmt.Fprintf(&b, "\t\ttype %s\n", addrType(s.Family))
	if s.Ban {
		b.WriteString("\t\tflags interval,timeout\n")
	} else {
		b.WriteString("\t\tflags interval\n")
	}
	if s.From != "" {
		fmt.Fprintf(&b, "\t\tcomment %s\n", quote(s.From))
	}
	if len(s.Elements) > 0 {
		var el []string
		for _, p := range s.Elements {
			el = append(el, prefixString(p))
		}
		fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(el, ", "))
	}
	b.WriteString("\t}\n")
	return b.String()
}

// prefixString writes a host prefix as the bare address, as nft does.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func addrType(family int) string {
	if family == 6 {
		return "ipv6_addr"
	}
	return "ipv4_addr"
}

func ipKeyword(family int) string {
	if family == 6 {
		return "ip6"
	}
	return "ip"
}

func priorityName(p int) string {
	switch p {
	case PriorityFilter:
		return "filter"
	case PriorityDstNAT:
		return "dstnat"
	case PrioritySrcNAT:
		return "srcnat"
	}
	return fmt.Sprint(p)
}

// MaxComment is the longest comment nft accepts on a rule or set.
const MaxComment = 128

// quote renders a comment nft accepts: double-quoted, no quotes inside,
// at most MaxComment bytes.
func quote(s string) string {
	return `"` + Comment(s) + `"`
}

// Comment is the comment the table stores for s.
func Comment(s string) string {
	s = strings.ReplaceAll(s, `"`, "'")
	if len(s) > MaxComment {
		s = s[:MaxComment-3] + "..."
	}
	return s
}

// Nft renders the rule in nft syntax.
//
// A rule without a verdict stands for one offedge cannot express (read back
// from a table someone edited by hand): it renders as an nft comment line.
func (r FirewallRule) Nft() string {
	if r.Verdict == "" {
		return "# " + r.From
	}
	var p []string
	if len(r.CtState) > 0 {
		p = append(p, "ct state "+strings.Join(r.CtState, ","))
	}
	if r.IIFName != "" {
		p = append(p, fmt.Sprintf("iifname %q", r.IIFName))
	}
	ipk := ipKeyword(r.Family)
	if r.SrcSet != "" && r.DPort == 0 && !r.Dst.IsValid() {
		// Bans and NAT sources read best first.
		p = append(p, fmt.Sprintf("%s saddr @%s", ipk, r.SrcSet))
	}
	if r.Dst.IsValid() {
		p = append(p, fmt.Sprintf("%s daddr %s", ipk, r.Dst))
	}
	if r.DstNotSet != "" {
		p = append(p, fmt.Sprintf("%s daddr != @%s", ipk, r.DstNotSet))
	}
	switch {
	case r.DPort != 0:
		p = append(p, fmt.Sprintf("%s dport %d", r.L4Proto, r.DPort))
	case r.L4Proto != "":
		p = append(p, "meta l4proto "+r.L4Proto)
	}
	if r.SrcSet != "" && (r.DPort != 0 || r.Dst.IsValid()) {
		p = append(p, fmt.Sprintf("%s saddr @%s", ipk, r.SrcSet))
	}
	switch r.Verdict {
	case "dnat":
		p = append(p, fmt.Sprintf("dnat %s to %s", ipk, r.DNAT))
	case "snat":
		p = append(p, fmt.Sprintf("snat %s to %s", ipk, r.SNAT))
	default:
		p = append(p, r.Verdict)
	}
	if r.From != "" {
		p = append(p, "comment "+quote(r.From))
	}
	return strings.Join(p, " ")
}

// writeSummary is the firewall's part of `offedge plan`: its size, and the
// NAT rules, which change where traffic goes.
func (f *Firewall) writeSummary(b *strings.Builder, node string) {
	rules := 0
	for _, c := range f.Chains {
		rules += len(c.Rules)
	}
	fmt.Fprintf(b, "\nfirewall: table inet %s, input policy %s, %d sets, %d rules (offedge firewall plan --node %s)\n", f.Table, f.Input, len(f.Sets), rules, node)
	for _, c := range f.Chains {
		for _, r := range c.Rules {
			switch r.Verdict {
			case "dnat":
				from := "anyone"
				if r.SrcSet != "" {
					from = "@" + r.SrcSet
				}
				fmt.Fprintf(b, "  dnat %s -> %s from %s  [%s]\n", netip.AddrPortFrom(r.Dst, r.DPort), r.DNAT, from, r.From)
			case "snat":
				fmt.Fprintf(b, "  snat @%s -> %s  [%s]\n", r.SrcSet, r.SNAT, r.From)
			}
		}
	}
}
