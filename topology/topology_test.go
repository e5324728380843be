package topology

import (
	"github.com/offedge/offedge/internal/testutil"

	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/offedge/offedge/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func loadFixture(t testing.TB) *inventory.Model {
	t.Helper()
	m, err := inventory.LoadPath("testdata/fixture")
	if err != nil {
		t.Fatalf("loading the fixture:\n%v", err)
	}
	return m
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %q\nwant: %q\n(run go test -update if the change is intended)", name, i+1, g, w)
			}
		}
	}
}

func render(t *testing.T, write func(io.Writer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func hopNames(p Path) []string {
	var out []string
	for i, h := range p.Hops {
		if i == 0 {
			out = append(out, h.From.Name)
		}
		out = append(out, h.To.Name)
	}
	return out
}

func TestWhy(t *testing.T) {
	m := loadFixture(t)
	tests := []struct {
		name, from, to string
		kind           string
		reachable      bool
		// open lists the hop chains of the open paths, blocked of the refused.
		open, blocked [][]string
		// text must appear in the text rendering.
		text []string
	}{
		{
			name: "via tunnel and NAT", from: "c1-app", to: "db", kind: "service", reachable: true,
			open: [][]string{{"c1-app", "c1-tun", "h1", "h1"}},
			text: []string{"via c1 (NAT) [tunnel db-cloud, TLS 1.3]",
				"no shared network: home-lan (10.0.0.10) is private and c1-app has no address on it"},
		},
		{
			name: "blocked by a tunnel allow list", from: "c1-app", to: "cache", kind: "service",
			blocked: [][]string{{"c1-app", "c1-tun"}},
			text:    []string{`refused: tunnel "cache-cloud" entrance at testdata/fixture/inventory.yaml:138:5 allows [c1-proxy]; c1-app (10.1.0.201 on cloud-lan) is not admitted`},
		},
		{
			name: "IPv6-only service from an IPv4-only node", from: "c1-app", to: "status", kind: "service",
			text: []string{"c1-app has no IPv6 egress (no public IPv6 address, and its NAT gateway c1 has no public IPv6 address)"},
		},
		{
			name: "IPv4-only node behind an IPv6-only gateway", from: "v1-app", to: "status", kind: "service",
			text: []string{"v1-app has no IPv6 address on v6-lan to use its NAT gateway v1"},
		},
		{
			name: "direct, and a forward blocked by its allow list", from: "c1-proxy", to: "smtp", kind: "service", reachable: true,
			open:    [][]string{{"c1-proxy", "c1-mail"}},
			blocked: [][]string{{"c1-proxy", "c1", "c1-mail"}},
			text:    []string{`refused: forward "smtp" at testdata/fixture/inventory.yaml:154:5 allows [h1]; c1-proxy (203.0.113.101 on internet) is not admitted`},
		},
		{
			name: "no IPv4 egress to a forward", from: "v1-exit", to: "smtp", kind: "service",
			text: []string{"v1-exit has no IPv4 egress (no public IPv4 address, and its NAT gateway v1 has no public IPv4 address)"},
		},
		{
			name: "forward", from: "h1", to: "smtp", kind: "service", reachable: true,
			open: [][]string{{"h1", "c1", "c1-mail"}},
		},
		{
			name: "explicit service: prefix", from: "h1", to: "service:smtp", kind: "service", reachable: true,
			open: [][]string{{"h1", "c1", "c1-mail"}},
		},
		{
			name: "site through its proxy", from: "h1", to: "web.example.org", kind: "site", reachable: true,
			open: [][]string{{"h1", "c1-proxy", "c1-web"}},
		},
		{
			name: "site by wildcard", from: "h1", to: "www.web.example.org", kind: "site", reachable: true,
			open: [][]string{{"h1", "c1-proxy", "c1-web"}},
		},
		{
			name: "site through a tunnel member", from: "c1-app", to: "api.example.org", kind: "site", reachable: true,
			open: [][]string{{"c1-app", "c1-proxy", "c1-proxy", "v1-exit", "v1-app"}},
			text: []string{"[tunnel api-v6 entrance, clear text]", "from 198.51.100.1 via c1 (NAT) [site api]"},
		},
		{
			name: "a node: each of its services", from: "c1-app", to: "h1", kind: "node",
			open:    [][]string{{"c1-app", "c1-tun", "h1", "h1"}},
			blocked: [][]string{{"c1-app", "c1-tun"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Why(m, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != tc.kind {
				t.Errorf("kind %q, want %q", e.Kind, tc.kind)
			}
			if e.Reachable() != tc.reachable {
				t.Errorf("reachable %v, want %v", e.Reachable(), tc.reachable)
			}
			var open, blocked [][]string
			for _, d := range e.Destinations {
				for _, p := range d.Paths {
					if p.Open() {
						open = append(open, hopNames(p))
					} else {
						blocked = append(blocked, hopNames(p))
					}
				}
			}
			if !slices.EqualFunc(open, tc.open, slices.Equal) {
				t.Errorf("open paths %v, want %v", open, tc.open)
			}
			if !slices.EqualFunc(blocked, tc.blocked, slices.Equal) {
				t.Errorf("blocked paths %v, want %v", blocked, tc.blocked)
			}
			text := string(render(t, e.WriteText))
			for _, s := range tc.text {
				if !strings.Contains(text, s) {
					t.Errorf("text lacks %q:\n%s", s, text)
				}
			}
		})
	}
}

func TestWhyUnknownNames(t *testing.T) {
	m := loadFixture(t)
	tests := []struct{ from, to, want string }{
		{"c1-ap", "db", `unknown node "c1-ap" (did you mean "c1-app"?)`},
		{"c1-app", "dbb", `unknown service, node or site hostname "dbb" (did you mean "db"?)`},
		{"c1-app", "web.exemple.org", `(did you mean "web.example.org"?)`},
		{"c1-app", "node:db", `unknown node "db"`},
		{"c1-app", "nothing-like-it-at-all", `unknown service, node or site hostname "nothing-like-it-at-all"`},
	}
	for _, tc := range tests {
		_, err := Why(m, tc.from, tc.to)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Why(%s, %s): error %v, want %q", tc.from, tc.to, err, tc.want)
		}
	}
	if _, err := Why(m, "c1-app", "nothing-like-it-at-all"); err != nil && strings.Contains(err.Error(), "did you mean") {
		t.Errorf("suggested a far name: %v", err)
	}
}

func TestImpact(t *testing.T) {
	m := loadFixture(t)
	type lists struct {
		down, services, sites, tunnels, forwards, gateways, replicas []string
		unreachable                                                  []string // "client -> target (kind)"
	}
	tests := []struct {
		nodes []string
		want  lists
	}{
		{[]string{"c1"}, lists{
			down:     []string{"c1", "c1-proxy", "c1-mail", "c1-tun", "c1-web", "c1-app"},
			services: []string{"smtp", "web"},
			sites:    []string{"web.example.org", "*.web.example.org", "api.example.org"},
			tunnels:  []string{"db-cloud", "cache-cloud", "api-v6"},
			forwards: []string{"smtp"},
			gateways: []string{"cloud-lan"},
			replicas: []string{"data-c1", "data-v1", "proxy-v1"},
			unreachable: []string{
				"internet -> web.example.org (site)", "internet -> *.web.example.org (site)", "internet -> api.example.org (site)",
				"h1 -> smtp (service)", "h1 -> web.example.org (site)"},
		}},
		{[]string{"c1-tun"}, lists{
			down:        []string{"c1-tun"},
			tunnels:     []string{"db-cloud", "cache-cloud"},
			unreachable: []string{"c1-app -> db (service)"},
		}},
		{[]string{"v1"}, lists{
			down:     []string{"v1", "v1-exit", "v1-app"},
			services: []string{"api", "status"},
			sites:    []string{"api.example.org"},
			tunnels:  []string{"api-v6"},
			gateways: []string{"v6-lan"},
			replicas: []string{"data-v1", "proxy-v1"},
			unreachable: []string{"c1-proxy -> tunnel api-v6 (upstream)", "internet -> api.example.org (site)",
				"c1-app -> api.example.org (site)"},
		}},
		{[]string{"h1"}, lists{
			down:        []string{"h1"},
			services:    []string{"db", "cache"},
			tunnels:     []string{"db-cloud", "cache-cloud"},
			replicas:    []string{"data-c1"},
			unreachable: []string{"c1-app -> db (service)"},
		}},
		{[]string{"c1-proxy", "v1-exit"}, lists{
			down:     []string{"c1-proxy", "v1-exit"},
			services: []string{"status"},
			sites:    []string{"web.example.org", "*.web.example.org", "api.example.org"},
			tunnels:  []string{"api-v6"},
			unreachable: []string{"internet -> web.example.org (site)", "internet -> *.web.example.org (site)",
				"internet -> api.example.org (site)", "h1 -> web.example.org (site)", "c1-app -> api.example.org (site)"},
		}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.nodes, "+"), func(t *testing.T) {
			r, err := Impact(m, tc.nodes...)
			if err != nil {
				t.Fatal(err)
			}
			var un []string
			for _, u := range r.Unreachable {
				if strings.HasPrefix(u.Kind, "egress") {
					continue
				}
				un = append(un, u.Client+" -> "+u.Target+" ("+u.Kind+")")
			}
			check := func(what string, got, want []string) {
				if !slices.Equal(got, want) {
					t.Errorf("%s: got %q, want %q", what, got, want)
				}
			}
			check("down nodes", r.DownNodes, tc.want.down)
			check("lost services", r.LostServices, tc.want.services)
			check("lost sites", r.LostSites, tc.want.sites)
			check("lost tunnels", r.LostTunnels, tc.want.tunnels)
			check("lost forwards", r.LostForwards, tc.want.forwards)
			check("lost gateways", r.LostGateways, tc.want.gateways)
			check("stale replicas", r.StaleReplicas, tc.want.replicas)
			check("unreachable", un, tc.want.unreachable)
		})
	}
	if _, err := Impact(m, "c2"); err == nil || !strings.Contains(err.Error(), `did you mean "c1"?`) {
		t.Errorf("unknown node: %v", err)
	}
	if _, err := Impact(m); err == nil {
		t.Error("no node: no error")
	}
}

func TestGolden(t *testing.T) {
	m := loadFixture(t)
	for _, q := range [][2]string{{"c1-app", "db"}, {"c1-app", "cache"}, {"c1-app", "status"}, {"c1-app", "api.example.org"}} {
		e, err := Why(m, q[0], q[1])
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "why-"+q[0]+"-"+strings.ReplaceAll(q[1], ".", "_")+".txt", render(t, e.WriteText))
	}
	for _, n := range []string{"c1", "v1"} {
		r, err := Impact(m, n)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "impact-"+n+".txt", render(t, r.WriteText))
	}
	g := Build(m)
	golden(t, "graph.dot", render(t, g.WriteDOT))
	golden(t, "graph.mmd", render(t, g.WriteMermaid))
	// The SVG is held to properties, not a snapshot: svg_test.go.
}

// TestSVGWellFormed parses the SVG as XML, so escaping mistakes (the
// fixture has a title with <, > and &) fail here.
func TestSVGWellFormed(t *testing.T) {
	g := Build(loadFixture(t))
	out := render(t, g.WriteSVG)
	d := xml.NewDecoder(bytes.NewReader(out))
	texts := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "text" {
			texts++
		}
	}
	if !bytes.Contains(out, []byte("application &lt;prod&gt; &amp; &quot;co&quot;")) {
		t.Error("the guest title with markup characters is missing or not escaped")
	}
	if texts < 20 {
		t.Errorf("only %d text elements", texts)
	}
	if again := render(t, g.WriteSVG); !bytes.Equal(out, again) {
		t.Error("two renderings differ")
	}
}

// TestDOTValid runs graphviz on the DOT output when it is installed.
func TestDOTValid(t *testing.T) {
	dot := testutil.RequireBinary(t, "dot") // graphviz: a test tool only, never needed at run time
	out := render(t, Build(loadFixture(t)).WriteDOT)
	cmd := exec.Command(dot, "-Tsvg", "-o", os.DevNull)
	cmd.Stdin = bytes.NewReader(out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dot rejects the output: %v\n%s", err, msg)
	}
}

func TestGraph(t *testing.T) {
	g := Build(loadFixture(t))
	var groups []string
	for _, grp := range g.Groups {
		var servers []string
		for _, s := range grp.Servers {
			servers = append(servers, s.Name)
		}
		groups = append(groups, grp.Name+":"+strings.Join(servers, ","))
	}
	if want := []string{"home:h1", "cloud:c1", "v6:v1"}; !slices.Equal(groups, want) {
		t.Errorf("groups %v, want %v", groups, want)
	}
	var edges []string
	for _, e := range g.Edges {
		edges = append(edges, e.Kind+" "+e.From+"->"+e.To+" "+strings.Join(e.Labels, "|"))
	}
	want := []string{
		"ingress internet->c1-proxy web|api",
		"http c1-proxy->c1-web web",
		"tunnel c1-tun->h1 db-cloud :27017|cache-cloud :6379",
		"tunnel c1-proxy->v1-exit api-v6 :16000",
		"tunnel-exit v1-exit->v1-app api",
		"forward c1->c1-mail smtp :26",
		"replica h1->c1 data-c1",
		"replica c1->v1 data-v1|proxy-v1",
		"uses h1->c1 smtp",
		"uses h1->c1-proxy web.example.org",
		"uses c1-app->c1-tun db",
		"uses c1-app->c1-proxy api.example.org",
	}
	if !slices.Equal(edges, want) {
		t.Errorf("edges:\n%s\nwant:\n%s", strings.Join(edges, "\n"), strings.Join(want, "\n"))
	}
	mmd := string(render(t, g.WriteMermaid))
	for _, s := range []string{"flowchart LR\n", `application #lt;prod#gt; & #quot;co#quot;`, "-.->"} {
		if s == `application #lt;prod#gt; & #quot;co#quot;` {
			continue // guest titles are not in the Mermaid labels
		}
		if !strings.Contains(mmd, s) {
			t.Errorf("mermaid lacks %q", s)
		}
	}
	if strings.Count(mmd, "subgraph") != strings.Count(mmd, "\n    end\n")+strings.Count(mmd, "\n  end\n") {
		t.Error("unbalanced subgraph/end")
	}
}

func TestCompactHosts(t *testing.T) {
	got := compactHosts([]string{"a.org", "*.a.org", "b.org", "*.c.org", "a.org"})
	if want := []string{"[*.]a.org", "b.org", "*.c.org"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestMermaidEscape(t *testing.T) {
	if got, want := mermaidText(`a "b" <c> #1 |x|`), `a #quot;b#quot; #lt;c#gt; #35;1 #124;x#124;`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestWhyJSON: the JSON answer carries the refusal as data (kind, name,
// position, list, refused node, source), not only as text.
func TestWhyJSON(t *testing.T) {
	m := loadFixture(t)
	ex, err := Why(m, "c1-app", "cache")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := ex.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Reachable    bool `json:"reachable"`
		Destinations []struct {
			Pos   string   `json:"pos"`
			Notes []string `json:"notes"`
			Paths []struct {
				Open    bool `json:"open"`
				Hops    []struct{ From, To, Kind, Via, Network, Addr string }
				Blocked *struct {
					Kind, Name, Pos, Node, Source, Network, Reason string
					Allow                                          []string
				} `json:"blocked"`
			} `json:"paths"`
		} `json:"destinations"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.Reachable || len(got.Destinations) != 1 || len(got.Destinations[0].Paths) != 1 {
		t.Fatalf("want one unreachable destination with one path:\n%s", b.String())
	}
	p := got.Destinations[0].Paths[0]
	blk := p.Blocked
	if p.Open || blk == nil || blk.Kind != "tunnel" || blk.Name != "cache-cloud" || blk.Pos != m.Tunnel("cache-cloud").Pos.String() ||
		blk.Node != "c1-app" || blk.Source != "10.1.0.201" || blk.Network != "cloud-lan" || !slices.Equal(blk.Allow, []string{"c1-proxy"}) {
		t.Errorf("block: %+v\n%s", blk, b.String())
	}
	if len(p.Hops) != 1 || p.Hops[0].From != "c1-app" || p.Hops[0].To != "c1-tun" || p.Hops[0].Kind != "entrance" || p.Hops[0].Addr != "10.1.0.113:6379" {
		t.Errorf("hops: %+v", p.Hops)
	}
	if got.Destinations[0].Pos == "" || len(got.Destinations[0].Notes) == 0 {
		t.Errorf("destination lacks its position or notes:\n%s", b.String())
	}
}

// TestImpactJSON: every list is present (empty, not null) and the losses
// keep their kinds.
func TestImpactJSON(t *testing.T) {
	r, err := Impact(loadFixture(t), "v1")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"down", "down_nodes", "lost_services", "lost_sites", "lost_tunnels", "lost_forwards", "lost_gateways", "stale_replicas", "unreachable", "losses"} {
		if v, ok := got[k]; !ok || string(v) == "null" {
			t.Errorf("%s: %s", k, v)
		}
	}
	if string(got["lost_forwards"]) != "[]" {
		t.Errorf("lost_forwards = %s; want []", got["lost_forwards"])
	}
	if !strings.Contains(string(got["unreachable"]), `"client": "c1-proxy"`) {
		t.Errorf("unreachable: %s", got["unreachable"])
	}
}

// TestWhyFromTheInternet: "internet" is any client on the internet, admitted
// only by lists admitting everyone.
func TestWhyFromTheInternet(t *testing.T) {
	m := loadFixture(t)
	ex, err := Why(m, "internet", "api.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !ex.Reachable() || ex.Destinations[0].Paths[0].Hops[0].From.Name != "internet" {
		t.Errorf("the internet does not reach api.example.org: %+v", ex)
	}
	ex, err = Why(m, "internet", "smtp")
	if err != nil {
		t.Fatal(err)
	}
	if ex.Reachable() {
		t.Error("the internet passes forward smtp's allow list [h1]")
	}
	if _, err := Why(m, "internt", "smtp"); err == nil || !strings.Contains(err.Error(), `did you mean "internet"`) {
		t.Errorf("misspelt internet: %v", err)
	}
}
