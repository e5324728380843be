package inventory

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
