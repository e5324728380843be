package topology

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/reach"
)

// Edge kinds of a [Graph].
const (
	EdgeIngress    = "ingress"     // internet -> a node serving public sites
	EdgeHTTP       = "http"        // a site's node -> the node an upstream member dials
	EdgeTunnel     = "tunnel"      // tunnel entrance -> exit (TLS)
	EdgeTunnelExit = "tunnel-exit" // tunnel exit -> the service's node
	EdgeForward    = "forward"     // forward node -> the service's node
	EdgeReplica    = "replica"     // replica source -> target
	EdgeUses       = "uses"        // a node -> the first hop towards what it uses
)

// Internet is the pseudo-node name of the public clients of sites.
const Internet = "internet"

// Graph is the picture of an inventory: providers, their servers, the
// guests inside them, and the traffic between nodes.
type Graph struct {
	// Groups are the providers in inventory order with their servers; a last
	// group "other" holds servers whose provider is unknown.
	Groups []*Group
	// Nodes are every node, in inventory order.
	Nodes []*GraphNode
	// Edges are in a fixed order: by kind, then as the inventory lists the
	// objects they come from. Parallel edges of one kind are merged, their
	// labels kept.
	Edges []*Edge
}

// Group is a provider and its servers.
type Group struct {
	Name    string
	Title   string
	Servers []*GraphNode
}

// GraphNode is a server or guest with what the picture shows about it.
type GraphNode struct {
	Name string
	// Kind is "server", "ct" or "vm"; ID is the Proxmox id of a guest.
	Kind     string
	ID       int
	Title    string
	Host     string
	Provider string
	Location string
	Hardware string
	Guests   []*GraphNode
	// Addresses render "10.1.0.101 (ovh-lan)"; Public says whether any is
	// on the public network.
	Addresses []string
	Public    bool
	// Services render "mongodb :27017".
	Services []string
	// Hosts are the site hostnames served, "[*.]example.org" standing for
	// example.org and *.example.org.
	Hosts []string
	// Gateway lists the private networks this node is the NAT gateway of.
	Gateway []string
}

// Edge is traffic from one node to another.
type Edge struct {
	Kind     string
	From, To string
	Labels   []string
}

// Build draws the graph of m.
func Build(m *inventory.Model) *Graph {
	g := &Graph{}
	byName := map[string]*GraphNode{}
	idx := reach.New(m)
	gw := map[string][]string{}
	for _, nw := range m.Networks {
		if nw.Gateway != "" {
			gw[nw.Gateway] = append(gw[nw.Gateway], nw.Name)
		}
	}
	// A node is also the gateway of the networks on which some address
	// names it as its own (ovh2 for its guests on ovh-lan).
	for _, n := range m.Nodes {
		for _, a := range n.Addresses {
			if g := m.GatewayOf(a); g != nil && !slices.Contains(gw[g.Name], a.Network) {
				gw[g.Name] = append(gw[g.Name], a.Network)
			}
		}
	}
	for _, n := range m.Nodes {
		gn := &GraphNode{Name: n.Name, Kind: n.Kind, Provider: n.Provider, Location: n.Location, Gateway: gw[n.Name]}
		if n.Server != nil {
			gn.Title, gn.Hardware = n.Server.Title, n.Server.Hardware
		}
		if n.Guest != nil {
			gn.Title, gn.ID = n.Guest.Title, n.Guest.ID
			if n.Host != nil {
				gn.Host = n.Host.Name
			}
		}
		for _, a := range n.Addresses {
			gn.Addresses = append(gn.Addresses, fmt.Sprintf("%s (%s)", a.IP, a.Network))
			gn.Public = gn.Public || m.IsPublic(a.Network)
		}
		for _, s := range idx.ServicesOn(n.Name) {
			gn.Services = append(gn.Services, fmt.Sprintf("%s :%d", s.Name, s.Port))
		}
		var hosts []string
		for _, s := range idx.SitesOn(n.Name) {
			hosts = append(hosts, s.Hosts...)
		}
		gn.Hosts = compactHosts(hosts)
		byName[n.Name] = gn
		g.Nodes = append(g.Nodes, gn)
	}
	for _, n := range g.Nodes {
		if h := byName[n.Host]; h != nil {
			h.Guests = append(h.Guests, n)
		}
	}
	groups := map[string]*Group{}
	for _, p := range m.Providers {
		title := p.Title
		if title == "" {
			title = p.Name
		}
		grp := &Group{Name: p.Name, Title: title}
		groups[p.Name] = grp
		g.Groups = append(g.Groups, grp)
	}
	var other *Group
	for _, n := range g.Nodes {
		if n.Kind != "server" {
			continue
		}
		grp := groups[n.Provider]
		if grp == nil {
			if other == nil {
				other = &Group{Name: "other", Title: "other"}
			}
			grp = other
		}
		grp.Servers = append(grp.Servers, n)
	}
	if other != nil {
		g.Groups = append(g.Groups, other)
	}
	g.Groups = slices.DeleteFunc(g.Groups, func(grp *Group) bool { return len(grp.Servers) == 0 })
	g.edges(m, idx)
	return g
}

// compactHosts keeps the order of hosts, writing "[*.]a.org" for a.org
// listed with *.a.org.
func compactHosts(hosts []string) []string {
	set := map[string]bool{}
	for _, h := range hosts {
		set[h] = true
	}
	var out []string
	emitted := map[string]bool{}
	for _, h := range hosts {
		base := strings.TrimPrefix(h, "*.")
		if set[base] && set["*."+base] {
			h = "[*.]" + base
		}
		if !emitted[h] {
			emitted[h] = true
			out = append(out, h)
		}
	}
	return out
}

func (g *Graph) edges(m *inventory.Model, f *reach.Engine) {
	type key struct{ kind, from, to string }
	at := map[key]*Edge{}
	add := func(kind, from, to, label string) {
		if from == "" || to == "" || from == to {
			return
		}
		k := key{kind, from, to}
		e := at[k]
		if e == nil {
			e = &Edge{Kind: kind, From: from, To: to}
			at[k] = e
			g.Edges = append(g.Edges, e)
		}
		if label != "" && !slices.Contains(e.Labels, label) {
			e.Labels = append(e.Labels, label)
		}
	}
	for _, s := range m.Sites {
		for _, l := range s.Listen {
			if m.IsPublic(l.Network) {
				add(EdgeIngress, Internet, s.Node, s.Name)
				break
			}
		}
	}
	for _, s := range m.Sites {
		for _, r := range s.Routes {
			up := r.Upstream
			if r.Static != nil {
				up = r.Static.Fallback
			}
			u := m.Upstream(up)
			if u == nil {
				continue
			}
			for _, us := range u.Servers {
				if n, _, _, _ := m.UpstreamServerTarget(us); n != nil {
					add(EdgeHTTP, s.Node, n.Name, u.Name)
				}
			}
		}
	}
	for _, t := range m.Tunnels {
		if t.Entrance == nil {
			continue
		}
		svc := m.Service(t.Service)
		for _, ex := range t.Exits {
			add(EdgeTunnel, t.Entrance.Node, ex.Node, fmt.Sprintf("%s :%d", t.Name, ex.Port))
			if svc != nil {
				add(EdgeTunnelExit, ex.Node, svc.Node, svc.Name)
			}
		}
	}
	for _, f := range m.Forwards {
		if s := m.Service(f.Service); s != nil && f.Listen != nil {
			add(EdgeForward, f.Node, s.Node, fmt.Sprintf("%s :%d", f.Name, f.Listen.Port))
		}
	}
	for _, r := range m.Replicas {
		if r.Source != nil && r.Target != nil {
			add(EdgeReplica, r.Source.Node, r.Target.Node, r.Name)
		}
	}
	for _, n := range m.Nodes {
		for _, use := range n.Uses {
			if s := m.Service(use); s != nil {
				if h, ok := f.FirstHop(n, s); ok {
					add(EdgeUses, n.Name, h.To.Name, use)
				}
				continue
			}
			_, paths, _ := f.UsePaths(n, use)
			for _, p := range paths {
				if p.Open() && len(p.Hops) > 0 {
					add(EdgeUses, n.Name, p.Hops[0].To.Name, use)
					break
				}
			}
		}
	}
	order := map[string]int{EdgeIngress: 0, EdgeHTTP: 1, EdgeTunnel: 2, EdgeTunnelExit: 3, EdgeForward: 4, EdgeReplica: 5, EdgeUses: 6}
	slices.SortStableFunc(g.Edges, func(a, b *Edge) int { return order[a.Kind] - order[b.Kind] })
}

// Label joins an edge's labels; replicas are counted past three.
func (e *Edge) Label() string {
	if e.Kind == EdgeReplica && len(e.Labels) > 3 {
		return fmt.Sprintf("%d replicas", len(e.Labels))
	}
	return strings.Join(e.Labels, ", ")
}

// edgeStyle is how each edge kind is drawn everywhere. In the SVG a kind
// is told by its colour, its line (dash) and its end marker, and each
// label starts with the kind's tag, so colour is never the only sign.
var edgeStyle = map[string]struct {
	color  string
	dashed bool
	width  float64
	title  string
	dash   string // SVG stroke-dasharray, "" for a solid line
	tag    string // the tag before the edge's label
	marker string // the end marker's shape: arrow, open, diamond, dot, bar
}{
	EdgeIngress:    {"#1f5fa0", false, 2.2, "HTTPS from the internet", "", "HTTPS", "arrow"},
	EdgeHTTP:       {"#1f77b4", false, 1.4, "HTTP route: site -> upstream", "", "HTTP", "arrow"},
	EdgeTunnel:     {"#1e7d1e", false, 2.8, "TLS tunnel: entrance -> exit", "", "TLS", "bar"},
	EdgeTunnelExit: {"#237a3b", false, 1.2, "tunnel exit -> service", "", "exit", "arrow"},
	EdgeForward:    {"#a84c00", false, 2.0, "TCP forward", "9 3 2 3", "FWD", "open"},
	EdgeReplica:    {"#7b4fa8", true, 1.6, "replica (ZFS / pvesr)", "6 4", "REPL", "diamond"},
	EdgeUses:       {"#666666", true, 1.2, "uses (first hop)", "2 3", "uses", "dot"},
}

// nodeCaption is "ct 101 ovh-proxy" for guests and the name for servers.
func (n *GraphNode) caption() string {
	if n.Kind == "server" {
		return n.Name
	}
	return fmt.Sprintf("%s %d %s", n.Kind, n.ID, n.Name)
}

func dotQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	s = strings.ReplaceAll(s, "\n", `\n`)
	return `"` + s + `"`
}

// WriteDOT writes the graph in Graphviz DOT: one cluster per provider, one
// per server holding its guests.
func (g *Graph) WriteDOT(w io.Writer) error {
	b := bufio.NewWriter(w)
	b.WriteString("digraph offedge {\n  rankdir=LR;\n  compound=true;\n  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n")
	fmt.Fprintf(b, "  %s [shape=ellipse, label=%s];\n", dotQuote(Internet), dotQuote("internet"))
	for gi, grp := range g.Groups {
		fmt.Fprintf(b, "  subgraph %s {\n    label=%s;\n    style=rounded;\n", dotQuote(fmt.Sprintf("cluster_p%d", gi)), dotQuote(grp.Title))
		for si, s := range grp.Servers {
			fmt.Fprintf(b, "    subgraph %s {\n      label=%s;\n", dotQuote(fmt.Sprintf("cluster_p%d_s%d", gi, si)), dotQuote(s.Name))
			fmt.Fprintf(b, "      %s [label=%s];\n", dotQuote(s.Name), dotQuote(dotLabel(s)))
			for _, gu := range s.Guests {
				fmt.Fprintf(b, "      %s [label=%s];\n", dotQuote(gu.Name), dotQuote(dotLabel(gu)))
			}
			b.WriteString("    }\n")
		}
		b.WriteString("  }\n")
	}
	for _, e := range g.Edges {
		st := edgeStyle[e.Kind]
		attrs := fmt.Sprintf("color=%s, penwidth=%s", dotQuote(st.color), strconv.FormatFloat(st.width, 'f', -1, 64))
		if st.dashed {
			attrs += ", style=dashed"
		}
		label := e.Label()
		if e.Kind == EdgeTunnel {
			label = "TLS " + label
		}
		if label != "" {
			attrs += ", label=" + dotQuote(label)
		}
		fmt.Fprintf(b, "  %s -> %s [%s];\n", dotQuote(e.From), dotQuote(e.To), attrs)
	}
	b.WriteString("}\n")
	return b.Flush()
}

func dotLabel(n *GraphNode) string {
	lines := []string{n.caption()}
	if len(n.Services) > 0 {
		lines = append(lines, strings.Join(n.Services, ", "))
	}
	if len(n.Hosts) > 0 {
		lines = append(lines, strings.Join(n.Hosts, ", "))
	}
	return strings.Join(lines, "\n")
}

// mermaidText escapes text for a quoted Mermaid label.
func mermaidText(s string) string {
	r := strings.NewReplacer("#", "#35;", `"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", "<br/>", "|", "#124;")
	return r.Replace(s)
}

// WriteMermaid writes the graph as a Mermaid flowchart: a subgraph per
// provider and per server, the guests inside, styled edges.
func (g *Graph) WriteMermaid(w io.Writer) error {
	b := bufio.NewWriter(w)
	b.WriteString("flowchart LR\n")
	ids := map[string]string{Internet: "internet"}
	for i, n := range g.Nodes {
		ids[n.Name] = fmt.Sprintf("n%d", i)
	}
	b.WriteString("  internet((\"internet\"))\n")
	for gi, grp := range g.Groups {
		fmt.Fprintf(b, "  subgraph p%d[\"%s\"]\n", gi, mermaidText(grp.Title))
		for si, s := range grp.Servers {
			fmt.Fprintf(b, "    subgraph p%ds%d[\"%s\"]\n", gi, si, mermaidText(s.Name))
			fmt.Fprintf(b, "      %s[\"%s\"]\n", ids[s.Name], mermaidText(mermaidLabel(s)))
			for _, gu := range s.Guests {
				fmt.Fprintf(b, "      %s[\"%s\"]\n", ids[gu.Name], mermaidText(mermaidLabel(gu)))
			}
			b.WriteString("    end\n")
		}
		b.WriteString("  end\n")
	}
	for _, e := range g.Edges {
		from, to := ids[e.From], ids[e.To]
		if from == "" || to == "" {
			continue
		}
		arrow := "-->"
		if edgeStyle[e.Kind].dashed {
			arrow = "-.->"
		}
		label := e.Label()
		if e.Kind == EdgeTunnel {
			label = "TLS " + label
		}
		if label != "" {
			fmt.Fprintf(b, "  %s %s|\"%s\"| %s\n", from, arrow, mermaidText(label), to)
		} else {
			fmt.Fprintf(b, "  %s %s %s\n", from, arrow, to)
		}
	}
	i := 0
	for _, e := range g.Edges {
		if ids[e.From] == "" || ids[e.To] == "" {
			continue
		}
		st := edgeStyle[e.Kind]
		fmt.Fprintf(b, "  linkStyle %d stroke:%s,stroke-width:%spx\n", i, st.color, strconv.FormatFloat(st.width, 'f', -1, 64))
		i++
	}
	return b.Flush()
}

func mermaidLabel(n *GraphNode) string {
	s := n.caption()
	if len(n.Services) > 0 {
		s += "\n" + strings.Join(n.Services, ", ")
	}
	return s
}
