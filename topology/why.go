package topology

import (
	"github.com/offedge/offedge/internal/suggest"

	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/reach"
)

// Explanation is the answer to "how does node From reach To?": for each
// destination To stands for (one service, the sites answering a hostname, or
// every service of a node), the paths hop by hop, and the reasons the other
// ways do not exist.
type Explanation struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Kind is what To named: "service", "site" (a hostname) or "node".
	Kind         string        `json:"kind"`
	Destinations []Destination `json:"destinations"`
}

// Destination is one service or site From tries to reach.
type Destination struct {
	// Kind is "service" or "site".
	Kind string `json:"kind"`
	// Name is the service or site name; Host the hostname asked for a site.
	Name string `json:"name"`
	Host string `json:"host,omitempty"`
	// Node is where the service runs or the site is served.
	Node string        `json:"node"`
	Port int           `json:"port,omitempty"`
	Pos  inventory.Pos `json:"-"`
	// Paths are every way there, open or blocked by an allow list.
	Paths []Path `json:"paths"`
	// Notes say why the other ways do not exist ("no shared network", "no
	// IPv6 egress", "its entrance is down").
	Notes []string `json:"notes"`
}

// Reachable reports whether some path to d is open.
func (d Destination) Reachable() bool { return reach.AnyOpen(d.Paths) }

// Reachable reports whether every destination has an open path.
func (e *Explanation) Reachable() bool {
	if len(e.Destinations) == 0 {
		return false
	}
	for _, d := range e.Destinations {
		if !d.Reachable() {
			return false
		}
	}
	return true
}

// Why explains how node from reaches to (from "internet", when no node has
// that name, is any client on the internet: [reach.Engine.Internet]): a service name, a site hostname
// (client -> the site's listener -> each upstream pool member -> its
// service, through a tunnel entrance when the member is a tunnel), or a node
// name (each of its services). A prefix "service:", "site:" (a site name or a
// hostname) or "node:" removes any ambiguity; without one a service name wins
// over a node name, which wins over a hostname.
//
// The error is only for names the inventory does not know, with a
// did-you-mean; an unreachable destination is an answer, not an error.
func Why(m *inventory.Model, from, to string) (*Explanation, error) {
	f := reach.New(m)
	src := m.Node(from)
	if src == nil && from == reach.InternetClient {
		src = f.Internet()
	}
	if src == nil {
		return nil, fmt.Errorf("unknown node %q%s", from, didYouMean(from, append(nodeNames(m), reach.InternetClient)))
	}
	e := &Explanation{From: from, To: to}
	kind, name, explicit := strings.Cut(to, ":")
	if !explicit || (kind != "service" && kind != "site" && kind != "node") {
		kind, name = "", to
	}
	if s := m.Service(name); s != nil && (kind == "" || kind == "service") {
		e.Kind = "service"
		e.Destinations = append(e.Destinations, serviceDest(f, src, s))
		return e, nil
	}
	if n := m.Node(name); n != nil && (kind == "" || kind == "node") {
		e.Kind = "node"
		for _, s := range f.ServicesOn(n.Name) {
			e.Destinations = append(e.Destinations, serviceDest(f, src, s))
		}
		return e, nil
	}
	if kind == "" || kind == "site" {
		sites := f.SitesForHost(name)
		host := name
		if len(sites) == 0 && kind == "site" {
			if s := m.Site(name); s != nil {
				sites = []*inventory.Site{s}
				host = firstHost(s)
			}
		}
		if len(sites) > 0 {
			e.Kind = "site"
			for _, s := range sites {
				paths, notes := f.SitePaths(src, s)
				e.Destinations = append(e.Destinations, Destination{Kind: "site", Name: s.Name, Host: host,
					Node: s.Node, Pos: s.Pos, Paths: paths, Notes: notes})
			}
			return e, nil
		}
	}
	var cands []string
	if kind == "" || kind == "service" {
		for _, s := range m.Services {
			cands = append(cands, s.Name)
		}
	}
	if kind == "" || kind == "node" {
		cands = append(cands, nodeNames(m)...)
	}
	if kind == "" || kind == "site" {
		for _, s := range m.Sites {
			for _, h := range s.Hosts {
				if !strings.HasPrefix(h, "*") {
					cands = append(cands, h)
				}
			}
		}
	}
	what := "service, node or site hostname"
	if kind != "" {
		what = kind
	}
	return nil, fmt.Errorf("unknown %s %q%s", what, name, didYouMean(name, cands))
}

func firstHost(s *inventory.Site) string {
	for _, h := range s.Hosts {
		if !strings.HasPrefix(h, "*") {
			return h
		}
	}
	if len(s.Hosts) > 0 {
		return s.Hosts[0]
	}
	return s.Name
}

func serviceDest(f *reach.Engine, from *inventory.Node, s *inventory.Service) Destination {
	paths, notes := f.ServicePaths(from, s)
	return Destination{Kind: "service", Name: s.Name, Node: s.Node, Port: s.Port, Pos: s.Pos, Paths: paths, Notes: notes}
}

func nodeNames(m *inventory.Model) []string {
	out := make([]string, len(m.Nodes))
	for i, n := range m.Nodes {
		out[i] = n.Name
	}
	return out
}

// didYouMean renders ` (did you mean "x"?)` for the closest candidate, or
// nothing when none is close.
func didYouMean(name string, cands []string) string {
	best, bestD := "", 1<<30
	for _, c := range cands {
		d := suggest.Distance(name, c)
		if d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	limit := max(2, len(name)/3)
	if best == "" || bestD > limit {
		// A prefix is close enough too ("mongo" for "mongodb").
		var pre []string
		for _, c := range cands {
			if len(name) >= 3 && strings.HasPrefix(c, name) {
				pre = append(pre, c)
			}
		}
		if len(pre) == 0 {
			return ""
		}
		sort.Strings(pre)
		best = pre[0]
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// WriteJSON writes the explanation as one JSON object: from, to, kind, a
// reachable verdict, and each destination with its position, verdict,
// paths (hops, and the typed block of a refused one) and notes.
func (e *Explanation) WriteJSON(w io.Writer) error {
	type dest struct {
		Destination
		Pos       string `json:"pos"`
		Reachable bool   `json:"reachable"`
	}
	out := struct {
		*Explanation
		Reachable    bool   `json:"reachable"`
		Destinations []dest `json:"destinations"`
	}{Explanation: e, Reachable: e.Reachable(), Destinations: []dest{}}
	for _, d := range e.Destinations {
		if d.Paths == nil {
			d.Paths = []Path{}
		}
		if d.Notes == nil {
			d.Notes = []string{}
		}
		out.Destinations = append(out.Destinations, dest{d, d.Pos.String(), d.Reachable()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteText writes the explanation for a person: each destination, its
// paths hop by hop (open, or the allow list refusing them, quoted with its
// position), then why the other ways do not exist.
func (e *Explanation) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "why %s -> %s (%s)\n", e.From, e.To, e.Kind)
	if len(e.Destinations) == 0 {
		fmt.Fprintf(b, "  %s runs no service\n", e.To)
	}
	for _, d := range e.Destinations {
		b.WriteString("\n")
		open, blocked := 0, 0
		for _, p := range d.Paths {
			if p.Open() {
				open++
			} else {
				blocked++
			}
		}
		verdict := "REACHABLE"
		if open == 0 {
			verdict = "UNREACHABLE"
		}
		switch d.Kind {
		case "service":
			fmt.Fprintf(b, "service %s on %s:%d (%s): %s", d.Name, d.Node, d.Port, d.Pos, verdict)
		default:
			fmt.Fprintf(b, "site %s (%s) on %s (%s): %s", d.Host, d.Name, d.Node, d.Pos, verdict)
		}
		fmt.Fprintf(b, ", %d open path(s), %d blocked\n", open, blocked)
		for i, p := range d.Paths {
			state := "open"
			if !p.Open() {
				state = "BLOCKED"
			}
			fmt.Fprintf(b, "  path %d, %s: %s\n", i+1, p.Title, state)
			for j, h := range p.Hops {
				fmt.Fprintf(b, "    %d. %s\n", j+1, h)
			}
			if p.Blocked != nil {
				fmt.Fprintf(b, "    refused: %s\n", p.Blocked)
			}
		}
		if len(d.Notes) > 0 {
			b.WriteString("  no way:\n")
			for _, n := range d.Notes {
				fmt.Fprintf(b, "    - %s\n", n)
			}
		}
	}
	return b.Flush()
}
