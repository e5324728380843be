package topology

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/offedge/offedge/inventory"
)

// ImpactReport says what becomes unreachable, and for whom, when some nodes
// are down. Every list is in inventory order, so reports are deterministic
// and a failure drill can check them item by item by connecting.
type ImpactReport struct {
	// Down are the nodes asked about; DownNodes adds the guests of the down
	// servers (a server down takes its guests down).
	Down      []string
	DownNodes []string
	// LostServices run on a down node.
	LostServices []string
	// LostSites are the hostnames (as the inventory writes them, wildcards
	// included) of sites served by a down node or whose "/" route lost
	// every upstream member.
	LostSites []string
	// LostTunnels carried traffic before and cannot now: entrance down,
	// every exit down or out of reach, the service gone.
	LostTunnels []string
	// LostForwards are forwards whose node or target is lost.
	LostForwards []string
	// LostGateways are private networks whose NAT gateway is down.
	LostGateways []string
	// StaleReplicas will miss their copies: source or target down, or the
	// two can no longer reach each other.
	StaleReplicas []string
	// Unreachable lists who loses what.
	Unreachable []Unreachable
	// Losses are every loss above with its reason, for people.
	Losses []Loss
}

// Unreachable is one client losing one target.
type Unreachable struct {
	// Client is a node name, or "internet" for a site's public clients.
	Client string
	// Target is a service name, a site hostname, an upstream member
	// ("service blog", "tunnel robotoff", "node off1:443"), or "internet".
	Target string
	// Kind is "service" or "site" (a node's uses), "site" with Client
	// "internet" (a lost site), "upstream" (a site's node losing a pool
	// member), "egress-ipv4" or "egress-ipv6" (a node losing the internet).
	Kind   string
	Reason string
}

// Loss is one lost object and why.
type Loss struct {
	// Kind is "node", "service", "site", "route", "fallback", "tunnel",
	// "forward", "gateway" or "replica".
	Kind   string
	Name   string
	Reason string
}

// Impact reports what becomes unreachable, and for whom, when the named
// nodes are down. Paths are searched again on the model without the down
// nodes: a path through a down tunnel end, forward node or NAT gateway is
// lost even when both its ends are up. Only what worked before is reported
// as lost. The error is only for unknown node names.
func Impact(m *inventory.Model, nodes ...string) (*ImpactReport, error) {
	if len(nodes) == 0 {
		return nil, fmt.Errorf("name at least one node")
	}
	idx := newIndex(m)
	down := map[*inventory.Node]bool{}
	asked := map[*inventory.Node]bool{}
	r := &ImpactReport{}
	for _, name := range nodes {
		n := m.Node(name)
		if n == nil {
			return nil, fmt.Errorf("unknown node %q%s", name, didYouMean(name, nodeNames(m)))
		}
		if asked[n] {
			continue
		}
		asked[n] = true
		r.Down = append(r.Down, name)
		down[n] = true
		for _, g := range idx.guests[n.Name] {
			down[g] = true
		}
	}
	im := &impact{m: m, idx: idx, r: r, asked: asked,
		before: newFinder(m, idx, nil), after: newFinder(m, idx, down)}
	im.nodes()
	im.sites()
	im.tunnels()
	im.forwards()
	im.gateways()
	im.uses()
	im.replicas()
	return r, nil
}

type impact struct {
	m             *inventory.Model
	idx           *index
	r             *ImpactReport
	asked         map[*inventory.Node]bool
	before, after *finder
}

func (im *impact) loss(kind, name, reason string) {
	im.r.Losses = append(im.r.Losses, Loss{Kind: kind, Name: name, Reason: reason})
}

func (im *impact) unreachable(client, target, kind, reason string) {
	im.r.Unreachable = append(im.r.Unreachable, Unreachable{Client: client, Target: target, Kind: kind, Reason: reason})
}

// downReason says why n is down: asked, or a guest of a down server.
func (im *impact) downReason(n *inventory.Node) string {
	if im.asked[n] || n.Host == nil {
		return n.Name + " is down"
	}
	return fmt.Sprintf("%s (%s) is down with %s", n.Name, n.Describe(), n.Host.Name)
}

func (im *impact) isDown(name string) (*inventory.Node, bool) {
	n := im.m.Node(name)
	return n, n != nil && im.after.down[n]
}

func (im *impact) nodes() {
	for _, n := range im.m.Nodes {
		if im.after.down[n] {
			im.r.DownNodes = append(im.r.DownNodes, n.Name)
			reason := "down"
			if !im.asked[n] && n.Host != nil {
				reason = fmt.Sprintf("%s, down with its host", n.Describe())
			}
			im.loss("node", n.Name, reason)
		}
	}
	for _, s := range im.m.Services {
		if n, d := im.isDown(s.Node); d {
			im.r.LostServices = append(im.r.LostServices, s.Name)
			im.loss("service", s.Name, fmt.Sprintf("runs on %s; %s", n.Name, im.downReason(n)))
		}
	}
}

// downOn lists the down nodes the open paths went through (ends, hops and
// NAT gateways), for "every path went through X" reasons.
func (im *impact) downOn(paths []Path) []string {
	var out []string
	for _, p := range paths {
		if !p.Open() {
			continue
		}
		for _, h := range p.Hops {
			for _, n := range []*inventory.Node{h.From, h.To, h.Target.Via} {
				if n != nil && im.after.down[n] {
					out = appendNew(out, n.Name)
				}
			}
		}
	}
	return out
}

// lostReason explains why the paths that were open are gone.
func (im *impact) lostReason(before []Path, afterNotes []string) string {
	if d := im.downOn(before); len(d) > 0 {
		return "every path went through a down node: " + strings.Join(d, ", ")
	}
	return strings.Join(afterNotes, "; ")
}

func (im *impact) sites() {
	for _, s := range im.m.Sites {
		node := im.m.Node(s.Node)
		if node == nil {
			continue
		}
		if im.after.down[node] {
			im.loseSite(s, fmt.Sprintf("served by %s; %s", node.Name, im.downReason(node)))
			continue
		}
		rootLost := ""
		for _, rt := range s.Routes {
			up, kind := rt.Upstream, "route"
			if rt.Static != nil {
				up, kind = rt.Static.Fallback, "fallback"
			}
			u := im.m.Upstream(up)
			if u == nil {
				continue
			}
			wasLive, live := false, false
			var lost []string
			for _, us := range u.Servers {
				bp, _ := im.before.memberPaths(node, us)
				if !anyOpen(bp) {
					continue
				}
				wasLive = true
				ap, an := im.after.memberPaths(node, us)
				if anyOpen(ap) {
					live = true
					continue
				}
				why := im.lostReason(bp, an)
				im.unreachable(node.Name, memberName(us), "upstream", fmt.Sprintf("site %s, upstream %s: %s", s.Name, u.Name, why))
				lost = append(lost, memberName(us)+": "+why)
			}
			if !wasLive || live {
				continue
			}
			reason := fmt.Sprintf("upstream %s lost every member (%s)", u.Name, strings.Join(lost, "; "))
			if kind == "fallback" {
				im.loss("fallback", fmt.Sprintf("%s %s", s.Name, rt.Path), reason+"; local files are still served")
				continue
			}
			im.loss("route", fmt.Sprintf("%s %s", s.Name, rt.Path), reason)
			if rt.Path == "/" && !rt.Exact {
				rootLost = reason
			}
		}
		if rootLost != "" {
			im.loseSite(s, "route / "+rootLost)
		}
	}
}

func (im *impact) loseSite(s *inventory.Site, reason string) {
	im.loss("site", fmt.Sprintf("%s (%s)", s.Name, strings.Join(s.Hosts, ", ")), reason)
	for _, h := range s.Hosts {
		im.r.LostSites = append(im.r.LostSites, h)
		im.unreachable("internet", h, "site", fmt.Sprintf("site %s: %s", s.Name, reason))
	}
}

func memberName(us *inventory.UpstreamServer) string {
	switch {
	case us.Service != "":
		return "service " + us.Service
	case us.Tunnel != "":
		return "tunnel " + us.Tunnel
	default:
		return fmt.Sprintf("node %s:%d", us.Node, us.Port)
	}
}

// tunnelLive reports whether tn carries traffic: its entrance is up and
// some exit reaches the service, admitted by the service's allow list.
func (f *finder) tunnelLive(tn *inventory.Tunnel) (bool, string) {
	s := f.m.Service(tn.Service)
	if s == nil || tn.Entrance == nil {
		return false, "incomplete tunnel"
	}
	ent := f.m.Node(tn.Entrance.Node)
	if f.isDown(ent) {
		return false, fmt.Sprintf("its entrance %s is down", tn.Entrance.Node)
	}
	if svcNode := f.m.Node(s.Node); f.isDown(svcNode) {
		return false, fmt.Sprintf("its service %s runs on %s, which is down", s.Name, s.Node)
	}
	var why []string
	for _, ex := range tn.Exits {
		exNode := f.m.Node(ex.Node)
		if f.isDown(exNode) {
			why = append(why, fmt.Sprintf("exit %s is down", ex.Node))
			continue
		}
		if _, ok := f.reachEndpoint(ent, ex); !ok {
			why = append(why, fmt.Sprintf("the entrance cannot reach exit %s: %s", exNode.Name, f.whyNot(ent, exNode, f.endpointCandidates(ex))))
			continue
		}
		t, ok := f.reachService(exNode, s)
		if !ok || !f.admits(s.Allow, t, false) {
			why = append(why, fmt.Sprintf("exit %s cannot reach %s", exNode.Name, s.Name))
			continue
		}
		return true, ""
	}
	return false, strings.Join(why, "; ")
}

func (im *impact) tunnels() {
	for _, tn := range im.m.Tunnels {
		if ok, _ := im.before.tunnelLive(tn); !ok {
			continue
		}
		if ok, why := im.after.tunnelLive(tn); !ok {
			im.r.LostTunnels = append(im.r.LostTunnels, tn.Name)
			im.loss("tunnel", tn.Name, why)
		}
	}
}

func (f *finder) forwardLive(fw *inventory.Forward) (bool, string) {
	fn := f.m.Node(fw.Node)
	s := f.m.Service(fw.Service)
	if s == nil || fn == nil {
		return false, "incomplete forward"
	}
	if f.isDown(fn) {
		return false, fmt.Sprintf("it runs on %s, which is down", fn.Name)
	}
	to := f.m.Node(s.Node)
	if f.isDown(to) {
		return false, fmt.Sprintf("its target %s runs on %s, which is down", s.Name, s.Node)
	}
	t, ok := f.reachService(fn, s)
	if !ok {
		return false, fmt.Sprintf("%s cannot reach %s: %s", fn.Name, s.Name, f.whyNot(fn, to, candidates(to, s.Bind)))
	}
	if !f.admits(s.Allow, t, false) {
		return false, fmt.Sprintf("%s is not admitted by %s", fn.Name, s.Name)
	}
	return true, ""
}

func (im *impact) forwards() {
	for _, fw := range im.m.Forwards {
		if ok, _ := im.before.forwardLive(fw); !ok {
			continue
		}
		if ok, why := im.after.forwardLive(fw); !ok {
			im.r.LostForwards = append(im.r.LostForwards, fw.Name)
			im.loss("forward", fw.Name, why)
		}
	}
}

func (im *impact) gateways() {
	for _, nw := range im.m.Networks {
		if gw, d := im.isDown(nw.Gateway); d {
			im.r.LostGateways = append(im.r.LostGateways, nw.Name)
			im.loss("gateway", nw.Name, fmt.Sprintf("its NAT gateway %s is down", gw.Name))
		}
	}
	for _, n := range im.m.Nodes {
		if im.after.down[n] {
			continue
		}
		for _, pub := range im.idx.publicNets {
			for _, fam := range []int{4, 6} {
				if _, _, ok := im.before.sourceFor(n, pub, fam); !ok {
					continue
				}
				if _, _, ok := im.after.sourceFor(n, pub, fam); !ok {
					im.unreachable(n.Name, pub, fmt.Sprintf("egress-ipv%d", fam), im.after.noEgress(n, pub, fam))
				}
			}
		}
	}
}

// usePaths returns the paths n has to one of its uses, and whether the use
// names anything.
func (f *finder) usePaths(n *inventory.Node, use string) (kind string, paths []Path, notes []string) {
	if s := f.m.Service(use); s != nil {
		paths, notes = f.servicePaths(n, s)
		return "service", paths, notes
	}
	sites := f.idx.sitesForHost(use)
	if len(sites) == 0 {
		return "", nil, nil
	}
	for _, s := range sites {
		ps, ns := f.sitePaths(n, s)
		paths = append(paths, ps...)
		notes = append(notes, ns...)
	}
	return "site", paths, notes
}

func (im *impact) uses() {
	for _, n := range im.m.Nodes {
		if im.after.down[n] {
			continue
		}
		for _, use := range n.Uses {
			kind, bp, _ := im.before.usePaths(n, use)
			if kind == "" || !anyOpen(bp) {
				continue
			}
			_, ap, an := im.after.usePaths(n, use)
			if anyOpen(ap) {
				continue
			}
			im.unreachable(n.Name, use, kind, im.lostReason(bp, an))
		}
	}
}

// replicaLinked reports whether the two ends of a replica reach each other
// (over SSH, whichever end connects).
func (f *finder) replicaLinked(src, dst *inventory.Node) bool {
	if _, ok := f.reach(dst, src, 22, nil, false); ok {
		return true
	}
	_, ok := f.reach(src, dst, 22, nil, false)
	return ok
}

func (im *impact) replicas() {
	for _, rp := range im.m.Replicas {
		if rp.Source == nil || rp.Target == nil {
			continue
		}
		src, dst := im.m.Node(rp.Source.Node), im.m.Node(rp.Target.Node)
		if src == nil || dst == nil {
			continue
		}
		why := ""
		switch {
		case im.after.down[src]:
			why = "source " + im.downReason(src)
		case im.after.down[dst]:
			why = "target " + im.downReason(dst)
		case im.before.replicaLinked(src, dst) && !im.after.replicaLinked(src, dst):
			why = fmt.Sprintf("%s and %s no longer reach each other: %s", src.Name, dst.Name, im.after.whyNot(dst, src, src.Addresses))
		default:
			continue
		}
		im.r.StaleReplicas = append(im.r.StaleReplicas, rp.Name)
		im.loss("replica", rp.Name, why)
	}
}

// lossTitles are the section headings of WriteText, in order.
var lossTitles = []struct{ kind, title string }{
	{"node", "down nodes"},
	{"service", "lost services"},
	{"site", "lost sites"},
	{"route", "lost routes"},
	{"fallback", "lost static fallbacks"},
	{"tunnel", "lost tunnels"},
	{"forward", "lost forwards"},
	{"gateway", "lost NAT gateways"},
	{"replica", "stale replicas"},
}

// WriteText writes the report for a person: each kind of loss with its
// reasons, then who loses what.
func (r *ImpactReport) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "impact of %s down\n", strings.Join(r.Down, ", "))
	for _, t := range lossTitles {
		var items []Loss
		for _, l := range r.Losses {
			if l.Kind == t.kind {
				items = append(items, l)
			}
		}
		if len(items) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n%s (%d):\n", t.title, len(items))
		for _, l := range items {
			fmt.Fprintf(b, "  %s: %s\n", l.Name, l.Reason)
		}
	}
	if len(r.Unreachable) > 0 {
		fmt.Fprintf(b, "\nwho loses what (%d):\n", len(r.Unreachable))
		for _, u := range r.Unreachable {
			fmt.Fprintf(b, "  %s -> %s (%s): %s\n", u.Client, u.Target, u.Kind, u.Reason)
		}
	} else {
		b.WriteString("\nno surviving node loses anything it uses\n")
	}
	return b.Flush()
}
