package reach

import (
	"net/netip"
	"sync"

	"github.com/offedge/offedge/inventory"
)

// Engine answers reachability questions about one model, with some nodes
// possibly down. Build it once with [New]; it is safe for concurrent use.
type Engine struct {
	m    *inventory.Model
	ix   *index
	down map[*inventory.Node]bool
	live inventory.Live
	// allow is shared by every engine derived with Without: allow lists
	// resolve the same whoever is down.
	allow *allowCache
}

// New builds the engine for m: the indexes every search needs, once.
func New(m *inventory.Model) *Engine {
	e := &Engine{m: m, ix: newIndex(m), allow: &allowCache{sets: map[allowKey]*allowSet{}}}
	e.live = m.Live(nil)
	return e
}

// Without returns the engine on the model where the given nodes are down
// (a down node is never an end, a hop or a NAT gateway). Taking a server
// down does not take its guests down: pass them too ([Engine.GuestsOf]).
func (e *Engine) Without(down map[*inventory.Node]bool) *Engine {
	d := &Engine{m: e.m, ix: e.ix, down: down, allow: e.allow}
	d.live = e.m.Live(func(n *inventory.Node) bool { return down[n] })
	return d
}

// Model returns the model the engine answers about.
func (e *Engine) Model() *inventory.Model { return e.m }

// IsDown reports whether n is down (or nil).
func (e *Engine) IsDown(n *inventory.Node) bool { return n == nil || e.down[n] }

// Live returns the model's addressing on the live part of the model.
func (e *Engine) Live() inventory.Live { return e.live }

// index holds what the model's own lookups do not.
type index struct {
	publicNets []string
}

func newIndex(m *inventory.Model) *index {
	x := &index{}
	for _, nw := range m.Networks {
		if nw.Kind == "public" {
			x.publicNets = append(x.publicNets, nw.Name)
		}
	}
	return x
}

// ServicesOn returns the services running on a node, in inventory order.
func (e *Engine) ServicesOn(node string) []*inventory.Service { return e.m.ServicesOn(node) }

// SitesOn returns the sites a node serves, in inventory order.
func (e *Engine) SitesOn(node string) []*inventory.Site { return e.m.SitesOn(node) }

// GuestsOf returns the guests a server hosts, in inventory order.
func (e *Engine) GuestsOf(server string) []*inventory.Node { return e.m.GuestsOf(server) }

// PublicNetworks returns the names of the public networks, in inventory order.
func (e *Engine) PublicNetworks() []string { return e.ix.publicNets }

// SitesForHost returns the sites answering hostname
// ([inventory.Model.SiteForHost]).
func (e *Engine) SitesForHost(hostname string) []*inventory.Site { return e.m.SiteForHost(hostname) }

// allowKey identifies one allow entry resolved for one network.
type allowKey struct {
	entry   string
	network string
}

// allowSet is one allow entry resolved for one network, ready for lookups.
type allowSet struct {
	any      bool
	exact    map[netip.Addr]bool
	prefixes []netip.Prefix
	sources  []inventory.Source
}

type allowCache struct {
	mu   sync.Mutex
	sets map[allowKey]*allowSet
}

// allowFor resolves one entry for a network, once: lists differ from object
// to object ("policy:ovh-servers, docker-prod") but their entries repeat, and
// an entry such as provider:NAME costs a scan of every node.
func (e *Engine) allowFor(entry, network string) *allowSet {
	c := e.allow
	k := allowKey{entry, network}
	c.mu.Lock()
	a, ok := c.sets[k]
	c.mu.Unlock()
	if ok {
		return a
	}
	res := e.m.ResolveAllow([]string{entry}, network)
	a = &allowSet{any: res.Any, exact: map[netip.Addr]bool{}, sources: res.Sources}
	for _, s := range res.Sources {
		if s.Prefix.IsSingleIP() {
			a.exact[s.Prefix.Addr()] = true
		} else {
			a.prefixes = append(a.prefixes, s.Prefix)
		}
	}
	c.mu.Lock()
	c.sets[k] = a
	c.mu.Unlock()
	return a
}

// AdmitsAddr reports whether an allow list, resolved for network, admits a
// connection from src.
func (e *Engine) AdmitsAddr(entries []string, network string, src netip.Addr) bool {
	for _, entry := range entries {
		a := e.allowFor(entry, network)
		if a.any || a.exact[src] {
			return true
		}
		for _, p := range a.prefixes {
			if p.Contains(src) {
				return true
			}
		}
	}
	return false
}

// Admits reports whether an allow list lets a connection arriving as t in.
// The listener sees t.Source; loopback connections from the node itself are
// always admitted. An empty list admits nobody, as for services, tunnels and
// forwards (sites pass emptyMeansAnyone for their "empty means anyone" rule).
func (e *Engine) Admits(entries []string, t inventory.Target, emptyMeansAnyone bool) bool {
	if t.Loopback || (emptyMeansAnyone && len(entries) == 0) {
		return true
	}
	return e.AdmitsAddr(entries, t.Network, t.Source)
}

// AdmitsNode reports whether an allow list, resolved for network, admits
// node n by an address it presents there (either family):
// [inventory.Model.Admits], with the resolution cached.
func (e *Engine) AdmitsNode(entries []string, network string, n *inventory.Node) bool {
	for _, entry := range entries {
		if e.allowFor(entry, network).any {
			return true
		}
	}
	for _, fam := range []int{4, 6} {
		if src, _, ok := e.live.SourceFor(n, network, fam); ok && e.AdmitsAddr(entries, network, src) {
			return true
		}
	}
	return false
}

// AddressSet is an allow list resolved for listeners on one network: the
// source prefixes it admits, each with the entry it came from.
type AddressSet struct {
	// Any is true when the list admits every source.
	Any     bool
	Sources []inventory.Source
}

// Sources returns an allow list as the address set a listener on network
// admits: what the firewall enforces for services offedge does not proxy.
// Prefixes repeated by several entries are listed once, for the first.
func (e *Engine) Sources(entries []string, network string) AddressSet {
	var out AddressSet
	seen := map[netip.Prefix]bool{}
	for _, entry := range entries {
		a := e.allowFor(entry, network)
		out.Any = out.Any || a.any
		for _, s := range a.sources {
			if !seen[s.Prefix] {
				seen[s.Prefix] = true
				out.Sources = append(out.Sources, s)
			}
		}
	}
	return out
}
