package topology

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/reach"
)

// ImpactReport says what becomes unreachable, and for whom, when some nodes
// are down. Every list is in inventory order, so reports are deterministic
// and a failure drill can check them item by item by connecting.
type ImpactReport struct {
	// Down are the nodes asked about; DownNodes adds the guests of the down
	// servers (a server down takes its guests down).
	Down      []string `json:"down"`
	DownNodes []string `json:"down_nodes"`
	// LostServices run on a down node.
	LostServices []string `json:"lost_services"`
	// LostSites are the hostnames (as the inventory writes them, wildcards
	// included) of sites served by a down node or whose "/" route lost
	// every upstream member.
	LostSites []string `json:"lost_sites"`
	// LostTunnels carried traffic before and cannot now: entrance down,
	// every exit down or out of reach, the service gone.
	LostTunnels []string `json:"lost_tunnels"`
	// LostForwards are forwards whose node or target is lost.
	LostForwards []string `json:"lost_forwards"`
	// LostGateways are private networks whose NAT gateway is down.
	LostGateways []string `json:"lost_gateways"`
	// StaleReplicas will miss their copies: source or target down, or the
	// two can no longer reach each other.
	StaleReplicas []string `json:"stale_replicas"`
	// Unreachable lists who loses what.
	Unreachable []Unreachable `json:"unreachable"`
	// Losses are every loss above with its reason, for people.
	Losses []Loss `json:"losses"`
}

// Unreachable is one client losing one target.
type Unreachable struct {
	// Client is a node name, or "internet" for a site's public clients.
	Client string `json:"client"`
	// Target is a service name, a site hostname, an upstream member
	// ("service blog", "tunnel robotoff", "node off1:443"), or "internet".
	Target string `json:"target"`
	// Kind is "service" or "site" (a node's uses), "site" with Client
	// "internet" (a lost site), "upstream" (a site's node losing a pool
	// member), "egress-ipv4" or "egress-ipv6" (a node losing the internet).
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

// Loss is one lost object and why.
type Loss struct {
	// Kind is "node", "service", "site", "route", "fallback", "tunnel",
	// "forward", "gateway" or "replica".
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
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
	idx := reach.New(m)
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
		for _, g := range idx.GuestsOf(n.Name) {
			down[g] = true
		}
	}
	im := &impact{m: m, r: r, asked: asked, down: down,
		before: idx, after: idx.Without(down)}
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
	r             *ImpactReport
	asked, down   map[*inventory.Node]bool
	before, after *reach.Engine
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
	return n, n != nil && im.down[n]
}

func (im *impact) nodes() {
	for _, n := range im.m.Nodes {
		if im.down[n] {
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
				if n != nil && im.down[n] {
					if !slices.Contains(out, n.Name) {
						out = append(out, n.Name)
					}
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
		if im.down[node] {
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
				bp, _ := im.before.MemberPaths(node, us)
				if !reach.AnyOpen(bp) {
					continue
				}
				wasLive = true
				ap, an := im.after.MemberPaths(node, us)
				if reach.AnyOpen(ap) {
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

func (im *impact) tunnels() {
	for _, tn := range im.m.Tunnels {
		lostCarrier(im, "tunnel", tn.Name, &im.r.LostTunnels, func(e *reach.Engine) (bool, string) { return e.TunnelCarries(tn) })
	}
}

func (im *impact) forwards() {
	for _, fw := range im.m.Forwards {
		lostCarrier(im, "forward", fw.Name, &im.r.LostForwards, func(e *reach.Engine) (bool, string) { return e.ForwardCarries(fw) })
	}
}

// lostCarrier reports a tunnel or forward that carried traffic before and
// does not with the nodes down.
func lostCarrier(im *impact, kind, name string, lost *[]string, carries func(*reach.Engine) (bool, string)) {
	if ok, _ := carries(im.before); !ok {
		return
	}
	if ok, why := carries(im.after); !ok {
		*lost = append(*lost, name)
		im.loss(kind, name, why)
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
		if im.down[n] {
			continue
		}
		for _, pub := range im.before.PublicNetworks() {
			for _, fam := range []int{4, 6} {
				if _, _, ok := im.before.Live().SourceFor(n, pub, fam); !ok {
					continue
				}
				if _, _, ok := im.after.Live().SourceFor(n, pub, fam); !ok {
					im.unreachable(n.Name, pub, fmt.Sprintf("egress-ipv%d", fam), im.after.NoEgress(n, pub, fam))
				}
			}
		}
	}
}

func (im *impact) uses() {
	for _, n := range im.m.Nodes {
		if im.down[n] {
			continue
		}
		for _, use := range n.Uses {
			// Most uses survive: answer those without building paths and
			// their explanations, which only a lost use needs.
			if s := im.m.Service(use); s != nil && (!im.before.Usable(n, s) || im.after.Usable(n, s)) {
				continue
			}
			kind, bp, _ := im.before.UsePaths(n, use)
			if kind == "" || !reach.AnyOpen(bp) {
				continue
			}
			_, ap, an := im.after.UsePaths(n, use)
			if reach.AnyOpen(ap) {
				continue
			}
			im.unreachable(n.Name, use, kind, im.lostReason(bp, an))
		}
	}
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
		case im.down[src]:
			why = "source " + im.downReason(src)
		case im.down[dst]:
			why = "target " + im.downReason(dst)
		case im.before.Linked(src, dst) && !im.after.Linked(src, dst):
			why = fmt.Sprintf("%s and %s no longer reach each other: %s", src.Name, dst.Name, im.after.WhyNot(dst, src, src.Addresses))
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

// WriteJSON writes the report as one JSON object; every list is present,
// empty rather than null, so that a consumer can index it directly.
func (r *ImpactReport) WriteJSON(w io.Writer) error {
	out := *r
	for _, l := range []*[]string{&out.Down, &out.DownNodes, &out.LostServices, &out.LostSites, &out.LostTunnels,
		&out.LostForwards, &out.LostGateways, &out.StaleReplicas} {
		if *l == nil {
			*l = []string{}
		}
	}
	if out.Unreachable == nil {
		out.Unreachable = []Unreachable{}
	}
	if out.Losses == nil {
		out.Losses = []Loss{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
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
