package inventory

import (
	"fmt"
	"net/netip"
	"strings"
)

// AllowEntry is one parsed entry of an allow list.
type AllowEntry struct {
	// Kind is "any", "node", "provider", "cluster", "network", "policy" or "cidr".
	Kind   string
	Name   string
	Prefix netip.Prefix
}

// ParseAllow parses an allow-list entry: any, NODE, provider:NAME,
// cluster:NAME, network:NAME, policy:NAME, or a CIDR (a bare IP is a /32 or
// /128).
func ParseAllow(s string) (AllowEntry, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return AllowEntry{}, fmt.Errorf("empty entry")
	}
	if s == "any" {
		return AllowEntry{Kind: "any"}, nil
	}
	if kind, name, ok := strings.Cut(s, ":"); ok && !strings.Contains(name, ":") && kind != "" && !strings.ContainsAny(kind, "./") {
		switch kind {
		case "provider", "cluster", "network", "policy":
			if !nameRE.MatchString(name) {
				return AllowEntry{}, fmt.Errorf("invalid %s name %q", kind, name)
			}
			return AllowEntry{Kind: kind, Name: name}, nil
		default:
			return AllowEntry{}, fmt.Errorf("unknown kind %q", kind)
		}
	}
	if strings.ContainsAny(s, "/:") || (len(s) > 0 && s[0] >= '0' && s[0] <= '9' && strings.Count(s, ".") == 3) {
		if p, err := netip.ParsePrefix(s); err == nil {
			if p != p.Masked() {
				return AllowEntry{}, fmt.Errorf("prefix %s has host bits set (did you mean %s?)", p, p.Masked())
			}
			return AllowEntry{Kind: "cidr", Prefix: p}, nil
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			return AllowEntry{Kind: "cidr", Prefix: netip.PrefixFrom(a, a.BitLen())}, nil
		}
		return AllowEntry{}, fmt.Errorf("invalid address or prefix")
	}
	if !nameRE.MatchString(s) {
		return AllowEntry{}, fmt.Errorf("invalid node name")
	}
	return AllowEntry{Kind: "node", Name: s}, nil
}

// Source is an address prefix an allow list admits, and the entry it came from.
type Source struct {
	Prefix netip.Prefix
	From   string
}

// AllowResult is an allow list resolved for listeners on one network.
type AllowResult struct {
	// Any is true when the list admits everyone.
	Any     bool
	Sources []Source
	// Unknown lists entries naming nothing in the inventory.
	Unknown []string
}

// ResolveAllow turns allow entries into the source prefixes a listener on
// network sees. A node admitted by name is admitted by the address it
// presents on that network: its own address there, or — for a public
// network it reaches through its private network's gateway — the gateway's
// public address (what NAT makes the listener see).
func (m *Model) ResolveAllow(entries []string, network string) AllowResult {
	var res AllowResult
	seen := map[netip.Prefix]bool{}
	add := func(p netip.Prefix, from string) {
		if !seen[p] {
			seen[p] = true
			res.Sources = append(res.Sources, Source{Prefix: p, From: from})
		}
	}
	addNode := func(n *Node, from string) {
		for _, fam := range []int{4, 6} {
			if src, _, ok := m.SourceFor(n, network, fam); ok {
				add(netip.PrefixFrom(src, src.BitLen()), from)
			}
		}
	}
	var walk func(entries []string, stack []string)
	walk = func(entries []string, stack []string) {
		for _, raw := range entries {
			e, err := ParseAllow(raw)
			if err != nil {
				res.Unknown = append(res.Unknown, raw)
				continue
			}
			switch e.Kind {
			case "any":
				res.Any = true
			case "cidr":
				add(e.Prefix, e.Prefix.String())
			case "node":
				n := m.nodes[e.Name]
				if n == nil {
					res.Unknown = append(res.Unknown, raw)
					continue
				}
				addNode(n, e.Name)
			case "provider", "cluster", "network":
				var members []*Node
				found := false
				switch e.Kind {
				case "provider":
					found, members = m.providers[e.Name] != nil, m.byProvider[e.Name]
				case "cluster":
					members = m.byCluster[e.Name]
				case "network":
					found, members = m.networks[e.Name] != nil, m.onNetwork[e.Name]
				}
				for _, n := range members {
					found = true
					addNode(n, raw)
				}
				if !found {
					res.Unknown = append(res.Unknown, raw)
				}
			case "policy":
				p := m.policies[e.Name]
				if p == nil {
					res.Unknown = append(res.Unknown, raw)
					continue
				}
				cyclic := false
				for _, s := range stack {
					cyclic = cyclic || s == e.Name
				}
				if cyclic {
					res.Unknown = append(res.Unknown, raw+" (cycle)")
					continue
				}
				walk(p.Allow, append(stack, e.Name))
			}
		}
	}
	walk(entries, nil)
	return res
}

// Admits reports whether the allow list, resolved for network, admits node n
// (by the address it presents there).
func (m *Model) Admits(entries []string, network string, n *Node) bool {
	res := m.ResolveAllow(entries, network)
	if res.Any {
		return true
	}
	for _, fam := range []int{4, 6} {
		src, _, ok := m.SourceFor(n, network, fam)
		if !ok {
			continue
		}
		for _, s := range res.Sources {
			if s.Prefix.Contains(src) {
				return true
			}
		}
	}
	return false
}
