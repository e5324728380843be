package reach

import (
	"fmt"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// Usable reports whether n has an open path to s: whether [Engine.ServicePaths]
// would return one, without building every path or its explanation. Callers
// ask ServicePaths only when this says no, to explain why.
func (e *Engine) Usable(n *inventory.Node, s *inventory.Service) bool {
	_, ok := e.FirstHop(n, s)
	return ok
}

// FirstHop returns the first hop of the first open path from n to s, in
// [Engine.ServicePaths] order, without building the others: where n's
// connection to s goes first (the service's node, a tunnel entrance, a
// forward's node). ok is false when no path is open.
func (e *Engine) FirstHop(n *inventory.Node, s *inventory.Service) (first Hop, ok bool) {
	to := e.m.Node(s.Node)
	if e.IsDown(n) || e.IsDown(to) {
		return Hop{}, false
	}
	if t, ok := e.live.ReachService(n, s); ok && e.Admits(s.Allow, t, false) {
		return Hop{From: n, To: to, Kind: "tcp", Target: t}, true
	}
	for _, tn := range e.m.TunnelsTo(s.Name) {
		if tn.Entrance == nil {
			continue
		}
		ent := e.m.Node(tn.Entrance.Node)
		if e.IsDown(ent) {
			continue
		}
		t1, ok := e.live.ReachEndpoint(n, tn.Entrance)
		if !ok || !e.Admits(tn.Allow, t1, false) {
			continue
		}
		for _, ex := range tn.Exits {
			exNode := e.m.Node(ex.Node)
			if e.IsDown(exNode) {
				continue
			}
			if _, ok := e.live.ReachEndpoint(ent, ex); !ok {
				continue
			}
			if t3, ok := e.live.ReachService(exNode, s); ok && e.Admits(s.Allow, t3, false) {
				return Hop{From: n, To: ent, Kind: "entrance", Via: tn.Name, Target: t1}, true
			}
		}
	}
	for _, fw := range e.m.ForwardsTo(s.Name) {
		fn := e.m.Node(fw.Node)
		if e.IsDown(fn) || fw.Listen == nil {
			continue
		}
		t1, ok := e.live.ReachEndpoint(n, fw.Listen)
		if !ok || !e.Admits(fw.Allow, t1, false) {
			continue
		}
		if t2, ok := e.live.ReachService(fn, s); ok && e.Admits(s.Allow, t2, false) {
			return Hop{From: n, To: fn, Kind: "forward", Via: fw.Name, Target: t1}, true
		}
	}
	return Hop{}, false
}

// UsePaths returns the paths n has to one of its uses: a service, or the
// sites answering a hostname. kind is "service", "site", or "" when the use
// names nothing.
func (e *Engine) UsePaths(n *inventory.Node, use string) (kind string, paths []Path, notes []string) {
	if s := e.m.Service(use); s != nil {
		paths, notes = e.ServicePaths(n, s)
		return "service", paths, notes
	}
	sites := e.SitesForHost(use)
	if len(sites) == 0 {
		return "", nil, nil
	}
	for _, s := range sites {
		ps, ns := e.SitePaths(n, s)
		paths = append(paths, ps...)
		notes = append(notes, ns...)
	}
	return "site", paths, notes
}

// TunnelCarries reports whether tn carries traffic: its entrance is up and
// some exit reaches the service, admitted by the service's allow list; when
// not, it says why.
func (e *Engine) TunnelCarries(tn *inventory.Tunnel) (bool, string) {
	s := e.m.Service(tn.Service)
	if s == nil || tn.Entrance == nil {
		return false, "incomplete tunnel"
	}
	ent := e.m.Node(tn.Entrance.Node)
	if e.IsDown(ent) {
		return false, fmt.Sprintf("its entrance %s is down", tn.Entrance.Node)
	}
	if svcNode := e.m.Node(s.Node); e.IsDown(svcNode) {
		return false, fmt.Sprintf("its service %s runs on %s, which is down", s.Name, s.Node)
	}
	var why []string
	for _, ex := range tn.Exits {
		exNode := e.m.Node(ex.Node)
		if e.IsDown(exNode) {
			why = append(why, fmt.Sprintf("exit %s is down", ex.Node))
			continue
		}
		if _, ok := e.live.ReachEndpoint(ent, ex); !ok {
			why = append(why, fmt.Sprintf("the entrance cannot reach exit %s: %s", exNode.Name, e.WhyNot(ent, exNode, e.EndpointCandidates(ex))))
			continue
		}
		t, ok := e.live.ReachService(exNode, s)
		if !ok || !e.Admits(s.Allow, t, false) {
			why = append(why, fmt.Sprintf("exit %s cannot reach %s", exNode.Name, s.Name))
			continue
		}
		return true, ""
	}
	return false, strings.Join(why, "; ")
}

// ForwardCarries reports whether fw carries traffic: its node is up, reaches
// the service and is admitted by it; when not, it says why.
func (e *Engine) ForwardCarries(fw *inventory.Forward) (bool, string) {
	fn := e.m.Node(fw.Node)
	s := e.m.Service(fw.Service)
	if s == nil || fn == nil {
		return false, "incomplete forward"
	}
	if e.IsDown(fn) {
		return false, fmt.Sprintf("it runs on %s, which is down", fn.Name)
	}
	to := e.m.Node(s.Node)
	if e.IsDown(to) {
		return false, fmt.Sprintf("its target %s runs on %s, which is down", s.Name, s.Node)
	}
	t, ok := e.live.ReachService(fn, s)
	if !ok {
		return false, fmt.Sprintf("%s cannot reach %s: %s", fn.Name, s.Name, e.WhyNot(fn, to, Candidates(to, s.Bind)))
	}
	if !e.Admits(s.Allow, t, false) {
		return false, fmt.Sprintf("%s is not admitted by %s", fn.Name, s.Name)
	}
	return true, ""
}

// Linked reports whether two nodes reach each other over SSH, whichever
// connects (a replica's ends).
func (e *Engine) Linked(a, b *inventory.Node) bool {
	if _, ok := e.live.Reach(b, a, 22, nil, false); ok {
		return true
	}
	_, ok := e.live.Reach(a, b, 22, nil, false)
	return ok
}
