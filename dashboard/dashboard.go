// Package dashboard serves the estate at a glance: the topology drawn by
// offedge's own renderer, coloured live by each node's state, the causes of
// a failure and their consequences (the same topology.Impact reasoning as
// `offedge impact` and the alert inhibitions), and, in the lab, the failure
// drill as buttons. The page is plain HTML, CSS and JavaScript embedded in
// the binary: no CDN, no build step, it works offline.
package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"slices"
	"sync"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/topology"
)

//go:embed assets
var assets embed.FS

// Source is what the dashboard shows.
type Source struct {
	// Model returns the inventory the estate runs now (it changes on reload).
	Model func() *inventory.Model
	// Nodes returns each node's live status by node name (any JSON value:
	// listeners, counters, probes) and whether the node is down now.
	Nodes func() (status map[string]any, down map[string]bool)
	// Drill, when true, shows the buttons that take a node down and up
	// (POST /api/nodes/{name}/down and /up, served beside the dashboard).
	Drill bool
}

// State is the JSON the page polls (GET /api/dashboard).
type State struct {
	// Causes are the down nodes whose host is not down: what an operator
	// must bring back. Guests of a down server are down as a consequence.
	Causes []string `json:"causes"`
	Drill  bool     `json:"drill"`
	Nodes  []Node   `json:"nodes"`
	// Impact is topology.Impact of Causes, nil when nothing is down.
	Impact *topology.ImpactReport `json:"impact"`
}

// Node is one node as the page draws it.
type Node struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Host     string `json:"host,omitempty"`
	Provider string `json:"provider,omitempty"`
	// State is "up", "down" (the cause), "host-down" (its server is down)
	// or "affected" (up, but it has lost something it uses).
	State string `json:"state"`
	Sites []Site `json:"sites"`
	// Lost are the services and sites this node uses and cannot reach now.
	Lost   []topology.Unreachable `json:"lost"`
	Status any                    `json:"status,omitempty"`
}

// Site is one site of a node and whether it is lost.
type Site struct {
	Name  string   `json:"name"`
	Hosts []string `json:"hosts"`
	Lost  bool     `json:"lost"`
}

// Compute builds the State from the model, the nodes' status and which
// nodes are down.
func Compute(m *inventory.Model, status map[string]any, down map[string]bool, drill bool) (*State, error) {
	st := &State{Drill: drill}
	for _, n := range m.Nodes {
		if down[n.Name] && (n.Host == nil || !down[n.Host.Name]) {
			st.Causes = append(st.Causes, n.Name)
		}
	}
	if len(st.Causes) > 0 {
		r, err := topology.Impact(m, st.Causes...)
		if err != nil {
			return nil, err
		}
		st.Impact = r
	}
	for _, n := range m.Nodes {
		v := Node{Name: n.Name, Kind: n.Kind, Provider: n.Provider, State: "up", Status: status[n.Name]}
		if n.Host != nil {
			v.Host = n.Host.Name
		}
		switch {
		case slices.Contains(st.Causes, n.Name):
			v.State = "down"
		case down[n.Name] || (st.Impact != nil && slices.Contains(st.Impact.DownNodes, n.Name)):
			v.State = "host-down"
		}
		if st.Impact != nil {
			for _, u := range st.Impact.Unreachable {
				if u.Client == n.Name && (u.Kind == "service" || u.Kind == "site") {
					v.Lost = append(v.Lost, u)
				}
			}
			if v.State == "up" && len(v.Lost) > 0 {
				v.State = "affected"
			}
		}
		for _, s := range m.Sites {
			if s.Node != n.Name {
				continue
			}
			vs := Site{Name: s.Name, Hosts: s.Hosts}
			if st.Impact != nil {
				for _, h := range s.Hosts {
					vs.Lost = vs.Lost || slices.Contains(st.Impact.LostSites, h)
				}
			}
			v.Sites = append(v.Sites, vs)
		}
		st.Nodes = append(st.Nodes, v)
	}
	return st, nil
}

// Handler serves the page (GET /), its assets (GET /dashboard/...), the
// topology drawing (GET /api/topology.svg), the state (GET /api/dashboard)
// and one node's impact (GET /api/impact?node=NAME).
func Handler(src Source) http.Handler {
	mux := http.NewServeMux()
	Mount(mux, src)
	return mux
}

// Mount adds Handler's paths to mux, beside the server's own.
func Mount(mux *http.ServeMux, src Source) {
	sub, _ := fs.Sub(assets, "assets")
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.Handle("GET /dashboard/", http.StripPrefix("/dashboard/", http.FileServerFS(sub)))
	// The drawing is made once per model.
	var mu sync.Mutex
	var drawn *inventory.Model
	var svg []byte
	mux.HandleFunc("GET /api/topology.svg", func(w http.ResponseWriter, r *http.Request) {
		m := src.Model()
		mu.Lock()
		if drawn != m {
			var b bytes.Buffer
			topology.Build(m).WriteSVG(&b)
			drawn, svg = m, b.Bytes()
		}
		out := svg
		mu.Unlock()
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Write(out)
	})
	mux.HandleFunc("GET /api/dashboard", func(w http.ResponseWriter, r *http.Request) {
		status, down := src.Nodes()
		st, err := Compute(src.Model(), status, down, src.Drill)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(st)
	})
	// "If this goes down": the impact of one node, as `offedge impact`.
	mux.HandleFunc("GET /api/impact", func(w http.ResponseWriter, r *http.Request) {
		rep, err := topology.Impact(src.Model(), r.URL.Query().Get("node"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		rep.WriteJSON(w)
	})
}
