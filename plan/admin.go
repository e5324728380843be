package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/inventory"
)

// Admin is the node's admin endpoint as the inventory declares it (admin:),
// and the other nodes' endpoints its dashboard asks for the estate's state.
type Admin struct {
	// Listen is the endpoint's address; invalid when the inventory
	// declares none (then only `offedge run --admin` opens one, on
	// loopback).
	Listen netip.AddrPort `json:"listen,omitzero"`
	// TokenFile is the bearer token clients must present; empty: none
	// (the endpoint must then be on loopback).
	TokenFile string `json:"token_file,omitempty"`
	// ACL is who may connect, decided at accept (and admitted by the
	// node's firewall): loopback, the node itself, the nodes of the other
	// admin entries (their dashboards ask this one) and the entry's
	// allow list, resolved on every network of the node. Valid whatever
	// address `offedge run --admin` listens on.
	ACL acl.List `json:"acl"`
	// Peers are the other nodes' admin endpoints off loopback (an endpoint
	// on loopback is another process on every machine), sorted by node.
	Peers []AdminPeer `json:"peers,omitempty"`
}

// AdminPeer is another node's admin endpoint and the token to ask it with.
type AdminPeer struct {
	Node string         `json:"node"`
	Addr netip.AddrPort `json:"addr"`
	// TokenFile is the peer's token, read on this node at the same path;
	// empty when the peer asks for none.
	TokenFile string `json:"token_file,omitempty"`
}

// admin compiles the node's admin endpoint and its peers; nil when the
// inventory declares no admin endpoint at all.
func (c *compiler) admin() *Admin {
	if len(c.m.Admins) == 0 {
		return nil
	}
	out := &Admin{}
	var allow []string
	if a := c.m.Admin(c.node.Name); a != nil {
		out.Listen = a.Listen
		if a.Auth != nil {
			out.TokenFile = c.opts.file(a.Auth.TokenFile)
		}
		allow = a.Allow
	}
	out.ACL = c.adminACL(allow)
	for _, a := range c.m.Admins {
		if a.Node == c.node.Name || a.IsLoopback() {
			continue
		}
		addr, ok := c.peerAddr(a)
		if !ok {
			continue
		}
		p := AdminPeer{Node: a.Node, Addr: addr}
		if a.Auth != nil {
			p.TokenFile = c.opts.file(a.Auth.TokenFile)
		}
		out.Peers = append(out.Peers, p)
	}
	sort.Slice(out.Peers, func(i, j int) bool { return out.Peers[i].Node < out.Peers[j].Node })
	return out
}

// adminACL resolves who may connect to the node's admin endpoint (see
// [Admin.ACL]): the union over the node's networks, loopback first.
func (c *compiler) adminACL(allow []string) acl.List {
	who := append([]string{c.node.Name}, allow...)
	for _, a := range c.m.Admins {
		if a.Node != c.node.Name && !slices.Contains(who, a.Node) {
			who = append(who, a.Node)
		}
	}
	out := c.aclFor(nil, LoopbackNetwork, "")
	seen := map[netip.Prefix]bool{}
	for _, r := range out.Rules {
		seen[r.Prefix] = true
	}
	obj := fmt.Sprintf("admin of %q", c.node.Name)
	for _, nw := range c.networks() {
		l := c.aclFor(who, nw, obj)
		if l.Default {
			return acl.AllowAll()
		}
		for _, r := range l.Rules {
			if !seen[r.Prefix] {
				seen[r.Prefix] = true
				out.Rules = append(out.Rules, r)
			}
		}
	}
	return out
}

// networks are the networks the node has an address on, in its order.
func (c *compiler) networks() []string {
	var out []string
	for _, a := range c.node.Addresses {
		if !slices.Contains(out, a.Network) {
			out = append(out, a.Network)
		}
	}
	return out
}

// peerAddr is the address this node asks a peer's endpoint on: its listen
// address, or for a wildcard listen the peer's address on a network both
// nodes are on, else its public address.
func (c *compiler) peerAddr(a *inventory.Admin) (netip.AddrPort, bool) {
	if !a.Listen.Addr().IsUnspecified() {
		return a.Listen, true
	}
	peer := c.m.Node(a.Node)
	if peer == nil {
		return netip.AddrPort{}, false
	}
	v6 := a.Listen.Addr().Is6()
	fits := func(ip netip.Addr) bool { return v6 || ip.Is4() }
	for _, pa := range peer.Addresses {
		if fits(pa.IP) && len(c.node.AddressesOn(pa.Network)) > 0 {
			return netip.AddrPortFrom(pa.IP, a.Listen.Port()), true
		}
	}
	for _, pa := range peer.Addresses {
		if n := c.m.Network(pa.Network); fits(pa.IP) && n != nil && n.Kind == "public" {
			return netip.AddrPortFrom(pa.IP, a.Listen.Port()), true
		}
	}
	return netip.AddrPort{}, false
}

func (a *Admin) writeText(b *strings.Builder) {
	b.WriteString("admin endpoint:\n")
	auth := "no auth (loopback only)"
	if a.TokenFile != "" {
		auth = "token " + a.TokenFile
	}
	if a.Listen.IsValid() {
		fmt.Fprintf(b, "  listen %s, %s\n", a.Listen, auth)
	} else {
		fmt.Fprintf(b, "  none declared (offedge run --admin opens one on loopback), %s\n", auth)
	}
	fmt.Fprintf(b, "  acl: %s\n", a.ACL.String())
	for _, p := range a.Peers {
		tok := "no token"
		if p.TokenFile != "" {
			tok = "token " + p.TokenFile
		}
		fmt.Fprintf(b, "  peer %s at %s, %s\n", p.Node, p.Addr, tok)
	}
}
