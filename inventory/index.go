package inventory

import (
	"slices"
	"strings"
)

// lookups are the model's indexes by node, service and hostname, built
// once at load so that a question about one node or service costs what
// that node or service holds, not a scan of the inventory: plan compiles
// every node, check and topology ask about every use.
type lookups struct {
	servicesOn map[string][]*Service
	sitesOn    map[string][]*Site
	guestsOf   map[string][]*Node
	tunnelsTo  map[string][]*Tunnel  // by service
	forwardsTo map[string][]*Forward // by service
	tunnelsAt  map[string][]*Tunnel  // by node: entrance or exit there
	forwardsOn map[string][]*Forward // by node
	replicasAt map[string][]*Replica // by node: source or target there
	exactHost  map[string][]*Site
	wildHost   map[string][]*Site // ".example.org" for "*.example.org"
}

func (m *Model) buildLookups() {
	x := lookups{
		servicesOn: map[string][]*Service{}, sitesOn: map[string][]*Site{}, guestsOf: map[string][]*Node{},
		tunnelsTo: map[string][]*Tunnel{}, forwardsTo: map[string][]*Forward{},
		tunnelsAt: map[string][]*Tunnel{}, forwardsOn: map[string][]*Forward{},
		replicasAt: map[string][]*Replica{},
		exactHost:  map[string][]*Site{}, wildHost: map[string][]*Site{},
	}
	for _, n := range m.Nodes {
		if n.Host != nil {
			x.guestsOf[n.Host.Name] = append(x.guestsOf[n.Host.Name], n)
		}
	}
	for _, s := range m.Services {
		x.servicesOn[s.Node] = append(x.servicesOn[s.Node], s)
	}
	for _, s := range m.Sites {
		x.sitesOn[s.Node] = append(x.sitesOn[s.Node], s)
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
	for _, t := range m.Tunnels {
		x.tunnelsTo[t.Service] = append(x.tunnelsTo[t.Service], t)
		at := func(node string) {
			if l := x.tunnelsAt[node]; len(l) == 0 || l[len(l)-1] != t {
				x.tunnelsAt[node] = append(l, t)
			}
		}
		if t.Entrance != nil {
			at(t.Entrance.Node)
		}
		for _, ex := range t.Exits {
			at(ex.Node)
		}
	}
	for _, f := range m.Forwards {
		x.forwardsTo[f.Service] = append(x.forwardsTo[f.Service], f)
		x.forwardsOn[f.Node] = append(x.forwardsOn[f.Node], f)
	}
	for _, r := range m.Replicas {
		at := func(e *ReplicaEnd) {
			if e == nil {
				return
			}
			if l := x.replicasAt[e.Node]; len(l) == 0 || l[len(l)-1] != r {
				x.replicasAt[e.Node] = append(l, r)
			}
		}
		at(r.Source)
		at(r.Target)
	}
	m.lookups = x
}

// ServicesOn returns the services running on a node, in inventory order.
func (m *Model) ServicesOn(node string) []*Service { return m.lookups.servicesOn[node] }

// SitesOn returns the sites a node serves, in inventory order.
func (m *Model) SitesOn(node string) []*Site { return m.lookups.sitesOn[node] }

// GuestsOf returns the guests a server hosts, in inventory order.
func (m *Model) GuestsOf(server string) []*Node { return m.lookups.guestsOf[server] }

// TunnelsTo returns the tunnels carrying a service, in inventory order.
func (m *Model) TunnelsTo(service string) []*Tunnel { return m.lookups.tunnelsTo[service] }

// ForwardsTo returns the forwards relaying to a service, in inventory order.
func (m *Model) ForwardsTo(service string) []*Forward { return m.lookups.forwardsTo[service] }

// TunnelsAt returns the tunnels with their entrance or an exit on a node,
// each once, in inventory order.
func (m *Model) TunnelsAt(node string) []*Tunnel { return m.lookups.tunnelsAt[node] }

// ForwardsOn returns the forwards listening on a node, in inventory order.
func (m *Model) ForwardsOn(node string) []*Forward { return m.lookups.forwardsOn[node] }

// ReplicasAt returns the replicas with their source or target on a node,
// each once, in inventory order.
func (m *Model) ReplicasAt(node string) []*Replica { return m.lookups.replicasAt[node] }

// SiteForHost returns the sites answering hostname: those naming it
// exactly, else those with the longest leading wildcard matching it
// ("*.openfoodfacts.org" for "world.openfoodfacts.org"), in inventory order.
func (m *Model) SiteForHost(hostname string) []*Site {
	hostname = strings.ToLower(strings.TrimSuffix(hostname, "."))
	if s := m.lookups.exactHost[hostname]; len(s) > 0 {
		return s
	}
	for i := 1; i < len(hostname); i++ {
		if hostname[i] == '.' {
			if s := m.lookups.wildHost[hostname[i:]]; len(s) > 0 {
				return s
			}
		}
	}
	return nil
}
