package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// FirewallTable is the one nftables table (family inet) offedge owns on a
// node. Tables of other tools are never read into a plan nor touched.
const FirewallTable = "offedge"

// Ban sets are part of every firewall: other work (rate limits, crawler
// mitigation, `offedge firewall ban`) fills them at run time, and applying
// a new ruleset keeps what they hold.
const (
	BanSet4 = "ban4"
	BanSet6 = "ban6"
)

// Firewall is a node's nftables ruleset, rendered from the inventory: input
// filtering of every service and listener declared on the node, the node's
// management access, kernel DNAT for forwards with mode kernel, and source
// NAT for the networks whose gateway the node is. It is data only;
// firewall.Apply turns it into one netlink batch.
type Firewall struct {
	Table string `json:"table"`
	// Input is the input chain's policy: "drop" or "accept".
	Input  string          `json:"input"`
	Sets   []FirewallSet   `json:"sets"`
	Chains []FirewallChain `json:"chains"`
}

// FirewallSet is a named set of address prefixes of one family.
type FirewallSet struct {
	Name string `json:"name"`
	// Family is 4 or 6.
	Family   int            `json:"family"`
	Elements []netip.Prefix `json:"elements,omitempty"`
	// Ban sets also take elements with timeouts, and keep their elements
	// when a new ruleset is applied.
	Ban bool `json:"ban,omitempty"`
	// From is the inventory object the set was resolved from.
	From string `json:"from"`
}

// FirewallChain is a base chain of the table.
type FirewallChain struct {
	Name string `json:"name"`
	// Type is "filter" or "nat"; Hook is input, forward, prerouting or postrouting.
	Type     string         `json:"type"`
	Hook     string         `json:"hook"`
	Priority int            `json:"priority"`
	Policy   string         `json:"policy"`
	Rules    []FirewallRule `json:"rules"`
}

// Chain priorities, as nft names them.
const (
	PriorityFilter = 0
	PriorityDstNAT = -100
	PrioritySrcNAT = 100
)

// FirewallRule is one rule. Every set field is a match, in the order they
// are listed here, and Verdict says what happens to a matching packet.
type FirewallRule struct {
	// CtState matches connection-tracking states (established, related, invalid).
	CtState []string `json:"ct_state,omitempty"`
	// IIFName matches the input interface by name ("lo").
	IIFName string `json:"iifname,omitempty"`
	// Family is 4 or 6 for a rule on one address family, 0 for both.
	Family int `json:"family,omitempty"`
	// SrcSet matches source addresses in a set of the rule's family.
	SrcSet string `json:"src_set,omitempty"`
	// Dst matches one destination address.
	Dst netip.Addr `json:"dst,omitzero"`
	// DstNotSet matches destinations outside a set of the rule's family.
	DstNotSet string `json:"dst_not_set,omitempty"`
	// L4Proto is tcp, udp, icmp or ipv6-icmp; DPort needs tcp or udp.
	L4Proto string `json:"l4proto,omitempty"`
	DPort   uint16 `json:"dport,omitempty"`
	// Verdict is accept, drop, dnat (to DNAT) or snat (to SNAT).
	Verdict string         `json:"verdict"`
	DNAT    netip.AddrPort `json:"dnat,omitzero"`
	SNAT    netip.Addr     `json:"snat,omitzero"`
	// From names the inventory object the rule comes from (and where it is
	// written); it is the rule's comment in the table.
	From string `json:"from"`
}

// Chain returns the chain called name, or nil.
func (f *Firewall) Chain(name string) *FirewallChain {
	for i := range f.Chains {
		if f.Chains[i].Name == name {
			return &f.Chains[i]
		}
	}
	return nil
}

// Set returns the set called name, or nil.
func (f *Firewall) Set(name string) *FirewallSet {
	for i := range f.Sets {
		if f.Sets[i].Name == name {
			return &f.Sets[i]
		}
	}
	return nil
}

// fwBuilder accumulates a node's firewall.
type fwBuilder struct {
	c    *compiler
	fw   *Firewall
	sets map[string]int // name -> index in fw.Sets
}

func (b *fwBuilder) chain(name string) *FirewallChain { return b.fw.Chain(name) }

// set adds a set of prefixes and returns its name. A set with the same name
// and elements is shared; a name taken by other elements gets a suffix.
func (b *fwBuilder) set(base string, fam int, prefixes []netip.Prefix, from string) string {
	elems := mergePrefixes(prefixes)
	name := fmt.Sprintf("%s-%d", setName(base), fam)
	for i := 2; ; i++ {
		j, taken := b.sets[name]
		if !taken {
			break
		}
		if slices.Equal(b.fw.Sets[j].Elements, elems) {
			return name
		}
		name = fmt.Sprintf("%s-%d-%d", setName(base), fam, i)
	}
	b.sets[name] = len(b.fw.Sets)
	b.fw.Sets = append(b.fw.Sets, FirewallSet{Name: name, Family: fam, Elements: elems, From: from})
	return name
}

// setName keeps what nft accepts in an identifier.
func setName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	for strings.Contains(out, "--") {
		out = strings.ReplaceAll(out, "--", "-")
	}
	if out == "" || out[0] < 'a' || out[0] > 'z' {
		out = "s-" + out
	}
	if len(out) > 60 {
		out = out[:60]
	}
	return out
}

// mergePrefixes sorts prefixes and drops those inside another one, as an
// interval set needs (the kernel refuses overlapping intervals).
func mergePrefixes(in []netip.Prefix) []netip.Prefix {
	ps := slices.Clone(in)
	for i := range ps {
		ps[i] = ps[i].Masked()
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	var out []netip.Prefix
	for _, p := range ps {
		if len(out) > 0 {
			last := out[len(out)-1]
			if last.Bits() <= p.Bits() && last.Contains(p.Addr()) {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

func fam(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func prefixesOf(srcs []inventory.Source, f int) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range srcs {
		if fam(s.Prefix.Addr()) == f {
			out = append(out, s.Prefix)
		}
	}
	return out
}

func fromNames(srcs []inventory.Source) string {
	var names []string
	for _, s := range srcs {
		if !slices.Contains(names, s.From) {
			names = append(names, s.From)
		}
	}
	return strings.Join(names, ", ")
}

func object(kind, name string, pos inventory.Pos) string {
	if pos.IsZero() {
		return fmt.Sprintf("%s %s", kind, name)
	}
	return fmt.Sprintf("%s %s (%s)", kind, name, pos)
}

// firewall builds the node's firewall when the inventory asks for one.
func (c *compiler) firewall() *Firewall {
	n := c.node
	if n.Firewall == nil {
		return nil
	}
	b := &fwBuilder{c: c, sets: map[string]int{}, fw: &Firewall{Table: FirewallTable, Input: n.Firewall.InputPolicy()}}
	b.fw.Chains = []FirewallChain{
		{Name: "input", Type: "filter", Hook: "input", Priority: PriorityFilter, Policy: b.fw.Input},
		{Name: "forward", Type: "filter", Hook: "forward", Priority: PriorityFilter, Policy: "accept"},
	}
	b.fw.Sets = append(b.fw.Sets,
		FirewallSet{Name: BanSet4, Family: 4, Ban: true, From: "bans (filled at run time)"},
		FirewallSet{Name: BanSet6, Family: 6, Ban: true, From: "bans (filled at run time)"})
	b.sets[BanSet4], b.sets[BanSet6] = 0, 1
	in := b.chain("input")
	in.Rules = append(in.Rules,
		FirewallRule{CtState: []string{"established", "related"}, Verdict: "accept", From: "replies to admitted connections"},
		FirewallRule{CtState: []string{"invalid"}, Verdict: "drop", From: "invalid packets"},
		FirewallRule{IIFName: "lo", Verdict: "accept", From: "loopback (services on 127.0.0.1 and ::1)"},
		FirewallRule{L4Proto: "icmp", Verdict: "accept", From: "ICMP (errors, ping)"},
		FirewallRule{L4Proto: "ipv6-icmp", Verdict: "accept", From: "ICMPv6 (neighbour discovery, path MTU)"},
	)
	b.management()
	for _, ch := range []string{"input", "forward"} {
		chain := b.chain(ch)
		chain.Rules = append(chain.Rules,
			FirewallRule{Family: 4, SrcSet: BanSet4, Verdict: "drop", From: "bans"},
			FirewallRule{Family: 6, SrcSet: BanSet6, Verdict: "drop", From: "bans"})
	}
	b.services()
	b.listeners()
	b.admin()
	b.kernelForwards()
	b.sourceNAT()
	return b.fw
}

// allowRules admits, on each of dsts, proto/port from what allow resolves
// to on network. An allow list admitting nobody adds no rule: the input
// policy (or, with policy accept, an explicit drop) closes the port.
func (b *fwBuilder) allowRules(chain *FirewallChain, base, from string, allow []string, network string, dsts []netip.Addr, proto string, port int) {
	res := b.c.m.ResolveAllow(allow, network)
	for _, f := range []int{4, 6} {
		var mine []netip.Addr
		for _, d := range dsts {
			if fam(d) == f {
				mine = append(mine, d)
			}
		}
		if len(mine) == 0 {
			continue
		}
		set := ""
		if !res.Any {
			ps := prefixesOf(res.Sources, f)
			if len(ps) > 0 {
				set = b.set(base, f, ps, fmt.Sprintf("%s: allow %s", from, fromNames(res.Sources)))
			}
		}
		for _, d := range mine {
			r := FirewallRule{Family: f, Dst: d, L4Proto: proto, DPort: uint16(port), SrcSet: set, Verdict: "accept", From: from}
			switch {
			case res.Any || set != "":
			case len(res.Sources) == 0:
				// Nobody may connect: say so in the table, and close the
				// port even when the input policy is accept.
				r.Verdict, r.From = "drop", from+": allows nobody"
			case b.fw.Input == "accept":
				r.Verdict, r.From = "drop", fmt.Sprintf("%s: allows no IPv%d source", from, f)
			default:
				continue // the input policy drops this family
			}
			chain.Rules = append(chain.Rules, r)
		}
	}
}

func (b *fwBuilder) nodeAddrs(networks []string) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, a := range b.c.node.Addresses {
		if len(networks) == 0 || slices.Contains(networks, a.Network) {
			out[a.Network] = append(out[a.Network], a.IP)
		}
	}
	return out
}

// management admits every management entry on every address of the node,
// before the bans and the services, so no later rule can lock it out.
func (b *fwBuilder) management() {
	in := b.chain("input")
	for _, mg := range b.c.node.Management {
		if mg.OutOfBand(b.c.node) {
			continue
		}
		from := object("management", mg.Name, mg.Pos)
		var srcs []inventory.Source
		anyone := false
		for _, nw := range b.c.networks() {
			res := b.c.m.ResolveAllow(mg.Allow, nw)
			anyone = anyone || res.Any
			srcs = append(srcs, res.Sources...)
		}
		if anyone {
			in.Rules = append(in.Rules, FirewallRule{L4Proto: mg.Transport(), DPort: uint16(mg.DefaultPort()), Verdict: "accept", From: from})
			continue
		}
		for _, f := range []int{4, 6} {
			ps := prefixesOf(srcs, f)
			if len(ps) == 0 {
				continue
			}
			set := b.set("mgmt-"+mg.Name, f, ps, fmt.Sprintf("%s: allow %s", from, fromNames(srcs)))
			in.Rules = append(in.Rules, FirewallRule{Family: f, SrcSet: set, L4Proto: mg.Transport(), DPort: uint16(mg.DefaultPort()), Verdict: "accept", From: from})
		}
	}
	b.replicaSSH()
}

// replicaSSH admits, on the node's ssh port, the nodes that copy replicas
// over ssh: the replica's initiator ([inventory.Replica.Initiators]:
// syncoid and rsync pull, so the target connects; Proxmox replication
// pushes, so the source connects).
func (b *fwBuilder) replicaSSH() {
	n := b.c.node
	port := 0
	for _, mg := range n.Management {
		if mg.Name == "ssh" && !mg.OutOfBand(n) {
			port = mg.DefaultPort()
		}
	}
	if port == 0 {
		return
	}
	var peers, names []string
	for _, r := range b.c.m.Replicas {
		if r.Source == nil || r.Target == nil {
			continue
		}
		peer, to := r.Initiators()
		if to != n.Name || peer == n.Name {
			continue
		}
		names = append(names, r.Name)
		if !slices.Contains(peers, peer) {
			peers = append(peers, peer)
		}
	}
	if len(peers) == 0 {
		return
	}
	from := fmt.Sprintf("replicas over ssh from %s (%s)", strings.Join(peers, ", "), strings.Join(names, ", "))
	var srcs []inventory.Source
	for _, nw := range b.c.networks() {
		srcs = append(srcs, b.c.m.ResolveAllow(peers, nw).Sources...)
	}
	in := b.chain("input")
	for _, f := range []int{4, 6} {
		ps := prefixesOf(srcs, f)
		if len(ps) == 0 {
			continue
		}
		set := b.set("replicas-ssh", f, ps, from)
		in.Rules = append(in.Rules, FirewallRule{Family: f, SrcSet: set, L4Proto: "tcp", DPort: uint16(port), Verdict: "accept", From: from})
	}
}

// services filters every service declared on the node that listens on a
// network: it admits only what its allow list resolves to there.
func (b *fwBuilder) services() {
	in := b.chain("input")
	for _, s := range b.c.m.ServicesOn(b.c.node.Name) {
		if s.Node != b.c.node.Name || s.Loopback {
			continue
		}
		addrs := b.nodeAddrs(s.Bind)
		for _, nw := range b.c.networks() {
			if len(addrs[nw]) == 0 {
				continue
			}
			b.allowRules(in, "svc-"+s.Name+"-"+nw, object("service", s.Name, s.Pos), s.Allow, nw, addrs[nw], "tcp", s.Port)
		}
		b.forwardedTo(s)
	}
}

// forwardedTo admits, on service s, the clients of kernel forwards that
// target it: DNAT keeps their address, so s sees them as the forward's
// allow list resolves them on the forward's network.
func (b *fwBuilder) forwardedTo(s *inventory.Service) {
	c := b.c
	for _, f := range c.m.ForwardsTo(s.Name) {
		if !f.IsKernel() || f.Service != s.Name || f.Listen == nil {
			continue
		}
		fwNode := c.m.Node(f.Node)
		if fwNode == nil {
			continue
		}
		tg, ok := c.m.ReachService(fwNode, s)
		if !ok || tg.Loopback {
			continue
		}
		b.allowRules(b.chain("input"), "fwd-"+f.Name, object("forward", f.Name, f.Pos)+" to "+s.Name, f.Allow, f.Listen.Network, []netip.Addr{tg.Addr.Addr()}, "tcp", s.Port)
	}
}

// listeners admits what each of offedge's own listeners admits (the same
// access list it checks at accept), so the kernel and offedge agree.
func (b *fwBuilder) listeners() {
	in := b.chain("input")
	for _, l := range b.c.plan.Listeners {
		if l.Network == LoopbackNetwork {
			continue
		}
		from := l.Name
		switch {
		case l.Forward != nil:
			from = object("forward", l.Forward.Name, b.c.forwardPos(l.Forward.Name))
		case l.Entrance != nil:
			from = object("tunnel", l.Entrance.Name, b.c.tunnelPos(l.Entrance.Name)) + " entrance"
		case l.Exit != nil:
			var names []string
			for _, t := range l.Exit.Tunnels {
				names = append(names, t.Name)
			}
			from = "tunnel exit of " + strings.Join(names, ", ")
		case l.HTTP != nil:
			var names []string
			for _, s := range l.HTTP.Sites {
				names = append(names, s.Name)
			}
			from = "site " + strings.Join(names, ", ")
		}
		a := l.Addr.Addr()
		f := fam(a)
		r := FirewallRule{Family: f, Dst: a, L4Proto: "tcp", DPort: l.Addr.Port(), Verdict: "accept", From: from}
		open := l.ACL.Default
		for _, rule := range l.ACL.Rules {
			if !rule.Allow {
				// First-match lists with denials are decided in userspace;
				// the kernel lets the listener see them.
				open = true
			}
		}
		if !open {
			var ps []netip.Prefix
			var srcs []inventory.Source
			for _, rule := range l.ACL.Rules {
				if fam(rule.Prefix.Addr()) == f {
					ps = append(ps, rule.Prefix)
				}
				srcs = append(srcs, inventory.Source{Prefix: rule.Prefix, From: rule.From})
			}
			if len(ps) == 0 {
				r.Verdict, r.From = "drop", from+": allows nobody"
			} else {
				r.SrcSet = b.set(l.Name, f, ps, fmt.Sprintf("%s: allow %s", from, fromNames(srcs)))
			}
		}
		in.Rules = append(in.Rules, r)
	}
}

// admin admits, on the admin endpoint's port, what its access list
// admits (loopback is admitted above for everything).
func (b *fwBuilder) admin() {
	a := b.c.plan.Admin
	if a == nil || !a.Listen.IsValid() || a.Listen.Addr().IsLoopback() {
		return
	}
	in := b.chain("input")
	from := fmt.Sprintf("admin endpoint of %s", b.c.node.Name)
	if pos := b.c.m.Admin(b.c.node.Name); pos != nil {
		from = object("admin endpoint", b.c.node.Name, pos.Pos)
	}
	ip := a.Listen.Addr()
	fams := []int{fam(ip)}
	if ip.IsUnspecified() && ip.Is6() {
		fams = []int{4, 6} // [::] is dual-stack
	}
	for _, f := range fams {
		r := FirewallRule{Family: f, L4Proto: "tcp", DPort: a.Listen.Port(), Verdict: "accept", From: from}
		if !ip.IsUnspecified() {
			r.Dst = ip
		}
		if !a.ACL.Default {
			var ps []netip.Prefix
			var srcs []inventory.Source
			for _, rule := range a.ACL.Rules {
				if rule.Allow && fam(rule.Prefix.Addr()) == f && !rule.Prefix.Addr().IsLoopback() {
					ps = append(ps, rule.Prefix)
					srcs = append(srcs, inventory.Source{Prefix: rule.Prefix, From: rule.From})
				}
			}
			if len(ps) == 0 {
				continue // the input policy closes it for this family
			}
			r.SrcSet = b.set("admin", f, ps, fmt.Sprintf("%s: allow %s", from, fromNames(srcs)))
		}
		in.Rules = append(in.Rules, r)
	}
}

func (c *compiler) forwardPos(name string) inventory.Pos {
	if f := c.m.Forward(name); f != nil {
		return f.Pos
	}
	return inventory.Pos{}
}

func (c *compiler) tunnelPos(name string) inventory.Pos {
	if t := c.m.Tunnel(name); t != nil {
		return t.Pos
	}
	return inventory.Pos{}
}

func (b *fwBuilder) natChain(name string) *FirewallChain {
	if ch := b.chain(name); ch != nil {
		return ch
	}
	ch := FirewallChain{Name: name, Type: "nat", Hook: name, Priority: PriorityDstNAT, Policy: "accept"}
	if name == "postrouting" {
		ch.Priority = PrioritySrcNAT
	}
	b.fw.Chains = append(b.fw.Chains, ch)
	return b.chain(name)
}

// kernelForwards renders forwards with mode kernel as DNAT rules: the
// allowed sources are rewritten to the target; everyone else reaches the
// input chain, where nothing admits the port.
func (b *fwBuilder) kernelForwards() {
	c := b.c
	for _, f := range c.m.ForwardsOn(c.node.Name) {
		if f.Node != c.node.Name || f.Listen == nil || !f.IsKernel() {
			continue
		}
		from := object("forward", f.Name, f.Pos)
		svc := c.m.Service(f.Service)
		if svc == nil {
			continue
		}
		tg, ok := c.m.ReachService(c.node, svc)
		if !ok {
			c.fail("forward %q: %s cannot reach service %q", f.Name, c.node.Name, svc.Name)
			continue
		}
		if tg.Loopback || tg.Via != nil {
			c.fail("forward %q: a kernel forward needs its target on a network %s shares with it (%s); use mode: userspace", f.Name, c.node.Name, tg)
			continue
		}
		res := c.m.ResolveAllow(f.Allow, f.Listen.Network)
		for _, ap := range c.m.EndpointAddrs(f.Listen) {
			fa := fam(ap.Addr())
			if fam(tg.Addr.Addr()) != fa {
				c.fail("forward %q: listens on %s but its target %s is of the other address family", f.Name, ap, tg.Addr)
				continue
			}
			r := FirewallRule{Family: fa, Dst: ap.Addr(), L4Proto: "tcp", DPort: ap.Port(), Verdict: "dnat", DNAT: tg.Addr, From: from}
			if !res.Any {
				ps := prefixesOf(res.Sources, fa)
				if len(ps) == 0 {
					continue // nobody to forward; the input chain closes the port
				}
				r.SrcSet = b.set("fwd-"+f.Name, fa, ps, fmt.Sprintf("%s: allow %s", from, fromNames(res.Sources)))
			}
			ch := b.natChain("prerouting")
			ch.Rules = append(ch.Rules, r)
		}
	}
}

// sourceNAT translates, for every network whose gateway the node is (and
// every address that names the node as its own gateway), traffic leaving
// that network to the node's public address of the same family: SNAT for
// IPv4, NAT66 for IPv6. The address is the one the model says others see
// (`offedge why` shows it), not whatever the kernel would pick.
func (b *fwBuilder) sourceNAT() {
	c := b.c
	m := c.m
	var public string
	for _, nw := range m.Networks {
		if nw.Kind == "public" {
			public = nw.Name
		}
	}
	pubAddr := func(f int) (netip.Addr, bool) {
		for _, a := range c.node.AddressesOn(public) {
			if fam(a.IP) == f {
				return a.IP, true
			}
		}
		return netip.Addr{}, false
	}
	for _, nw := range m.Networks {
		if nw.Kind == "public" {
			continue
		}
		for _, f := range []int{4, 6} {
			to, ok := pubAddr(f)
			if !ok {
				continue
			}
			// The network's own range: declared prefixes, or the addresses on it.
			var lan []netip.Prefix
			for _, p := range nw.Prefixes {
				if fam(p.Addr()) == f {
					lan = append(lan, p)
				}
			}
			var members []netip.Prefix
			var who []string
			for _, n := range m.NodesOn(nw.Name) {
				for _, a := range n.AddressesOn(nw.Name) {
					if fam(a.IP) != f {
						continue
					}
					if m.GatewayOf(a) == c.node && n != c.node {
						members = append(members, netip.PrefixFrom(a.IP, a.IP.BitLen()))
						who = append(who, n.Name)
					}
				}
			}
			if len(members) == 0 {
				continue
			}
			if len(lan) == 0 {
				for _, n := range m.NodesOn(nw.Name) {
					for _, a := range n.AddressesOn(nw.Name) {
						if fam(a.IP) == f {
							lan = append(lan, netip.PrefixFrom(a.IP, a.IP.BitLen()))
						}
					}
				}
			}
			src := members
			from := object("network", nw.Name, nw.Pos) + " gateway"
			if nw.Gateway == c.node.Name && len(lan) > 0 && len(nw.Prefixes) > 0 {
				src = lan
			} else {
				from = fmt.Sprintf("gateway of %s on %s", strings.Join(who, ", "), nw.Name)
			}
			srcSet := b.set("nat-"+nw.Name, f, src, from)
			lanSet := b.set("lan-"+nw.Name, f, lan, object("network", nw.Name, nw.Pos)+": its addresses")
			ch := b.natChain("postrouting")
			ch.Rules = append(ch.Rules, FirewallRule{Family: f, SrcSet: srcSet, DstNotSet: lanSet, Verdict: "snat", SNAT: to, From: from})
		}
	}
}
