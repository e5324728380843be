package reach

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// Hop is one leg of a connection: From connects to To at Target, as part of
// Kind ("tcp", "entrance", "tunnel", "forward", "http").
type Hop struct {
	From   *inventory.Node
	To     *inventory.Node
	Kind   string
	Via    string // tunnel, forward or site name; "" for a direct connection
	Target inventory.Target
}

// String renders "ovh-stunnel-client -> off2 203.0.113.8:27017 on internet [tunnel mongodb-ovh, TLS 1.3]".
func (h Hop) String() string {
	s := fmt.Sprintf("%s -> %s %s", h.From.Name, h.To.Name, h.Target)
	switch h.Kind {
	case "tunnel":
		s += fmt.Sprintf(" [tunnel %s, TLS 1.3]", h.Via)
	case "forward":
		s += fmt.Sprintf(" [forward %s]", h.Via)
	case "http":
		s += fmt.Sprintf(" [site %s]", h.Via)
	case "entrance":
		s += fmt.Sprintf(" [tunnel %s entrance, clear text]", h.Via)
	}
	return s
}

// Path is one way a node reaches a destination, hop by hop. When Blocked is
// set, the path exists on the network but an allow list refuses it.
type Path struct {
	// Title says which way this is: "direct", "via tunnel mongodb-ovh",
	// "site blog, route /, upstream blog".
	Title   string
	Hops    []Hop
	Blocked *Block
}

// Open reports whether the path is usable (no allow list refuses it).
func (p Path) Open() bool { return p.Blocked == nil }

// AnyOpen reports whether one of the paths is open.
func AnyOpen(ps []Path) bool {
	for _, p := range ps {
		if p.Open() {
			return true
		}
	}
	return false
}

// Kinds of object whose allow list can refuse a path.
const (
	BlockService = "service"
	BlockTunnel  = "tunnel" // the tunnel's entrance
	BlockForward = "forward"
	BlockSite    = "site"
	// BlockManagement is a node's management entry (ssh, the Proxmox UI),
	// named "ENTRY on NODE".
	BlockManagement = "management"
)

// Block is the allow list that refuses a path: which object it belongs to,
// where the inventory declares it, and whom it refuses, as data. Messages
// are rendered from it ([Block.String], [Block.Reason]); nobody needs to
// parse them back.
type Block struct {
	// Kind is BlockService, BlockTunnel (its entrance), BlockForward or
	// BlockSite; Name the object's name; Pos its position.
	Kind string
	Name string
	Pos  inventory.Pos
	// Allow is the refusing list, as the inventory writes it.
	Allow []string
	// Node is the refused node and Source the address the listener sees
	// (a NAT gateway's when the node is behind one), on Network.
	Node    *inventory.Node
	Source  netip.Addr
	Network string
	// Expanded renders the allow list with its policies expanded one level:
	// "[policy:free-servers = [off1, off2]]".
	Expanded string
}

// Object names the refusing object: `service "mongodb"`,
// `tunnel "mongodb-ovh" entrance`.
func (b *Block) Object() string {
	o := fmt.Sprintf("%s %q", b.Kind, b.Name)
	if b.Kind == BlockTunnel {
		o += " entrance"
	}
	return o
}

// String renders the block in full, for `offedge why`: `service "mongodb"
// at file:line allows [...]; docker-prod (10.1.0.201 on ovh-lan) is not
// admitted`, policies expanded one level.
func (b *Block) String() string { return b.text(true) }

// Reason renders the block without its position (reported beside it) and
// with the list as written: `service "mongodb" allows [backup, db-host];
// app (10.0.0.3) is not admitted`.
func (b *Block) Reason() string { return b.text(false) }

// text is the one place a refusal is put into words.
func (b *Block) text(full bool) string {
	where, list, seen := "", listText(b.Allow), b.Source.String()
	if b.Source.IsUnspecified() {
		seen = "any address" // the internet client of [Engine.Internet]
	}
	if full {
		if !b.Pos.IsZero() {
			where = " at " + b.Pos.String()
		}
		list = b.Expanded
		seen += " on " + b.Network
	}
	return fmt.Sprintf("%s%s allows %s; %s (%s) is not admitted", b.Object(), where, list, b.Node.Name, seen)
}

// listText renders an allow list as the inventory writes it.
func listText(entries []string) string { return "[" + strings.Join(entries, ", ") + "]" }

// Refused returns the block for node n, arriving as t, refused by the allow
// list of the object kind/name declared at pos.
func (e *Engine) Refused(kind, name string, pos inventory.Pos, allow []string, n *inventory.Node, t inventory.Target) *Block {
	return &Block{Kind: kind, Name: name, Pos: pos, Allow: allow, Node: n, Source: t.Source, Network: t.Network, Expanded: e.expandAllow(allow)}
}

// expandAllow quotes an allow list, expanding policy:NAME one level.
func (e *Engine) expandAllow(allow []string) string {
	if len(allow) == 0 {
		return "nobody (empty allow list)"
	}
	parts := make([]string, len(allow))
	for i, a := range allow {
		parts[i] = a
		if name, ok := strings.CutPrefix(a, "policy:"); ok {
			if p := e.m.Policy(name); p != nil {
				parts[i] = fmt.Sprintf("%s = [%s]", a, strings.Join(p.Allow, ", "))
			}
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
