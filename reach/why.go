package reach

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/offedge/offedge/inventory"
)

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// famName renders 4 as IPv4 and 6 as IPv6.
func famName(fam int) string { return fmt.Sprintf("IPv%d", fam) }

// WhyNot explains why from cannot reach any of the candidate addresses
// (network, ip) of node to. It names, per network and family, what is
// missing: an address on a private network, or internet egress of the family
// (no public address, no NAT gateway with one, or a gateway that is down).
func (e *Engine) WhyNot(from, to *inventory.Node, cands []*inventory.Address) string {
	if from != nil && e.down[from] {
		return from.Name + " is down"
	}
	if to != nil && e.down[to] {
		return to.Name + " is down"
	}
	if len(cands) == 0 {
		return fmt.Sprintf("%s has no address there", to.Name)
	}
	type key struct {
		network string
		fam     int // 0: a private network from has no address on
	}
	var order []key
	ips := map[key][]string{}
	for _, a := range cands {
		k := key{a.Network, family(a.IP)}
		if !e.m.IsPublic(a.Network) && len(from.AddressesOn(a.Network)) == 0 {
			k.fam = 0
		}
		if _, ok := ips[k]; !ok {
			order = append(order, k)
		}
		ips[k] = append(ips[k], a.IP.String())
	}
	var parts []string
	for _, k := range order {
		addrs := strings.Join(ips[k], ", ")
		switch {
		case k.fam == 0:
			parts = append(parts, fmt.Sprintf("no shared network: %s (%s) is private and %s has no address on it", k.network, addrs, from.Name))
		case !e.m.IsPublic(k.network):
			parts = append(parts, fmt.Sprintf("%s: %s on %s, where %s has no %s address", addrs, famName(k.fam), k.network, from.Name, famName(k.fam)))
		default:
			parts = append(parts, fmt.Sprintf("%s on %s: %s", addrs, k.network, e.NoEgress(from, k.network, k.fam)))
		}
	}
	return strings.Join(parts, "; ")
}

// NoEgress explains why n has no egress of family fam to public network nw.
func (e *Engine) NoEgress(n *inventory.Node, nw string, fam int) string {
	var downGws, noFam, noLocal []string
	for _, a := range n.Addresses {
		if e.m.IsPublic(a.Network) {
			continue
		}
		gw := e.m.GatewayOf(a)
		if gw == nil || gw == n {
			continue
		}
		if e.down[gw] {
			downGws = appendNew(downGws, gw.Name)
			continue
		}
		has := false
		for _, ga := range gw.Addresses {
			has = has || (ga.Network == nw && family(ga.IP) == fam)
		}
		if has {
			noLocal = appendNew(noLocal, fmt.Sprintf("%s has no %s address on %s to use its NAT gateway %s", n.Name, famName(fam), a.Network, gw.Name))
		} else {
			noFam = appendNew(noFam, gw.Name)
		}
	}
	msg := fmt.Sprintf("%s has no %s egress (no public %s address", n.Name, famName(fam), famName(fam))
	switch {
	case len(downGws) > 0:
		msg += fmt.Sprintf(", and its NAT gateway %s is down)", strings.Join(downGws, ", "))
	case len(noLocal) > 0:
		msg += "; " + strings.Join(noLocal, "; ") + ")"
	case len(noFam) > 0:
		msg += fmt.Sprintf(", and its NAT gateway %s has no public %s address)", strings.Join(noFam, ", "), famName(fam))
	default:
		msg += " and no NAT gateway)"
	}
	return msg
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// Candidates lists the addresses of node n on the given networks (all of its
// addresses when networks is empty).
func Candidates(n *inventory.Node, networks []string) []*inventory.Address {
	var out []*inventory.Address
	for _, a := range n.Addresses {
		if len(networks) == 0 || slices.Contains(networks, a.Network) {
			out = append(out, a)
		}
	}
	return out
}

// EndpointCandidates lists the addresses an endpoint listens on.
func (e *Engine) EndpointCandidates(ep *inventory.Endpoint) []*inventory.Address {
	n := e.m.Node(ep.Node)
	if n == nil {
		return nil
	}
	var out []*inventory.Address
	for _, ap := range e.m.EndpointAddrs(ep) {
		for _, a := range n.Addresses {
			if a.Network == ep.Network && a.IP == ap.Addr() {
				out = append(out, a)
			}
		}
	}
	return out
}
