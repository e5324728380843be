package plan

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/inventory"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./plan -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (run go test ./plan -update after checking the change):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first differing lines, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 12; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

// TestOpenFoodFactsPlans pins the plan of every node of the embedded
// inventory, as text and as JSON.
func TestOpenFoodFactsPlans(t *testing.T) {
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Nodes {
		t.Run(n.Name, func(t *testing.T) {
			p, err := Compile(m, n.Name, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var txt bytes.Buffer
			if err := p.WriteText(&txt); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "openfoodfacts", n.Name+".txt"), txt.Bytes())
			js, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "openfoodfacts", n.Name+".json"), append(js, '\n'))
		})
	}
}

func TestCompileSmall(t *testing.T) {
	m, err := inventory.LoadPath("../inventory/testdata/small")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(m, "a1", Options{Root: "/lab/a1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Listeners) != 1 || p.Listeners[0].Kind != KindTunnelExit {
		t.Fatalf("a1 listeners: %+v; want one tunnel exit", p.Listeners)
	}
	ex := p.Listeners[0]
	if ex.Addr.String() != "192.0.2.1:27017" || ex.Exit.Tunnels[0].Target != "10.1.0.102:27017" {
		t.Fatalf("exit %s -> %s; want 192.0.2.1:27017 -> 10.1.0.102:27017", ex.Addr, ex.Exit.Tunnels[0].Target)
	}
	// The exit admits what the entrance presents on the internet: b1's NAT address.
	if got := ex.ACL.String(); got != "allow 198.51.100.1/32 (b-client (tunnel db-beta)), deny all others" {
		t.Fatalf("exit acl %q", got)
	}
	if got := p.Resources.Files(ex.Exit.Tunnels[0].Auth).PSKFile; got != "/lab/a1/etc/offedge/psk/db-beta.psk" {
		t.Fatalf("psk path %q; want it under the root", got)
	}
	p, err = Compile(m, "b-client", Options{})
	if err != nil {
		t.Fatal(err)
	}
	en := p.Listeners[0]
	if en.Kind != KindTunnelEntrance || en.Entrance.Exits[0] != "192.0.2.1:27017" || en.Public {
		t.Fatalf("entrance %+v", en)
	}
	if got := en.ACL.String(); got != "allow 10.1.0.201/32 (b-app), deny all others" {
		t.Fatalf("entrance acl %q", got)
	}
	d := p.Dials[en.Addr]
	_ = d
	if d := p.Dials[ex.Addr]; d.Network != "internet" || d.Via != "b1" || d.Source.String() != "198.51.100.1" {
		t.Fatalf("dial to the exit: %+v; want internet via b1 from 198.51.100.1", d)
	}
}

func TestCompileErrors(t *testing.T) {
	m, err := inventory.LoadPath("../inventory/testdata/small")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(m, "nosuch", Options{}); err == nil || !strings.Contains(err.Error(), `unknown node "nosuch"`) {
		t.Fatalf("got %v", err)
	}
}

// The plan carries what the proxy runs with: per-server max_conns, the
// pool's queue with its timeout resolved, and which routes stream bodies.
func TestCompileUpstreamCapsAndBuffering(t *testing.T) {
	inv := `providers: [{name: p, locations: [{name: l}]}]
networks:
  - {name: internet, kind: public}
  - {name: lan, kind: private}
servers:
  - name: s1
    provider: p
    mode: bare-metal
    addresses: [{network: lan, ip: 10.0.0.1}, {network: internet, ip: 192.0.2.1}]
services:
  - {name: app, node: s1, port: 8080, protocol: http}
upstreams:
  - {name: capped, queue: 10, servers: [{service: app, max_conns: 4}]}
  - {name: open, servers: [{service: app}]}
sites:
  - name: w
    node: s1
    hosts: [w.example]
    listen: [{network: internet, port: 80}]
    routes:
      - {path: /, upstream: capped}
      - {path: /upload/, upstream: open, request_buffering: false}
`
	p, text := compileText(t, inv, "s1")
	for _, want := range []string{"upstream capped [127.0.0.1:8080 max_conns 4], queue 10 for 1m0s", "/ -> upstream capped", "/upload/ -> upstream open, bodies streamed"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan text lacks %q:\n%s", want, text)
		}
	}
	var routes []httpedge.Route
	for _, l := range p.Listeners {
		if l.HTTP != nil {
			for _, s := range l.HTTP.Sites {
				routes = append(routes, s.Routes...)
			}
		}
	}
	if len(routes) != 2 {
		t.Fatalf("%d routes, want 2", len(routes))
	}
	for _, r := range routes {
		switch r.Path {
		case "/":
			u := p.Resources.Upstreams[r.Upstream]
			if u.Servers[0].MaxConns != 4 || u.Queue != 10 || u.QueueTimeout != DefaultQueueTimeout || r.StreamRequestBody {
				t.Errorf("capped route: max_conns %d queue %d timeout %s stream %v", u.Servers[0].MaxConns, u.Queue, u.QueueTimeout, r.StreamRequestBody)
			}
		case "/upload/":
			if u := p.Resources.Upstreams[r.Upstream]; !r.StreamRequestBody || u.Servers[0].MaxConns != 0 || u.QueueTimeout != 0 {
				t.Errorf("upload route: stream %v, upstream %+v", r.StreamRequestBody, u)
			}
		}
	}
}

// TestHSTSDefaultAndOptOut: a site on a TLS listener gets the default
// Strict-Transport-Security unless its tls block says hsts: false; its
// plain listener (redirect_https) never does.
func TestHSTSDefaultAndOptOut(t *testing.T) {
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hsts := func() map[bool]string {
		p, err := Compile(m, "off1", Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[bool]string{}
		for _, l := range p.Listeners {
			if l.HTTP == nil {
				continue
			}
			for _, s := range l.HTTP.Sites {
				if s.Name == "off" {
					got[l.HTTP.TLS] = s.HSTS
				}
			}
		}
		return got
	}
	if got := hsts(); got[true] != httpedge.DefaultHSTS || got[false] != "" {
		t.Fatalf("default: %q on TLS, %q on plain; want %q and none", got[true], got[false], httpedge.DefaultHSTS)
	}
	off := false
	m.Site("off").TLS.HSTS = &off
	if got := hsts(); got[true] != "" {
		t.Fatalf("hsts: false still sends %q", got[true])
	}
}

// TestUpstreamsDeclaredOnce: ovh-proxy's four HTTP listeners name the same
// upstreams; the plan declares each once (it used to copy each into every
// route of every listener: 36 copies of 8 upstreams) and ovh3's image cache
// is one cache for ports 80 and 443.
func TestUpstreamsDeclaredOnce(t *testing.T) {
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(m, "ovh-proxy", Options{})
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if n, want := strings.Count(string(js), `"servers":`), len(p.Resources.Upstreams); n != want || want < 8 {
		t.Errorf("the plan holds %d server lists for %d upstreams", n, want)
	}
	named := map[string]int{}
	for _, l := range p.Listeners {
		if l.HTTP == nil {
			continue
		}
		for _, s := range l.HTTP.Sites {
			for _, r := range s.Routes {
				if r.Upstream != "" {
					if _, ok := p.Resources.Upstreams[r.Upstream]; !ok {
						t.Errorf("route %s names undeclared upstream %q", r.Path, r.Upstream)
					}
					named[r.Upstream]++
				}
			}
		}
	}
	if len(named) != len(p.Resources.Upstreams) {
		t.Errorf("routes name %d upstreams, the plan declares %d", len(named), len(p.Resources.Upstreams))
	}

	p3, err := Compile(m, "ovh3", Options{})
	if err != nil {
		t.Fatal(err)
	}
	caches := map[string]int{}
	for _, l := range p3.Listeners {
		if l.HTTP == nil {
			continue
		}
		for _, s := range l.HTTP.Sites {
			for _, r := range s.Routes {
				if r.Static != nil && r.Static.Cache != "" {
					caches[r.Static.Cache]++
				}
			}
		}
	}
	if len(p3.Resources.Caches) != 1 || len(caches) != 1 {
		t.Fatalf("ovh3 declares caches %v, routes name %v: want one image cache", p3.Resources.Caches, caches)
	}
	for name, n := range caches {
		if n < 2 {
			t.Errorf("cache %q is named by %d listener(s); want ports 80 and 443 sharing it", name, n)
		}
	}
}

// TestSecrets lists each secret file once with the tunnel ends using it:
// off2 holds the exits of the Open Food Facts tunnels.
func TestSecrets(t *testing.T) {
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(m, "off2", Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := p.Secrets()
	if len(got) == 0 {
		t.Fatal("off2 holds tunnel exits but its plan lists no secret")
	}
	seen := map[string]bool{}
	for _, s := range got {
		if seen[s.Path] || s.Kind != SecretPSK || len(s.Uses) == 0 {
			t.Errorf("secret %+v: want each path once, a psk, with its uses", s)
		}
		seen[s.Path] = true
		for _, u := range s.Uses {
			if !strings.HasSuffix(u, " exit") {
				t.Errorf("off2 secret %s used by %q; off2 holds exits", s.Path, u)
			}
		}
	}
	if !seen["/etc/offedge/psk/redis-ovh.psk"] {
		t.Errorf("off2's secrets %v lack redis-ovh's", got)
	}
}
