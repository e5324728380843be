package lab

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

// Addresses maps every address of the inventory to a loopback socket:
//
//   - IPv4 addresses get their own loopback address, one /16 per network
//     (the internet in 127.1.0.0/16, private networks from 127.10.0.0/16
//     on, in inventory order), so the same private address at two sites
//     stays two hosts, and a connection's source says which node made it;
//   - each node's own 127.0.0.1 becomes an address of 127.3.0.0/16;
//   - IPv6 addresses all share ::1, each address:port with its own port
//     (from 20000 up), so IPv6-only hosts work without root;
//     access lists cannot tell IPv6 peers apart there, which the tour says;
//   - ports below 1024 move to 10000+port, so no root is needed.
type Addresses struct {
	v4       map[netKey]netip.Addr
	back     map[netip.Addr]netKey
	loopback map[string]netip.Addr
	m        *inventory.Model

	mu      sync.Mutex
	v6ports map[v6Key]uint16
	first   uint16
	next    uint16
	limit   uint16
}

type netKey struct {
	network string
	ip      netip.Addr
}

type v6Key struct {
	network string
	ap      netip.AddrPort
}

var ipv6Loopback = netip.IPv6Loopback()

// MaxInstance is the highest lab instance number: instances use disjoint
// loopback ranges, so several labs can run side by side.
const MaxInstance = 4

// NewAddresses assigns loopback addresses to every address of m, in the
// ranges of lab instance (0 to MaxInstance): instance i shifts every
// 127.N.0.0/16 range by 50*i and starts IPv6 ports at 20000+2000*i, below
// the kernel's ephemeral ports so that no outgoing connection takes them.
func NewAddresses(m *inventory.Model, instance int) *Addresses {
	shift := byte(50 * instance)
	a := &Addresses{v4: map[netKey]netip.Addr{}, back: map[netip.Addr]netKey{}, loopback: map[string]netip.Addr{},
		m: m, v6ports: map[v6Key]uint16{}}
	a.first = uint16(20000 + 2000*instance)
	a.next, a.limit = a.first, a.first+2000
	second := 10 + shift
	for _, nw := range m.Networks {
		b := second
		if nw.Kind == "public" {
			b = 1 + shift
		} else {
			second++
		}
		i := 0
		for _, n := range m.NodesOn(nw.Name) {
			for _, ad := range n.AddressesOn(nw.Name) {
				if !ad.IP.Is4() {
					continue
				}
				i++
				lo := netip.AddrFrom4([4]byte{127, b, byte(i / 250), byte(i%250 + 1)})
				a.v4[netKey{nw.Name, ad.IP}] = lo
				a.back[lo] = netKey{nw.Name, ad.IP}
			}
		}
	}
	for i, n := range m.Nodes {
		j := i + 1
		a.loopback[n.Name] = netip.AddrFrom4([4]byte{127, 3 + shift, byte(j / 250), byte(j%250 + 1)})
	}
	return a
}

func labPort(p uint16) uint16 {
	if p < 1024 {
		return 10000 + p
	}
	return p
}

// Map returns the loopback socket for addr on network.
func (a *Addresses) Map(network string, ap netip.AddrPort) (netip.AddrPort, error) {
	if ap.Addr().Is4() {
		lo, ok := a.v4[netKey{network, ap.Addr()}]
		if !ok {
			return netip.AddrPort{}, fmt.Errorf("lab: %s is not an address of network %q in the inventory", ap.Addr(), network)
		}
		return netip.AddrPortFrom(lo, labPort(ap.Port())), nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k := v6Key{network, ap}
	p, ok := a.v6ports[k]
	if !ok {
		// Deterministic, no probing: probing a port by binding it raced
		// with the lab's own listeners. A port another program holds fails
		// the listen with a clear error; --instance moves the whole range.
		if a.next >= a.limit {
			return netip.AddrPort{}, fmt.Errorf("lab: more than %d IPv6 sockets", a.limit-a.first)
		}
		p = a.next
		a.next++
		a.v6ports[k] = p
	}
	return netip.AddrPortFrom(ipv6Loopback, p), nil
}

// Source returns the loopback address standing for ip on network.
func (a *Addresses) Source(network string, ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is4() {
		return ipv6Loopback, true
	}
	lo, ok := a.v4[netKey{network, ip}]
	return lo, ok
}

// Loopback returns the address standing for node's own 127.0.0.1.
func (a *Addresses) Loopback(node string) netip.Addr { return a.loopback[node] }

// Reverse names the inventory address a loopback address stands for.
func (a *Addresses) Reverse(lo netip.Addr) (network string, ip netip.Addr, ok bool) {
	k, ok := a.back[lo]
	return k.network, k.ip, ok
}

// Table lists every mapping, for the tour.
func (a *Addresses) Table() []Mapping {
	var out []Mapping
	for k, lo := range a.v4 {
		n := a.m.NodeAt(k.network, k.ip)
		out = append(out, Mapping{Node: n.Name, Network: k.network, Addr: k.ip.String(), Lab: lo.String()})
	}
	a.mu.Lock()
	for k, p := range a.v6ports {
		name := "?"
		if n := a.m.NodeAt(k.network, k.ap.Addr()); n != nil {
			name = n.Name
		}
		out = append(out, Mapping{Node: name, Network: k.network, Addr: k.ap.String(), Lab: netip.AddrPortFrom(ipv6Loopback, p).String()})
	}
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node != out[j].Node {
			return out[i].Node < out[j].Node
		}
		return out[i].Addr < out[j].Addr
	})
	return out
}

// Mapping is one row of the address table.
type Mapping struct {
	Node, Network, Addr, Lab string
}

// nodeMap is the runtime.AddrMap of one node: the shared address table plus
// the node's own loopback.
type nodeMap struct {
	a    *Addresses
	node string
	// isDown reports whether a node is down (nil: none is).
	isDown func(node string) bool
}

func (n nodeMap) Listen(network string, ap netip.AddrPort) (netip.AddrPort, error) {
	if n.a == nil {
		return ap, nil // a namespace lab: the inventory's own addresses
	}
	if network == plan.LoopbackNetwork {
		return netip.AddrPortFrom(n.a.Loopback(n.node), labPort(ap.Port())), nil
	}
	return n.a.Map(network, ap)
}

func (n nodeMap) Dial(network string, ap netip.AddrPort) (netip.AddrPort, error) {
	return n.Listen(network, ap)
}

func (n nodeMap) Source(network string, ip netip.Addr) (netip.Addr, error) {
	if network == plan.LoopbackNetwork {
		return n.a.Loopback(n.node), nil
	}
	// A source address of another node is a NAT gateway's: when that node
	// is down, the traffic it would masquerade goes nowhere.
	if owner := n.a.m.NodeAt(network, ip); owner != nil && owner.Name != n.node && n.isDown != nil && n.isDown(owner.Name) {
		return netip.Addr{}, fmt.Errorf("lab: gateway %s is down, so %s cannot reach %s", owner.Name, n.node, network)
	}
	src, ok := n.a.Source(network, ip)
	if !ok {
		return netip.Addr{}, fmt.Errorf("lab: no lab address for %s on %s", ip, network)
	}
	return src, nil
}

// ACL rewrites an access list in production addresses into lab addresses: a
// host rule becomes the host's loopback address; a range becomes the
// loopback addresses of every inventory address of the network inside it.
func (n nodeMap) ACL(network string, l acl.List) acl.List {
	out := acl.List{Default: l.Default}
	add := func(r acl.Rule, p netip.Prefix) {
		for _, e := range out.Rules {
			if e.Prefix == p && e.Allow == r.Allow {
				return
			}
		}
		out.Rules = append(out.Rules, acl.Rule{Prefix: p, Allow: r.Allow, From: r.From})
	}
	for _, r := range l.Rules {
		if network == plan.LoopbackNetwork {
			lo := n.a.Loopback(n.node)
			add(r, netip.PrefixFrom(lo, 32))
			continue
		}
		if !r.Prefix.Addr().Is4() {
			add(r, netip.PrefixFrom(ipv6Loopback, 128))
			continue
		}
		for k, lo := range n.a.v4 {
			if k.network == network && r.Prefix.Contains(k.ip) {
				add(r, netip.PrefixFrom(lo, 32))
			}
		}
	}
	return out
}
