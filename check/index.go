package check

import (
	"fmt"
	"strings"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/reach"
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
	// reach answers every path and allow-list question, with its own
	// indexes and allow lists resolved once per entry and network.
	reach *reach.Engine
}

func newIndex(m *inventory.Model) *index {
	ix := &index{
		clusters:       map[string]bool{},
		providersInUse: map[string]bool{},
		networksInUse:  map[string]bool{},
		reach:          reach.New(m),
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
