package reach

import (
	"fmt"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// ServicePaths returns every way from reaches s: directly, through each
// tunnel to s whose entrance from reaches, through each forward to s. Paths
// refused by an allow list are included with Blocked set. notes explains the
// ways that do not exist (no route on the network).
func (e *Engine) ServicePaths(from *inventory.Node, s *inventory.Service) (paths []Path, notes []string) {
	to := e.m.Node(s.Node)
	if e.IsDown(from) || e.IsDown(to) {
		if to == nil {
			return nil, []string{fmt.Sprintf("service %s names no known node", s.Name)}
		}
		return nil, []string{e.WhyNot(from, to, nil)}
	}
	if t, ok := e.live.ReachService(from, s); ok {
		p := Path{Title: "direct", Hops: []Hop{{From: from, To: to, Kind: "tcp", Target: t}}}
		if !e.Admits(s.Allow, t, false) {
			p.Blocked = e.Refused(BlockService, s.Name, s.Pos, s.Allow, from, t)
		}
		paths = append(paths, p)
	} else {
		switch {
		case s.Loopback:
			notes = append(notes, fmt.Sprintf("direct: %s listens on loopback only, on %s", s.Name, to.Name))
		default:
			where := "every network of " + to.Name
			if len(s.Bind) > 0 {
				where = strings.Join(s.Bind, ", ")
			}
			notes = append(notes, fmt.Sprintf("direct: %s listens on %s; %s", s.Name, where, e.WhyNot(from, to, Candidates(to, s.Bind))))
		}
	}
	for _, tn := range e.m.TunnelsTo(s.Name) {
		ps, ns := e.tunnelPaths(from, tn, s)
		paths = append(paths, ps...)
		notes = append(notes, ns...)
	}
	for _, fw := range e.m.ForwardsTo(s.Name) {
		ps, ns := e.forwardPaths(from, fw, s)
		paths = append(paths, ps...)
		notes = append(notes, ns...)
	}
	if len(e.m.TunnelsTo(s.Name)) == 0 && len(e.m.ForwardsTo(s.Name)) == 0 {
		notes = append(notes, fmt.Sprintf("no tunnel or forward leads to %s", s.Name))
	}
	return paths, notes
}

// tunnelPaths returns the ways from reaches s through tunnel tn: entrance,
// then each exit, then the service.
func (e *Engine) tunnelPaths(from *inventory.Node, tn *inventory.Tunnel, s *inventory.Service) (paths []Path, notes []string) {
	title := "via tunnel " + tn.Name
	if tn.Entrance == nil || s == nil {
		return nil, nil
	}
	ent := e.m.Node(tn.Entrance.Node)
	if ent == nil {
		return nil, nil
	}
	if e.down[ent] {
		return nil, []string{fmt.Sprintf("%s: its entrance %s is down", title, ent.Name)}
	}
	t1, ok := e.live.ReachEndpoint(from, tn.Entrance)
	if !ok {
		why := fmt.Sprintf("the entrance listens on loopback of %s only", ent.Name)
		if !tn.Entrance.Loopback {
			why = e.WhyNot(from, ent, e.EndpointCandidates(tn.Entrance))
		}
		return nil, []string{fmt.Sprintf("%s: %s cannot reach its entrance on %s: %s", title, from.Name, ent.Name, why)}
	}
	first := Hop{From: from, To: ent, Kind: "entrance", Via: tn.Name, Target: t1}
	if !e.Admits(tn.Allow, t1, false) {
		return []Path{{Title: title, Hops: []Hop{first}, Blocked: e.Refused(BlockTunnel, tn.Name, tn.Pos, tn.Allow, from, t1)}}, nil
	}
	to := e.m.Node(s.Node)
	for _, ex := range tn.Exits {
		exNode := e.m.Node(ex.Node)
		if exNode == nil {
			continue
		}
		if e.down[exNode] {
			notes = append(notes, fmt.Sprintf("%s: its exit %s is down", title, exNode.Name))
			continue
		}
		t2, ok := e.live.ReachEndpoint(ent, ex)
		if !ok {
			notes = append(notes, fmt.Sprintf("%s: the entrance %s cannot reach the exit %s: %s", title, ent.Name, exNode.Name, e.WhyNot(ent, exNode, e.EndpointCandidates(ex))))
			continue
		}
		t3, ok := e.live.ReachService(exNode, s)
		if !ok {
			notes = append(notes, fmt.Sprintf("%s: the exit %s cannot reach %s: %s", title, exNode.Name, s.Name, e.WhyNot(exNode, to, Candidates(to, s.Bind))))
			continue
		}
		p := Path{Title: title, Hops: []Hop{first,
			{From: ent, To: exNode, Kind: "tunnel", Via: tn.Name, Target: t2},
			{From: exNode, To: to, Kind: "tcp", Target: t3}}}
		if !e.Admits(s.Allow, t3, false) {
			p.Blocked = e.Refused(BlockService, s.Name, s.Pos, s.Allow, exNode, t3)
		}
		paths = append(paths, p)
	}
	return paths, notes
}

// forwardPaths returns the way from reaches s through forward fw.
func (e *Engine) forwardPaths(from *inventory.Node, fw *inventory.Forward, s *inventory.Service) ([]Path, []string) {
	title := "via forward " + fw.Name
	fn := e.m.Node(fw.Node)
	if fn == nil || fw.Listen == nil {
		return nil, nil
	}
	if e.down[fn] {
		return nil, []string{fmt.Sprintf("%s: its node %s is down", title, fn.Name)}
	}
	t1, ok := e.live.ReachEndpoint(from, fw.Listen)
	if !ok {
		return nil, []string{fmt.Sprintf("%s: %s cannot reach it on %s: %s", title, from.Name, fn.Name, e.WhyNot(from, fn, e.EndpointCandidates(fw.Listen)))}
	}
	to := e.m.Node(s.Node)
	t2, ok := e.live.ReachService(fn, s)
	if !ok {
		return nil, []string{fmt.Sprintf("%s: %s cannot reach %s: %s", title, fn.Name, s.Name, e.WhyNot(fn, to, Candidates(to, s.Bind)))}
	}
	p := Path{Title: title, Hops: []Hop{
		{From: from, To: fn, Kind: "forward", Via: fw.Name, Target: t1},
		{From: fn, To: to, Kind: "tcp", Target: t2}}}
	switch {
	case !e.Admits(fw.Allow, t1, false):
		p.Blocked = e.Refused(BlockForward, fw.Name, fw.Pos, fw.Allow, from, t1)
	case !e.Admits(s.Allow, t2, false):
		p.Blocked = e.Refused(BlockService, s.Name, s.Pos, s.Allow, fn, t2)
	}
	return []Path{p}, nil
}

// MemberPaths returns how a site's node reaches one upstream pool member: a
// service directly, a tunnel through its entrance, or a node's port.
func (e *Engine) MemberPaths(from *inventory.Node, us *inventory.UpstreamServer) ([]Path, []string) {
	switch {
	case us.Service != "":
		s := e.m.Service(us.Service)
		if s == nil {
			return nil, []string{fmt.Sprintf("service %q is not defined", us.Service)}
		}
		to := e.m.Node(s.Node)
		if e.IsDown(to) {
			return nil, []string{e.WhyNot(from, to, nil)}
		}
		var t inventory.Target
		var ok bool
		if us.Network != "" {
			t, ok = e.live.Reach(from, to, s.Port, []string{us.Network}, false)
		} else {
			t, ok = e.live.ReachService(from, s)
		}
		title := "service " + s.Name
		if !ok {
			nets := s.Bind
			if us.Network != "" {
				nets = []string{us.Network}
			}
			return nil, []string{fmt.Sprintf("%s: %s", title, e.WhyNot(from, to, Candidates(to, nets)))}
		}
		p := Path{Title: title, Hops: []Hop{{From: from, To: to, Kind: "tcp", Target: t}}}
		if !e.Admits(s.Allow, t, false) {
			p.Blocked = e.Refused(BlockService, s.Name, s.Pos, s.Allow, from, t)
		}
		return []Path{p}, nil
	case us.Tunnel != "":
		tn := e.m.Tunnel(us.Tunnel)
		if tn == nil {
			return nil, []string{fmt.Sprintf("tunnel %q is not defined", us.Tunnel)}
		}
		return e.tunnelPaths(from, tn, e.m.Service(tn.Service))
	default:
		to := e.m.Node(us.Node)
		if e.IsDown(to) {
			if to == nil {
				return nil, []string{fmt.Sprintf("node %q is not defined", us.Node)}
			}
			return nil, []string{e.WhyNot(from, to, nil)}
		}
		var nets []string
		if us.Network != "" {
			nets = []string{us.Network}
		}
		title := fmt.Sprintf("%s:%d", to.Name, us.Port)
		t, ok := e.live.Reach(from, to, us.Port, nets, true)
		if !ok {
			return nil, []string{fmt.Sprintf("%s: %s", title, e.WhyNot(from, to, Candidates(to, nets)))}
		}
		h := Hop{From: from, To: to, Kind: "tcp", Target: t}
		// A site on that node listening on that port is what answers.
		for _, st := range e.m.SitesOn(to.Name) {
			for _, l := range st.Listen {
				if l.Port == us.Port {
					h.Kind, h.Via = "http", st.Name
				}
			}
		}
		p := Path{Title: title, Hops: []Hop{h}}
		if h.Kind == "http" {
			if st := e.m.Site(h.Via); st != nil && !e.Admits(st.Allow, t, true) {
				p.Blocked = e.Refused(BlockSite, st.Name, st.Pos, st.Allow, from, t)
			}
		}
		return []Path{p}, nil
	}
}

// siteEntry returns how from reaches one of the site's listeners: TLS
// listeners first, then plain ones, redirect-only listeners last.
func (e *Engine) siteEntry(from *inventory.Node, s *inventory.Site) (inventory.Target, *inventory.Listen, string) {
	node := e.m.Node(s.Node)
	if e.IsDown(node) {
		if node == nil {
			return inventory.Target{}, nil, fmt.Sprintf("site %s names no known node", s.Name)
		}
		return inventory.Target{}, nil, e.WhyNot(from, node, nil)
	}
	var reasons []string
	for _, pass := range []int{0, 1, 2} {
		for _, l := range s.Listen {
			rank := 1
			if l.TLS {
				rank = 0
			} else if l.RedirectHTTPS {
				rank = 2
			}
			if rank != pass {
				continue
			}
			ep := &inventory.Endpoint{Node: node.Name, Network: l.Network, Address: l.Address, Port: l.Port}
			if t, ok := e.live.ReachEndpoint(from, ep); ok {
				return t, l, ""
			}
			if pass == 0 || len(reasons) == 0 {
				reasons = append(reasons, e.WhyNot(from, node, e.EndpointCandidates(ep)))
			}
		}
	}
	return inventory.Target{}, nil, fmt.Sprintf("%s cannot reach site %s on %s: %s", from.Name, s.Name, node.Name, strings.Join(dedupe(reasons), "; "))
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		out = appendNew(out, s)
	}
	return out
}

// SitePaths returns how from reaches hostname on site s: the site's
// listener, then for each proxied route each pool member's paths.
func (e *Engine) SitePaths(from *inventory.Node, s *inventory.Site) (paths []Path, notes []string) {
	t, l, why := e.siteEntry(from, s)
	if l == nil {
		return nil, []string{why}
	}
	node := e.m.Node(s.Node)
	entry := Hop{From: from, To: node, Kind: "http", Via: s.Name, Target: t}
	var entryBlock *Block
	if !e.Admits(s.Allow, t, true) {
		entryBlock = e.Refused(BlockSite, s.Name, s.Pos, s.Allow, from, t)
	}
	for _, r := range s.Routes {
		up := r.Upstream
		kind := "upstream"
		if r.Static != nil {
			if r.Static.Fallback == "" {
				paths = append(paths, Path{Title: fmt.Sprintf("site %s, route %s: static files from %s", s.Name, r.Path, r.Static.Root),
					Hops: []Hop{entry}, Blocked: entryBlock})
				continue
			}
			up, kind = r.Static.Fallback, "fallback"
			paths = append(paths, Path{Title: fmt.Sprintf("site %s, route %s: static files from %s", s.Name, r.Path, r.Static.Root),
				Hops: []Hop{entry}, Blocked: entryBlock})
		}
		if up == "" {
			if r.Redirect != "" {
				paths = append(paths, Path{Title: fmt.Sprintf("site %s, route %s: redirect to %s", s.Name, r.Path, r.Redirect),
					Hops: []Hop{entry}, Blocked: entryBlock})
			}
			continue
		}
		u := e.m.Upstream(up)
		if u == nil {
			continue
		}
		for _, us := range u.Servers {
			ps, ns := e.MemberPaths(node, us)
			for _, p := range ps {
				q := Path{Title: fmt.Sprintf("site %s, route %s, %s %s, %s", s.Name, r.Path, kind, u.Name, p.Title),
					Hops: append([]Hop{entry}, p.Hops...), Blocked: p.Blocked}
				if entryBlock != nil {
					q.Blocked = entryBlock
				}
				paths = append(paths, q)
			}
			for _, n := range ns {
				notes = append(notes, fmt.Sprintf("site %s, route %s, %s %s: %s", s.Name, r.Path, kind, u.Name, n))
			}
		}
	}
	if len(paths) == 0 && entryBlock != nil {
		paths = append(paths, Path{Title: "site " + s.Name, Hops: []Hop{entry}, Blocked: entryBlock})
	}
	return paths, notes
}

// ManagementPath returns the direct way from reaches the management entry
// mg of node to (ssh, the Proxmox UI: never tunnelled), with Blocked set
// when mg's allow list refuses from. ok is false when no network leads
// there; note then says which leg is missing.
func (e *Engine) ManagementPath(from, to *inventory.Node, mg *inventory.Management) (p Path, note string, ok bool) {
	if e.IsDown(from) || e.IsDown(to) {
		return Path{}, e.WhyNot(from, to, nil), false
	}
	t, ok := e.live.Reach(from, to, mg.DefaultPort(), nil, false)
	if !ok {
		return Path{}, e.WhyNot(from, to, Candidates(to, nil)), false
	}
	p = Path{Title: "direct", Hops: []Hop{{From: from, To: to, Kind: mg.Transport(), Target: t}}}
	if !e.Admits(mg.Allow, t, false) {
		p.Blocked = e.Refused(BlockManagement, mg.Name+" on "+to.Name, mg.Pos, mg.Allow, from, t)
	}
	return p, "", true
}
