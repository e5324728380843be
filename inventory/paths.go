package inventory

import (
	"fmt"
	"strings"
)

// Hop is one leg of a connection: From connects to To at Target, as part of
// Kind ("tcp", "tunnel", "forward", "http").
type Hop struct {
	From   *Node
	To     *Node
	Kind   string
	Via    string // tunnel, forward or site name; "" for a direct connection
	Target Target
}

// String renders "ovh-stunnel-client -> off2 203.0.113.8:27017 on internet [tunnel mongodb-ovh, TLS]".
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

// Path is a way a node reaches a service, hop by hop. When Blocked is set,
// the path exists on the network but an access list refuses it.
type Path struct {
	Hops    []Hop
	Blocked string
}

// String renders the hops, one per line.
func (p Path) String() string {
	var b strings.Builder
	for i, h := range p.Hops {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, h)
	}
	if p.Blocked != "" {
		fmt.Fprintf(&b, "  blocked: %s\n", p.Blocked)
	}
	return b.String()
}

// admitted reports whether allow admits node n reaching a listener on
// target's network (loopback connections from the same node are admitted).
func (m *Model) admitted(allow []string, t Target, n *Node) bool {
	if t.Loopback {
		return true
	}
	return m.Admits(allow, t.Network, n)
}

// PathsToService returns every way from reaches s: directly, through a
// tunnel whose entrance it can reach, or through a forward. Paths refused by
// an allow list are returned with Blocked set, so `offedge why` can say
// which rule blocks them.
func (m *Model) PathsToService(from *Node, s *Service) []Path {
	var out []Path
	to := m.nodes[s.Node]
	if to == nil {
		return nil
	}
	if t, ok := m.ReachService(from, s); ok {
		p := Path{Hops: []Hop{{From: from, To: to, Kind: "tcp", Target: t}}}
		if !m.admitted(s.Allow, t, from) {
			p.Blocked = fmt.Sprintf("service %q allows %s; %s (%s) is not admitted", s.Name, allowText(s.Allow), from.Name, t.Source)
		}
		out = append(out, p)
	}
	for _, tn := range m.Tunnels {
		if tn.Service != s.Name || tn.Entrance == nil {
			continue
		}
		ent := m.nodes[tn.Entrance.Node]
		if ent == nil {
			continue
		}
		t1, ok := m.ReachEndpoint(from, tn.Entrance)
		if !ok {
			continue
		}
		p := Path{Hops: []Hop{{From: from, To: ent, Kind: "entrance", Via: tn.Name, Target: t1}}}
		if !m.admitted(tn.Allow, t1, from) {
			p.Blocked = fmt.Sprintf("tunnel %q entrance allows %s; %s is not admitted", tn.Name, allowText(tn.Allow), from.Name)
			out = append(out, p)
			continue
		}
		for _, ex := range tn.Exits {
			exNode := m.nodes[ex.Node]
			t2, ok := m.ReachEndpoint(ent, ex)
			if !ok || exNode == nil {
				continue
			}
			t3, ok := m.ReachService(exNode, s)
			if !ok {
				continue
			}
			q := Path{Hops: append(append([]Hop(nil), p.Hops...),
				Hop{From: ent, To: exNode, Kind: "tunnel", Via: tn.Name, Target: t2},
				Hop{From: exNode, To: to, Kind: "tcp", Target: t3})}
			if !m.admitted(s.Allow, t3, exNode) {
				q.Blocked = fmt.Sprintf("service %q allows %s; the tunnel exit %s is not admitted", s.Name, allowText(s.Allow), exNode.Name)
			}
			out = append(out, q)
		}
	}
	for _, f := range m.Forwards {
		if f.Service != s.Name || f.Listen == nil {
			continue
		}
		fn := m.nodes[f.Node]
		t1, ok := m.ReachEndpoint(from, f.Listen)
		if !ok || fn == nil {
			continue
		}
		t2, ok := m.ReachService(fn, s)
		if !ok {
			continue
		}
		p := Path{Hops: []Hop{{From: from, To: fn, Kind: "forward", Via: f.Name, Target: t1}, {From: fn, To: to, Kind: "tcp", Target: t2}}}
		switch {
		case !m.admitted(f.Allow, t1, from):
			p.Blocked = fmt.Sprintf("forward %q allows %s; %s (%s) is not admitted", f.Name, allowText(f.Allow), from.Name, t1.Source)
		case !m.admitted(s.Allow, t2, fn):
			p.Blocked = fmt.Sprintf("service %q allows %s; the forward's node %s is not admitted", s.Name, allowText(s.Allow), fn.Name)
		}
		out = append(out, p)
	}
	return out
}

func allowText(allow []string) string {
	if len(allow) == 0 {
		return "nobody"
	}
	return "[" + strings.Join(allow, ", ") + "]"
}

// SiteForHost returns the sites whose hosts match hostname (exact first,
// then the longest wildcard), in inventory order within each rank.
func (m *Model) SiteForHost(hostname string) []*Site {
	hostname = strings.ToLower(strings.TrimSuffix(hostname, "."))
	var exact, wild []*Site
	bestWild := 0
	for _, s := range m.Sites {
		for _, h := range s.Hosts {
			switch {
			case h == hostname:
				exact = append(exact, s)
			case strings.HasPrefix(h, "*.") && strings.HasSuffix(hostname, h[1:]) && len(hostname) > len(h)-1:
				if len(h) > bestWild {
					bestWild, wild = len(h), nil
				}
				if len(h) == bestWild {
					wild = append(wild, s)
				}
			}
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return wild
}

// UpstreamServerTarget resolves where a pool member lives: the node and port
// it dials, and the service behind it (nil for a node:port member). For a
// tunnel member the node is the tunnel's entrance.
func (m *Model) UpstreamServerTarget(us *UpstreamServer) (node *Node, port int, svc *Service, ep *Endpoint) {
	switch {
	case us.Service != "":
		svc = m.services[us.Service]
		if svc == nil {
			return nil, 0, nil, nil
		}
		return m.nodes[svc.Node], svc.Port, svc, nil
	case us.Tunnel != "":
		t := m.tunnels[us.Tunnel]
		if t == nil || t.Entrance == nil {
			return nil, 0, nil, nil
		}
		return m.nodes[t.Entrance.Node], t.Entrance.Port, m.services[t.Service], t.Entrance
	default:
		return m.nodes[us.Node], us.Port, nil, nil
	}
}

// ReachUpstreamServer returns how the node running a site reaches one pool
// member.
func (m *Model) ReachUpstreamServer(from *Node, us *UpstreamServer) (Target, bool) {
	node, port, svc, ep := m.UpstreamServerTarget(us)
	if node == nil {
		return Target{}, false
	}
	switch {
	case ep != nil:
		return m.ReachEndpoint(from, ep)
	case svc != nil:
		if us.Network != "" {
			return m.Reach(from, node, port, []string{us.Network}, false)
		}
		return m.ReachService(from, svc)
	default:
		var nets []string
		if us.Network != "" {
			nets = []string{us.Network}
		}
		return m.Reach(from, node, port, nets, true)
	}
}
