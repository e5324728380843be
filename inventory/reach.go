package inventory

import (
	"fmt"
	"net/netip"
	"slices"
)

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// SourceFor reports the source address node n presents when it connects to
// an address of the given family (4 or 6) on network, and the gateway it
// goes through when that address is NAT'd. It reports ok=false when n cannot
// reach that network with that family at all: a private network n has no
// address on, or the internet without a public address or a gateway of that
// family. Reachability never comes from comparing bare IPs: 10.0.0.1 at
// Free and 10.0.0.1 at OVH are different hosts.
func (m *Model) SourceFor(n *Node, network string, fam int) (src netip.Addr, via *Node, ok bool) {
	return m.Live(nil).SourceFor(n, network, fam)
}

// Live is the model's reachability with some nodes down: a down node is
// never an end, a hop or a NAT gateway. `offedge impact` and the lab's
// failure drills use it; the Model's own methods are Live(nil).
type Live struct {
	m    *Model
	down func(*Node) bool
}

// Live returns the model's reachability where down reports the nodes that
// are down (nil: none).
func (m *Model) Live(down func(*Node) bool) Live { return Live{m: m, down: down} }

func (l Live) isDown(n *Node) bool { return n == nil || (l.down != nil && l.down(n)) }

// SourceFor is [Model.SourceFor] with down gateways skipped.
func (l Live) SourceFor(n *Node, network string, fam int) (src netip.Addr, via *Node, ok bool) {
	m := l.m
	for _, a := range n.Addresses {
		if a.Network == network && family(a.IP) == fam {
			return a.IP, nil, true
		}
	}
	if !m.IsPublic(network) {
		return netip.Addr{}, nil, false
	}
	for _, a := range n.Addresses {
		if family(a.IP) != fam || m.IsPublic(a.Network) {
			continue
		}
		gw := m.GatewayOf(a)
		if gw == nil || gw == n || l.isDown(gw) {
			continue
		}
		for _, ga := range gw.Addresses {
			if ga.Network == network && family(ga.IP) == fam {
				return ga.IP, gw, true
			}
		}
	}
	return netip.Addr{}, nil, false
}

// Target is how a node reaches a port of another node: the address it
// dials, the network that address is on, the source it presents, and the
// gateway it NATs through (nil when direct).
type Target struct {
	Network  string
	Addr     netip.AddrPort
	Source   netip.Addr
	Via      *Node
	Loopback bool
}

// String renders "10.1.0.102:27017 on ovh-lan" or "via ovh1 (NAT)".
func (t Target) String() string {
	s := fmt.Sprintf("%s on %s", t.Addr, t.Network)
	if t.Loopback {
		return fmt.Sprintf("%s (loopback)", t.Addr)
	}
	if t.Via != nil {
		s += fmt.Sprintf(" from %s via %s (NAT)", t.Source, t.Via.Name)
	}
	return s
}

// Reach returns how from reaches port on node to, trying to's addresses on
// networks (all of its networks when networks is empty), preferring a shared
// private network, then the internet over IPv4, then over IPv6. loopbackOK
// allows 127.0.0.1 when from and to are the same node.
func (m *Model) Reach(from, to *Node, port int, networks []string, loopbackOK bool) (Target, bool) {
	return m.Live(nil).Reach(from, to, port, networks, loopbackOK)
}

// Reach is [Model.Reach] on the live part of the model.
func (l Live) Reach(from, to *Node, port int, networks []string, loopbackOK bool) (Target, bool) {
	m := l.m
	if l.isDown(from) || l.isDown(to) {
		return Target{}, false
	}
	if from == to && loopbackOK {
		return Target{Network: "loopback", Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port)), Source: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Loopback: true}, true
	}
	var best *Target
	bestRank := 99
	for _, a := range to.Addresses {
		if len(networks) > 0 && !slices.Contains(networks, a.Network) {
			continue
		}
		src, via, ok := l.SourceFor(from, a.Network, family(a.IP))
		if !ok {
			continue
		}
		rank := 0
		if m.IsPublic(a.Network) {
			rank = 2
			if family(a.IP) == 6 {
				rank = 3
			}
		} else if family(a.IP) == 6 {
			rank = 1
		}
		if rank < bestRank {
			bestRank = rank
			best = &Target{Network: a.Network, Addr: netip.AddrPortFrom(a.IP, uint16(port)), Source: src, Via: via}
		}
	}
	if best == nil {
		return Target{}, false
	}
	return *best, true
}

// ReachService returns how from reaches service s directly (no tunnel),
// honouring where the service binds.
func (m *Model) ReachService(from *Node, s *Service) (Target, bool) {
	return m.Live(nil).ReachService(from, s)
}

// ReachService is [Model.ReachService] on the live part of the model.
func (l Live) ReachService(from *Node, s *Service) (Target, bool) {
	m := l.m
	to := m.nodes[s.Node]
	if to == nil {
		return Target{}, false
	}
	if s.Loopback {
		if from != to {
			return Target{}, false
		}
		return l.Reach(from, to, s.Port, nil, true)
	}
	if from == to && len(s.Bind) == 0 {
		// A service bound to every network also answers on loopback.
		return l.Reach(from, to, s.Port, nil, true)
	}
	// A service bound to some networks listens only there, even for a
	// process on the same node.
	return l.Reach(from, to, s.Port, s.Bind, false)
}

// EndpointAddrs returns the addresses an endpoint listens on: the one named,
// or the node's first address of each family on the network; 127.0.0.1 for
// loopback endpoints.
func (m *Model) EndpointAddrs(e *Endpoint) []netip.AddrPort {
	if e.Loopback {
		return []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(e.Port))}
	}
	if e.Address.IsValid() {
		return []netip.AddrPort{netip.AddrPortFrom(e.Address, uint16(e.Port))}
	}
	n := m.nodes[e.Node]
	if n == nil {
		return nil
	}
	var out []netip.AddrPort
	seen := map[int]bool{}
	for _, a := range n.AddressesOn(e.Network) {
		if !seen[family(a.IP)] {
			seen[family(a.IP)] = true
			out = append(out, netip.AddrPortFrom(a.IP, uint16(e.Port)))
		}
	}
	return out
}

// ReachEndpoint returns how from reaches a listening endpoint (a tunnel
// exit or entrance, a forward).
func (m *Model) ReachEndpoint(from *Node, e *Endpoint) (Target, bool) {
	return m.Live(nil).ReachEndpoint(from, e)
}

// ReachEndpoint is [Model.ReachEndpoint] on the live part of the model.
func (l Live) ReachEndpoint(from *Node, e *Endpoint) (Target, bool) {
	m := l.m
	to := m.nodes[e.Node]
	if l.isDown(from) || l.isDown(to) {
		return Target{}, false
	}
	if e.Loopback {
		if from != to {
			return Target{}, false
		}
		return l.Reach(from, to, e.Port, nil, true)
	}
	for _, ap := range m.EndpointAddrs(e) {
		src, via, ok := l.SourceFor(from, e.Network, family(ap.Addr()))
		if ok {
			return Target{Network: e.Network, Addr: ap, Source: src, Via: via}, true
		}
	}
	return Target{}, false
}
