package check

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// index is what several rules need from the model, computed once per Run so
// that no rule walks every node for every service.
type index struct {
	clusters map[string]bool
	// providersInUse are provider names some node belongs to, and
	// networksInUse network names some node has an address on: an allow
	// entry naming one of them resolves even when the provider or network
	// itself is not declared (as inventory.ResolveAllow accepts them).
	providersInUse map[string]bool
	networksInUse  map[string]bool
	// cyclicPolicies are the policies that include themselves, directly or
	// through other policies.
	cyclicPolicies map[string]bool
	// sitesByNode lists each node's sites in inventory order.
	sitesByNode map[string][]*inventory.Site
	// tunnelsFor and forwardsFor list the tunnels (with an entrance) and
	// forwards (with a listener) leading to each service.
	tunnelsFor  map[string][]*inventory.Tunnel
	forwardsFor map[string][]*inventory.Forward
	// allows caches allow lists resolved per network (see resolve).
	allows map[allowKey]*resolvedAllow
}

func newIndex(m *inventory.Model) *index {
	ix := &index{
		clusters:       map[string]bool{},
		providersInUse: map[string]bool{},
		networksInUse:  map[string]bool{},
		sitesByNode:    map[string][]*inventory.Site{},
		tunnelsFor:     map[string][]*inventory.Tunnel{},
		forwardsFor:    map[string][]*inventory.Forward{},
		allows:         map[allowKey]*resolvedAllow{},
	}
	for _, t := range m.Tunnels {
		if t.Entrance != nil {
			ix.tunnelsFor[t.Service] = append(ix.tunnelsFor[t.Service], t)
		}
	}
	for _, f := range m.Forwards {
		if f.Listen != nil {
			ix.forwardsFor[f.Service] = append(ix.forwardsFor[f.Service], f)
		}
	}
	for _, n := range m.Nodes {
		if n.Cluster != "" {
			ix.clusters[n.Cluster] = true
		}
		if n.Provider != "" {
			ix.providersInUse[n.Provider] = true
		}
		for _, a := range n.Addresses {
			ix.networksInUse[a.Network] = true
		}
	}
	for _, s := range m.Sites {
		ix.sitesByNode[s.Node] = append(ix.sitesByNode[s.Node], s)
	}
	ix.cyclicPolicies = cyclicPolicies(m)
	return ix
}

// cyclicPolicies returns the policies that reach themselves through
// policy:NAME entries.
func cyclicPolicies(m *inventory.Model) map[string]bool {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	cyclic := map[string]bool{}
	var visit func(name string, stack []string)
	visit = func(name string, stack []string) {
		p := m.Policy(name)
		if p == nil {
			return
		}
		switch state[name] {
		case active:
			// Everything on the stack from name onwards is in the cycle.
			for i := len(stack) - 1; i >= 0; i-- {
				cyclic[stack[i]] = true
				if stack[i] == name {
					break
				}
			}
			return
		case done:
			return
		}
		state[name] = active
		stack = append(stack, name)
		for _, raw := range p.Allow {
			if e, err := inventory.ParseAllow(raw); err == nil && e.Kind == "policy" {
				visit(e.Name, stack)
			}
		}
		state[name] = done
	}
	for _, p := range m.Policies {
		visit(p.Name, nil)
	}
	return cyclic
}

// unknownAllow returns the entries of an allow list that name nothing in
// the inventory, as inventory.ResolveAllow reports them in Unknown (a
// policy taking part in a cycle is reported as "policy:NAME (cycle)"), but
// without resolving the list: map lookups only. Entries of included
// policies are not repeated here; each policy is checked on its own.
func (ix *index) unknownAllow(m *inventory.Model, entries []string) []string {
	var out []string
	for _, raw := range entries {
		e, err := inventory.ParseAllow(raw)
		if err != nil {
			out = append(out, raw)
			continue
		}
		switch e.Kind {
		case "node":
			if m.Node(e.Name) == nil {
				out = append(out, raw)
			}
		case "provider":
			if m.Provider(e.Name) == nil && !ix.providersInUse[e.Name] {
				out = append(out, raw)
			}
		case "cluster":
			if !ix.clusters[e.Name] {
				out = append(out, raw)
			}
		case "network":
			if m.Network(e.Name) == nil && !ix.networksInUse[e.Name] {
				out = append(out, raw)
			}
		case "policy":
			if m.Policy(e.Name) == nil {
				out = append(out, raw)
			} else if ix.cyclicPolicies[e.Name] {
				out = append(out, raw+" (cycle)")
			}
		}
	}
	return out
}

// nodeObject names a node as load errors do: `server "off1"`, `guest "ovh-proxy"`.
func nodeObject(n *inventory.Node) string {
	if n.Server != nil {
		return fmt.Sprintf("server %q", n.Name)
	}
	return fmt.Sprintf("guest %q", n.Name)
}

func object(kind, name string) string { return fmt.Sprintf("%s %q", kind, name) }

// listText renders an allow list as the inventory writes it.
func listText(entries []string) string { return "[" + strings.Join(entries, ", ") + "]" }

// family returns 4 or 6.
func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// endpointText renders where an endpoint listens: "10.1.0.113:27017 on
// ovh-lan", "127.0.0.1:16000 (loopback)".
func endpointText(m *inventory.Model, e *inventory.Endpoint) string {
	addrs := m.EndpointAddrs(e)
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.String()
	}
	if e.Loopback {
		return strings.Join(parts, ", ") + " (loopback)"
	}
	if len(parts) == 0 {
		return fmt.Sprintf("port %d on %s", e.Port, e.Network)
	}
	return strings.Join(parts, ", ") + " on " + e.Network
}

// allowKey identifies an allow list (by its entries) resolved for one
// network: the many services allowing [policy:ovh-servers] share one
// resolution.
type allowKey struct {
	entries string
	network string
}

// resolvedAllow is an allow list resolved for one network, with single
// addresses in a set so that admission is a map lookup.
type resolvedAllow struct {
	any      bool
	hosts    map[netip.Addr]bool
	prefixes []netip.Prefix
}

// resolve returns allow resolved for network, computing it once per list
// and network: inventory.ResolveAllow walks every node for provider:,
// cluster: and network: entries, which must not happen once per client.
func (ix *index) resolve(m *inventory.Model, allow []string, network string) *resolvedAllow {
	k := allowKey{strings.Join(allow, "\x00"), network}
	if r, ok := ix.allows[k]; ok {
		return r
	}
	res := m.ResolveAllow(allow, network)
	r := &resolvedAllow{any: res.Any, hosts: map[netip.Addr]bool{}}
	for _, s := range res.Sources {
		if s.Prefix.IsSingleIP() {
			r.hosts[s.Prefix.Addr()] = true
		} else {
			r.prefixes = append(r.prefixes, s.Prefix)
		}
	}
	ix.allows[k] = r
	return r
}

// admits is inventory.Model.Admits with the resolution cached.
func (ix *index) admits(m *inventory.Model, allow []string, network string, n *inventory.Node) bool {
	r := ix.resolve(m, allow, network)
	if r.any {
		return true
	}
	for _, fam := range []int{4, 6} {
		src, _, ok := m.SourceFor(n, network, fam)
		if !ok {
			continue
		}
		if r.hosts[src] {
			return true
		}
		for _, p := range r.prefixes {
			if p.Contains(src) {
				return true
			}
		}
	}
	return false
}

// admitted reports whether allow admits n reaching a listener at t; a
// loopback connection stays on the node and is always admitted.
func (ix *index) admitted(m *inventory.Model, allow []string, t inventory.Target, n *inventory.Node) bool {
	return t.Loopback || ix.admits(m, allow, t.Network, n)
}

// usable reports whether n has at least one unblocked path to s: the
// question inventory.Model.PathsToService answers, without building every
// path and with allow lists resolved once. Rules call PathsToService only
// when this says no, to explain why.
func (ix *index) usable(m *inventory.Model, n *inventory.Node, s *inventory.Service) bool {
	if t, ok := m.ReachService(n, s); ok && ix.admitted(m, s.Allow, t, n) {
		return true
	}
	for _, tn := range ix.tunnelsFor[s.Name] {
		ent := m.Node(tn.Entrance.Node)
		t1, ok := m.ReachEndpoint(n, tn.Entrance)
		if ent == nil || !ok || !ix.admitted(m, tn.Allow, t1, n) {
			continue
		}
		for _, ex := range tn.Exits {
			exNode := m.Node(ex.Node)
			if exNode == nil {
				continue
			}
			if _, ok := m.ReachEndpoint(ent, ex); !ok {
				continue
			}
			if t3, ok := m.ReachService(exNode, s); ok && ix.admitted(m, s.Allow, t3, exNode) {
				return true
			}
		}
	}
	for _, f := range ix.forwardsFor[s.Name] {
		fn := m.Node(f.Node)
		if fn == nil {
			continue
		}
		t1, ok := m.ReachEndpoint(n, f.Listen)
		if !ok || !ix.admitted(m, f.Allow, t1, n) {
			continue
		}
		if t2, ok := m.ReachService(fn, s); ok && ix.admitted(m, s.Allow, t2, fn) {
			return true
		}
	}
	return false
}
