package topology

import (
	"fmt"
	"slices"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/reach"
)

// ImpactOf reports what is lost when one object is down: a node (as
// Impact), a tunnel, a forward, a site or a replica. For a tunnel, forward
// or site, a client loses a use (and the internet a site) when it had an
// open path before and every open path went through that object; the same
// paths `offedge why` shows. A replica down loses no path: its copy goes
// stale. The error is for an unknown kind or name.
func ImpactOf(m *inventory.Model, kind, name string) (*ImpactReport, error) {
	if kind == "node" {
		return Impact(m, name)
	}
	r := &ImpactReport{}
	var through func(h reach.Hop) bool
	switch kind {
	case "tunnel":
		if m.Tunnel(name) == nil {
			return nil, fmt.Errorf("unknown tunnel %q", name)
		}
		through = func(h reach.Hop) bool { return (h.Kind == "tunnel" || h.Kind == "entrance") && h.Via == name }
		r.LostTunnels = []string{name}
		r.Losses = append(r.Losses, Loss{Kind: "tunnel", Name: name, Reason: "it is down"})
	case "forward":
		if m.Forward(name) == nil {
			return nil, fmt.Errorf("unknown forward %q", name)
		}
		through = func(h reach.Hop) bool { return h.Kind == "forward" && h.Via == name }
		r.LostForwards = []string{name}
		r.Losses = append(r.Losses, Loss{Kind: "forward", Name: name, Reason: "it is down"})
	case "site":
		s := m.Site(name)
		if s == nil {
			return nil, fmt.Errorf("unknown site %q", name)
		}
		through = func(h reach.Hop) bool { return h.Kind == "http" && h.Via == name }
		r.LostSites = slices.Clone(s.Hosts)
		for _, h := range s.Hosts {
			r.Unreachable = append(r.Unreachable, Unreachable{Client: reach.InternetClient, Target: h, Kind: "site", Reason: fmt.Sprintf("site %s is down", name)})
		}
		r.Losses = append(r.Losses, Loss{Kind: "site", Name: name, Reason: "it is down"})
	case "replica":
		rp := m.Replica(name)
		if rp == nil {
			return nil, fmt.Errorf("unknown replica %q", name)
		}
		r.StaleReplicas = []string{name}
		why := "its copy stops at the last one made"
		if rp.Target != nil {
			why = fmt.Sprintf("the copy on %s stops at the last one made and grows older than max_lag %s; no path is lost", rp.Target.Node, rp.MaxLag)
		}
		r.Losses = append(r.Losses, Loss{Kind: "replica", Name: name, Reason: why})
		return r, nil
	default:
		return nil, fmt.Errorf("unknown kind %q: node, tunnel, forward, site or replica", kind)
	}
	e := reach.New(m)
	lostAll := func(paths []reach.Path) bool {
		open := 0
		for _, p := range paths {
			if !p.Open() {
				continue
			}
			open++
			if !slices.ContainsFunc(p.Hops, through) {
				return false
			}
		}
		return open > 0
	}
	for _, n := range m.Nodes {
		for _, use := range n.Uses {
			k, paths, _ := e.UsePaths(n, use)
			if k == "" || !lostAll(paths) {
				continue
			}
			reason := fmt.Sprintf("every path went through %s %s", kind, name)
			r.Unreachable = append(r.Unreachable, Unreachable{Client: n.Name, Target: use, Kind: k, Reason: reason})
			r.Losses = append(r.Losses, Loss{Kind: k, Name: n.Name + " -> " + use, Reason: reason})
		}
	}
	if kind != "site" {
		inet := e.Internet()
		for _, s := range m.Sites {
			paths, _ := e.SitePaths(inet, s)
			if !lostAll(paths) {
				continue
			}
			reason := fmt.Sprintf("every path to it went through %s %s", kind, name)
			r.LostSites = append(r.LostSites, s.Hosts...)
			for _, h := range s.Hosts {
				r.Unreachable = append(r.Unreachable, Unreachable{Client: reach.InternetClient, Target: h, Kind: "site", Reason: reason})
			}
			r.Losses = append(r.Losses, Loss{Kind: "site", Name: s.Name, Reason: reason})
		}
	}
	return r, nil
}
