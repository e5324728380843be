package topology

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// Path is one way a node reaches a destination, hop by hop. When Blocked is
// set, the path exists on the network but an allow list refuses it.
type Path struct {
	// Title says which way this is: "direct", "via tunnel mongodb-ovh",
	// "site blog, route /, upstream blog".
	Title   string
	Hops    []inventory.Hop
	Blocked *Block
}

// Open reports whether the path is usable (no allow list refuses it).
func (p Path) Open() bool { return p.Blocked == nil }

// Block is the allow list that refuses a path, quoted with its position.
type Block struct {
	// Object is the inventory object whose allow list refuses the
	// connection: `service "mongodb"`, `tunnel "mongodb-ovh" entrance`.
	Object string
	Pos    inventory.Pos
	Allow  []string
	// Node is the refused node and Source the address the listener sees
	// (a NAT gateway's when the node is behind one).
	Node    string
	Source  netip.Addr
	Network string
	// Expanded renders the allow list with its policies expanded one level:
	// "[policy:free-servers = [off1, off2]]".
	Expanded string
}

// String renders `service "mongodb" at file:line allows [...]; docker-prod
// (10.1.0.201 on ovh-lan) is not admitted`.
func (b *Block) String() string {
	where := ""
	if !b.Pos.IsZero() {
		where = " at " + b.Pos.String()
	}
	return fmt.Sprintf("%s%s allows %s; %s (%s on %s) is not admitted", b.Object, where, b.Expanded, b.Node, b.Source, b.Network)
}

func (f *finder) block(object string, pos inventory.Pos, allow []string, n *inventory.Node, t inventory.Target) *Block {
	return &Block{Object: object, Pos: pos, Allow: allow, Node: n.Name, Source: t.Source, Network: t.Network, Expanded: f.expandAllow(allow)}
}

// expandAllow quotes an allow list, expanding policy:NAME one level.
func (f *finder) expandAllow(allow []string) string {
	if len(allow) == 0 {
		return "nobody (empty allow list)"
	}
	parts := make([]string, len(allow))
	for i, e := range allow {
		parts[i] = e
		if name, ok := strings.CutPrefix(e, "policy:"); ok {
			if p := f.m.Policy(name); p != nil {
				parts[i] = fmt.Sprintf("%s = [%s]", e, strings.Join(p.Allow, ", "))
			}
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func objPos(kind, name string, pos inventory.Pos) (string, inventory.Pos) {
	return fmt.Sprintf("%s %q", kind, name), pos
}

// servicePaths returns every way from reaches s: directly, through each
// tunnel to s whose entrance from reaches, through each forward to s. Paths
// refused by an allow list are included with Blocked set. notes explains the
// ways that do not exist (no route on the network).
func (f *finder) servicePaths(from *inventory.Node, s *inventory.Service) (paths []Path, notes []string) {
	to := f.m.Node(s.Node)
	if f.isDown(from) || f.isDown(to) {
		if to == nil {
			return nil, []string{fmt.Sprintf("service %s names no known node", s.Name)}
		}
		return nil, []string{f.whyNot(from, to, nil)}
	}
	if t, ok := f.reachService(from, s); ok {
		p := Path{Title: "direct", Hops: []inventory.Hop{{From: from, To: to, Kind: "tcp", Target: t}}}
		if !f.admits(s.Allow, t, false) {
			o, pos := objPos("service", s.Name, s.Pos)
			p.Blocked = f.block(o, pos, s.Allow, from, t)
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
			notes = append(notes, fmt.Sprintf("direct: %s listens on %s; %s", s.Name, where, f.whyNot(from, to, candidates(to, s.Bind))))
		}
	}
	for _, tn := range f.idx.tunnelsBySvc[s.Name] {
		ps, ns := f.tunnelPaths(from, tn, s)
		paths = append(paths, ps...)
		notes = append(notes, ns...)
	}
	for _, fw := range f.idx.forwardsBySvc[s.Name] {
		ps, ns := f.forwardPaths(from, fw, s)
		paths = append(paths, ps...)
		notes = append(notes, ns...)
	}
	if len(f.idx.tunnelsBySvc[s.Name]) == 0 && len(f.idx.forwardsBySvc[s.Name]) == 0 {
		notes = append(notes, fmt.Sprintf("no tunnel or forward leads to %s", s.Name))
	}
	return paths, notes
}

// tunnelPaths returns the ways from reaches s through tunnel tn: entrance,
// then each exit, then the service.
func (f *finder) tunnelPaths(from *inventory.Node, tn *inventory.Tunnel, s *inventory.Service) (paths []Path, notes []string) {
	title := "via tunnel " + tn.Name
	if tn.Entrance == nil || s == nil {
		return nil, nil
	}
	ent := f.m.Node(tn.Entrance.Node)
	if ent == nil {
		return nil, nil
	}
	if f.down[ent] {
		return nil, []string{fmt.Sprintf("%s: its entrance %s is down", title, ent.Name)}
	}
	t1, ok := f.reachEndpoint(from, tn.Entrance)
	if !ok {
		why := fmt.Sprintf("the entrance listens on loopback of %s only", ent.Name)
		if !tn.Entrance.Loopback {
			why = f.whyNot(from, ent, f.endpointCandidates(tn.Entrance))
		}
		return nil, []string{fmt.Sprintf("%s: %s cannot reach its entrance on %s: %s", title, from.Name, ent.Name, why)}
	}
	first := inventory.Hop{From: from, To: ent, Kind: "entrance", Via: tn.Name, Target: t1}
	if !f.admits(tn.Allow, t1, false) {
		o, pos := objPos("tunnel", tn.Name, tn.Pos)
		return []Path{{Title: title, Hops: []inventory.Hop{first}, Blocked: f.block(o+" entrance", pos, tn.Allow, from, t1)}}, nil
	}
	to := f.m.Node(s.Node)
	for _, ex := range tn.Exits {
		exNode := f.m.Node(ex.Node)
		if exNode == nil {
			continue
		}
		if f.down[exNode] {
			notes = append(notes, fmt.Sprintf("%s: its exit %s is down", title, exNode.Name))
			continue
		}
		t2, ok := f.reachEndpoint(ent, ex)
		if !ok {
			notes = append(notes, fmt.Sprintf("%s: the entrance %s cannot reach the exit %s: %s", title, ent.Name, exNode.Name, f.whyNot(ent, exNode, f.endpointCandidates(ex))))
			continue
		}
		t3, ok := f.reachService(exNode, s)
		if !ok {
			notes = append(notes, fmt.Sprintf("%s: the exit %s cannot reach %s: %s", title, exNode.Name, s.Name, f.whyNot(exNode, to, candidates(to, s.Bind))))
			continue
		}
		p := Path{Title: title, Hops: []inventory.Hop{first,
			{From: ent, To: exNode, Kind: "tunnel", Via: tn.Name, Target: t2},
			{From: exNode, To: to, Kind: "tcp", Target: t3}}}
		if !f.admits(s.Allow, t3, false) {
			o, pos := objPos("service", s.Name, s.Pos)
			p.Blocked = f.block(o, pos, s.Allow, exNode, t3)
		}
		paths = append(paths, p)
	}
	return paths, notes
}

// forwardPaths returns the way from reaches s through forward fw.
func (f *finder) forwardPaths(from *inventory.Node, fw *inventory.Forward, s *inventory.Service) ([]Path, []string) {
	title := "via forward " + fw.Name
	fn := f.m.Node(fw.Node)
	if fn == nil || fw.Listen == nil {
		return nil, nil
	}
	if f.down[fn] {
		return nil, []string{fmt.Sprintf("%s: its node %s is down", title, fn.Name)}
	}
	t1, ok := f.reachEndpoint(from, fw.Listen)
	if !ok {
		return nil, []string{fmt.Sprintf("%s: %s cannot reach it on %s: %s", title, from.Name, fn.Name, f.whyNot(from, fn, f.endpointCandidates(fw.Listen)))}
	}
	to := f.m.Node(s.Node)
	t2, ok := f.reachService(fn, s)
	if !ok {
		return nil, []string{fmt.Sprintf("%s: %s cannot reach %s: %s", title, fn.Name, s.Name, f.whyNot(fn, to, candidates(to, s.Bind)))}
	}
	p := Path{Title: title, Hops: []inventory.Hop{
		{From: from, To: fn, Kind: "forward", Via: fw.Name, Target: t1},
		{From: fn, To: to, Kind: "tcp", Target: t2}}}
	switch {
	case !f.admits(fw.Allow, t1, false):
		o, pos := objPos("forward", fw.Name, fw.Pos)
		p.Blocked = f.block(o, pos, fw.Allow, from, t1)
	case !f.admits(s.Allow, t2, false):
		o, pos := objPos("service", s.Name, s.Pos)
		p.Blocked = f.block(o, pos, s.Allow, fn, t2)
	}
	return []Path{p}, nil
}

// memberPaths returns how a site's node reaches one upstream pool member: a
// service directly, a tunnel through its entrance, or a node's port.
func (f *finder) memberPaths(from *inventory.Node, us *inventory.UpstreamServer) ([]Path, []string) {
	switch {
	case us.Service != "":
		s := f.m.Service(us.Service)
		if s == nil {
			return nil, []string{fmt.Sprintf("service %q is not defined", us.Service)}
		}
		to := f.m.Node(s.Node)
		if f.isDown(to) {
			return nil, []string{f.whyNot(from, to, nil)}
		}
		var t inventory.Target
		var ok bool
		if us.Network != "" {
			t, ok = f.reach(from, to, s.Port, []string{us.Network}, false)
		} else {
			t, ok = f.reachService(from, s)
		}
		title := "service " + s.Name
		if !ok {
			nets := s.Bind
			if us.Network != "" {
				nets = []string{us.Network}
			}
			return nil, []string{fmt.Sprintf("%s: %s", title, f.whyNot(from, to, candidates(to, nets)))}
		}
		p := Path{Title: title, Hops: []inventory.Hop{{From: from, To: to, Kind: "tcp", Target: t}}}
		if !f.admits(s.Allow, t, false) {
			o, pos := objPos("service", s.Name, s.Pos)
			p.Blocked = f.block(o, pos, s.Allow, from, t)
		}
		return []Path{p}, nil
	case us.Tunnel != "":
		tn := f.m.Tunnel(us.Tunnel)
		if tn == nil {
			return nil, []string{fmt.Sprintf("tunnel %q is not defined", us.Tunnel)}
		}
		return f.tunnelPaths(from, tn, f.m.Service(tn.Service))
	default:
		to := f.m.Node(us.Node)
		if f.isDown(to) {
			if to == nil {
				return nil, []string{fmt.Sprintf("node %q is not defined", us.Node)}
			}
			return nil, []string{f.whyNot(from, to, nil)}
		}
		var nets []string
		if us.Network != "" {
			nets = []string{us.Network}
		}
		title := fmt.Sprintf("%s:%d", to.Name, us.Port)
		t, ok := f.reach(from, to, us.Port, nets, true)
		if !ok {
			return nil, []string{fmt.Sprintf("%s: %s", title, f.whyNot(from, to, candidates(to, nets)))}
		}
		h := inventory.Hop{From: from, To: to, Kind: "tcp", Target: t}
		// A site on that node listening on that port is what answers.
		for _, st := range f.idx.sitesByNode[to.Name] {
			for _, l := range st.Listen {
				if l.Port == us.Port {
					h.Kind, h.Via = "http", st.Name
				}
			}
		}
		p := Path{Title: title, Hops: []inventory.Hop{h}}
		if h.Kind == "http" {
			if st := f.m.Site(h.Via); st != nil && !f.admits(st.Allow, t, true) {
				o, pos := objPos("site", st.Name, st.Pos)
				p.Blocked = f.block(o, pos, st.Allow, from, t)
			}
		}
		return []Path{p}, nil
	}
}

// siteEntry returns how from reaches one of the site's listeners: TLS
// listeners first, then plain ones, redirect-only listeners last.
func (f *finder) siteEntry(from *inventory.Node, s *inventory.Site) (inventory.Target, *inventory.Listen, string) {
	node := f.m.Node(s.Node)
	if f.isDown(node) {
		if node == nil {
			return inventory.Target{}, nil, fmt.Sprintf("site %s names no known node", s.Name)
		}
		return inventory.Target{}, nil, f.whyNot(from, node, nil)
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
			e := &inventory.Endpoint{Node: node.Name, Network: l.Network, Address: l.Address, Port: l.Port}
			if t, ok := f.reachEndpoint(from, e); ok {
				return t, l, ""
			}
			if pass == 0 || len(reasons) == 0 {
				reasons = append(reasons, f.whyNot(from, node, f.endpointCandidates(e)))
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

// sitePaths returns how from reaches hostname on site s: the site's
// listener, then for each proxied route each pool member's paths.
func (f *finder) sitePaths(from *inventory.Node, s *inventory.Site) (paths []Path, notes []string) {
	t, l, why := f.siteEntry(from, s)
	if l == nil {
		return nil, []string{why}
	}
	node := f.m.Node(s.Node)
	entry := inventory.Hop{From: from, To: node, Kind: "http", Via: s.Name, Target: t}
	var entryBlock *Block
	if !f.admits(s.Allow, t, true) {
		o, pos := objPos("site", s.Name, s.Pos)
		entryBlock = f.block(o, pos, s.Allow, from, t)
	}
	for _, r := range s.Routes {
		up := r.Upstream
		kind := "upstream"
		if r.Static != nil {
			if r.Static.Fallback == "" {
				paths = append(paths, Path{Title: fmt.Sprintf("site %s, route %s: static files from %s", s.Name, r.Path, r.Static.Root),
					Hops: []inventory.Hop{entry}, Blocked: entryBlock})
				continue
			}
			up, kind = r.Static.Fallback, "fallback"
			paths = append(paths, Path{Title: fmt.Sprintf("site %s, route %s: static files from %s", s.Name, r.Path, r.Static.Root),
				Hops: []inventory.Hop{entry}, Blocked: entryBlock})
		}
		if up == "" {
			if r.Redirect != "" {
				paths = append(paths, Path{Title: fmt.Sprintf("site %s, route %s: redirect to %s", s.Name, r.Path, r.Redirect),
					Hops: []inventory.Hop{entry}, Blocked: entryBlock})
			}
			continue
		}
		u := f.m.Upstream(up)
		if u == nil {
			continue
		}
		for _, us := range u.Servers {
			ps, ns := f.memberPaths(node, us)
			for _, p := range ps {
				q := Path{Title: fmt.Sprintf("site %s, route %s, %s %s, %s", s.Name, r.Path, kind, u.Name, p.Title),
					Hops: append([]inventory.Hop{entry}, p.Hops...), Blocked: p.Blocked}
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
		paths = append(paths, Path{Title: "site " + s.Name, Hops: []inventory.Hop{entry}, Blocked: entryBlock})
	}
	return paths, notes
}

// anyOpen reports whether one of the paths is open.
func anyOpen(ps []Path) bool {
	for _, p := range ps {
		if p.Open() {
			return true
		}
	}
	return false
}
