package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// finder searches paths in a model where some nodes may be down. It mirrors
// inventory's Reach/ReachService/ReachEndpoint/PathsToService, with two
// differences: a down node is neither an end nor a hop nor a NAT gateway, and
// lookups go through indexes built once, so a search costs what the paths it
// explores cost, not a scan of the whole model.
//
// A finder is not safe for concurrent use (its allow-list cache).
type finder struct {
	m    *inventory.Model
	down map[*inventory.Node]bool
	live inventory.Live
	idx  *index
	// allow caches resolved allow lists per (list, network).
	allow map[allowKey]*allowSet
}

// index holds the lookups every search needs, built once per model.
type index struct {
	tunnelsBySvc  map[string][]*inventory.Tunnel
	forwardsBySvc map[string][]*inventory.Forward
	svcsByNode    map[string][]*inventory.Service
	sitesByNode   map[string][]*inventory.Site
	guests        map[string][]*inventory.Node
	exactHost     map[string][]*inventory.Site
	wildHost      map[string][]*inventory.Site // key ".example.org" for "*.example.org"
	publicNets    []string
	nodeOrder     map[*inventory.Node]int
}

func newIndex(m *inventory.Model) *index {
	x := &index{
		tunnelsBySvc:  map[string][]*inventory.Tunnel{},
		forwardsBySvc: map[string][]*inventory.Forward{},
		svcsByNode:    map[string][]*inventory.Service{},
		sitesByNode:   map[string][]*inventory.Site{},
		guests:        map[string][]*inventory.Node{},
		exactHost:     map[string][]*inventory.Site{},
		wildHost:      map[string][]*inventory.Site{},
		nodeOrder:     map[*inventory.Node]int{},
	}
	for _, t := range m.Tunnels {
		x.tunnelsBySvc[t.Service] = append(x.tunnelsBySvc[t.Service], t)
	}
	for _, f := range m.Forwards {
		x.forwardsBySvc[f.Service] = append(x.forwardsBySvc[f.Service], f)
	}
	for _, s := range m.Services {
		x.svcsByNode[s.Node] = append(x.svcsByNode[s.Node], s)
	}
	for _, s := range m.Sites {
		x.sitesByNode[s.Node] = append(x.sitesByNode[s.Node], s)
		for _, h := range s.Hosts {
			if rest, ok := strings.CutPrefix(h, "*"); ok {
				if !slices.Contains(x.wildHost[rest], s) {
					x.wildHost[rest] = append(x.wildHost[rest], s)
				}
			} else if !slices.Contains(x.exactHost[h], s) {
				x.exactHost[h] = append(x.exactHost[h], s)
			}
		}
	}
	for i, n := range m.Nodes {
		x.nodeOrder[n] = i
		if n.Host != nil {
			x.guests[n.Host.Name] = append(x.guests[n.Host.Name], n)
		}
	}
	for _, nw := range m.Networks {
		if nw.Kind == "public" {
			x.publicNets = append(x.publicNets, nw.Name)
		}
	}
	return x
}

func newFinder(m *inventory.Model, x *index, down map[*inventory.Node]bool) *finder {
	f := &finder{m: m, down: down, idx: x, allow: map[allowKey]*allowSet{}}
	f.live = m.Live(func(n *inventory.Node) bool { return down[n] })
	return f
}

// sitesForHost returns the sites answering hostname: exact names first, then
// the longest matching leading wildcard (inventory.Model.SiteForHost's rule,
// through the index).
func (x *index) sitesForHost(hostname string) []*inventory.Site {
	hostname = strings.ToLower(strings.TrimSuffix(hostname, "."))
	if s := x.exactHost[hostname]; len(s) > 0 {
		return s
	}
	for i := 0; i < len(hostname); i++ {
		if hostname[i] == '.' && i > 0 {
			if s := x.wildHost[hostname[i:]]; len(s) > 0 {
				return s
			}
		}
	}
	return nil
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func (f *finder) isDown(n *inventory.Node) bool { return n == nil || f.down[n] }

// gatewayOf returns the NAT gateway an address uses towards the internet.
func (f *finder) gatewayOf(a *inventory.Address) *inventory.Node {
	name := a.Gateway
	if name == "" {
		if nw := f.m.Network(a.Network); nw != nil {
			name = nw.Gateway
		}
	}
	if name == "" {
		return nil
	}
	return f.m.Node(name)
}

// The reachability primitives are inventory's, on the live part of the
// model: a down node is never an end, a hop or a NAT gateway.

func (f *finder) sourceFor(n *inventory.Node, network string, fam int) (netip.Addr, *inventory.Node, bool) {
	return f.live.SourceFor(n, network, fam)
}

func (f *finder) reach(from, to *inventory.Node, port int, networks []string, loopbackOK bool) (inventory.Target, bool) {
	return f.live.Reach(from, to, port, networks, loopbackOK)
}

func (f *finder) reachService(from *inventory.Node, s *inventory.Service) (inventory.Target, bool) {
	return f.live.ReachService(from, s)
}

func (f *finder) reachEndpoint(from *inventory.Node, e *inventory.Endpoint) (inventory.Target, bool) {
	return f.live.ReachEndpoint(from, e)
}

// allowKey identifies one resolved allow entry.
type allowKey struct {
	entry   string
	network string
}

// allowSet is one allow entry resolved for one network, ready for lookups.
type allowSet struct {
	any      bool
	exact    map[netip.Addr]bool
	prefixes []netip.Prefix
}

// allowFor resolves one entry for a network, once: lists differ from object
// to object ("policy:ovh-servers, docker-prod") but their entries repeat, and
// an entry such as provider:NAME costs a scan of every node.
func (f *finder) allowFor(entry, network string) *allowSet {
	k := allowKey{entry, network}
	if a, ok := f.allow[k]; ok {
		return a
	}
	res := f.m.ResolveAllow([]string{entry}, network)
	a := &allowSet{any: res.Any, exact: map[netip.Addr]bool{}}
	for _, s := range res.Sources {
		if s.Prefix.IsSingleIP() {
			a.exact[s.Prefix.Addr()] = true
		} else {
			a.prefixes = append(a.prefixes, s.Prefix)
		}
	}
	f.allow[k] = a
	return a
}

// admits reports whether an allow list lets a connection arriving as t in.
// The listener sees t.Source; loopback connections from the node itself are
// always admitted. An empty list admits nobody, as for services, tunnels and
// forwards (sites pass emptyMeansAnyone for their "empty means anyone" rule).
func (f *finder) admits(entries []string, t inventory.Target, emptyMeansAnyone bool) bool {
	if t.Loopback || (emptyMeansAnyone && len(entries) == 0) {
		return true
	}
	for _, e := range entries {
		a := f.allowFor(e, t.Network)
		if a.any || a.exact[t.Source] {
			return true
		}
		for _, p := range a.prefixes {
			if p.Contains(t.Source) {
				return true
			}
		}
	}
	return false
}

// famName renders 4 as IPv4 and 6 as IPv6.
func famName(fam int) string { return fmt.Sprintf("IPv%d", fam) }

// whyNot explains why from cannot reach any of the candidate addresses
// (network, ip) of node to. It names, per network and family, what is
// missing: an address on a private network, or internet egress of the family
// (no public address, no NAT gateway with one, or a gateway that is down).
func (f *finder) whyNot(from, to *inventory.Node, cands []*inventory.Address) string {
	if from != nil && f.down[from] {
		return from.Name + " is down"
	}
	if to != nil && f.down[to] {
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
		if !f.m.IsPublic(a.Network) && len(from.AddressesOn(a.Network)) == 0 {
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
		case !f.m.IsPublic(k.network):
			parts = append(parts, fmt.Sprintf("%s: %s on %s, where %s has no %s address", addrs, famName(k.fam), k.network, from.Name, famName(k.fam)))
		default:
			parts = append(parts, fmt.Sprintf("%s on %s: %s", addrs, k.network, f.noEgress(from, k.network, k.fam)))
		}
	}
	return strings.Join(parts, "; ")
}

// noEgress explains why n has no egress of family fam to public network nw.
func (f *finder) noEgress(n *inventory.Node, nw string, fam int) string {
	var downGws, noFam, noLocal []string
	for _, a := range n.Addresses {
		if f.m.IsPublic(a.Network) {
			continue
		}
		gw := f.gatewayOf(a)
		if gw == nil || gw == n {
			continue
		}
		if f.down[gw] {
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

// candidates lists the addresses of node n on the given networks (all of its
// addresses when networks is empty).
func candidates(n *inventory.Node, networks []string) []*inventory.Address {
	var out []*inventory.Address
	for _, a := range n.Addresses {
		if len(networks) == 0 || slices.Contains(networks, a.Network) {
			out = append(out, a)
		}
	}
	return out
}

// endpointCandidates lists the addresses an endpoint listens on.
func (f *finder) endpointCandidates(e *inventory.Endpoint) []*inventory.Address {
	n := f.m.Node(e.Node)
	if n == nil {
		return nil
	}
	var out []*inventory.Address
	for _, ap := range f.m.EndpointAddrs(e) {
		for _, a := range n.Addresses {
			if a.Network == e.Network && a.IP == ap.Addr() {
				out = append(out, a)
			}
		}
	}
	return out
}
