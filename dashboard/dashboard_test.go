package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/inventory"
)

func offModel(t *testing.T) *inventory.Model {
	t.Helper()
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func byName(st *State) map[string]Node {
	out := map[string]Node{}
	for _, n := range st.Nodes {
		out[n.Name] = n
	}
	return out
}

// With ovh1 and its guests down, the cause is ovh1 alone, its guests are down
// with it, the sites of CT 101 are lost and docker-prod has lost MongoDB and
// Redis: what `offedge impact ovh1` says.
func TestComputeOVH1Down(t *testing.T) {
	m := offModel(t)
	down := map[string]bool{}
	for _, n := range m.Nodes {
		if n.Name == "ovh1" || (n.Host != nil && n.Host.Name == "ovh1") {
			down[n.Name] = true
		}
	}
	st, err := Compute(m, Live{Down: down, Drill: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Causes) != 1 || st.Causes[0] != "ovh1" {
		t.Fatalf("causes = %v, want [ovh1]", st.Causes)
	}
	nodes := byName(st)
	if nodes["ovh1"].State != "down" || nodes["ovh-proxy"].State != "host-down" {
		t.Errorf("ovh1 %s, ovh-proxy %s", nodes["ovh1"].State, nodes["ovh-proxy"].State)
	}
	lostSites := 0
	for _, s := range nodes["ovh-proxy"].Sites {
		if !s.Lost {
			t.Errorf("site %s of ovh-proxy not lost", s.Name)
		}
		lostSites++
	}
	if lostSites == 0 {
		t.Error("ovh-proxy has no sites")
	}
	dp := nodes["docker-prod"]
	if dp.State != "affected" {
		t.Errorf("docker-prod is %s, want affected", dp.State)
	}
	lost := map[string]bool{}
	for _, u := range dp.Lost {
		lost[u.Target] = true
	}
	if !lost["mongodb"] || !lost["redis"] {
		t.Errorf("docker-prod lost %v, want mongodb and redis", dp.Lost)
	}
	if nodes["off1"].State != "up" {
		t.Errorf("off1 is %s", nodes["off1"].State)
	}
	// Nothing down: nothing affected, no impact.
	st, err = Compute(m, Live{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Impact != nil || len(st.Causes) != 0 {
		t.Errorf("all up: impact %v causes %v", st.Impact, st.Causes)
	}
	for _, n := range st.Nodes {
		if n.State != "up" {
			t.Errorf("all up: %s is %s", n.Name, n.State)
		}
	}
}

func TestHandlerServesEmbeddedAssets(t *testing.T) {
	m := offModel(t)
	srv := httptest.NewServer(Handler(Source{Model: func() *inventory.Model { return m }, Nodes: func() (map[string]any, map[string]bool) { return nil, nil }}))
	defer srv.Close()
	for path, want := range map[string]string{
		"/":                       "<title>offedge dashboard</title>",
		"/dashboard/dash.js":      "/api/dashboard",
		"/dashboard/dash.css":     "g[data-node]",
		"/api/topology.svg":       `data-node="ovh-proxy"`,
		"/api/dashboard":          `"state":"up"`,
		"/api/impact?node=ovh1":   `"lost_sites"`,
		"/api/impact?node=nosuch": "unknown node",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		resp.Body.Close()
		if !strings.Contains(b.String(), want) {
			t.Errorf("GET %s: %d, no %q in %.200s", path, resp.StatusCode, want, b.String())
		}
	}
}
