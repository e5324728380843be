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
	"github.com/offedge/offedge/reach"
	"github.com/offedge/offedge/storage"
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
	// Unknown, when set, returns the nodes whose state cannot be known now
	// (a peer's admin endpoint does not answer, or the node has none), with
	// why: they are shown "unknown", never down.
	Unknown func() map[string]string
	// Replicas, when set, returns the replicas' measured state by replica
	// name (the offedge_replica_* metrics of their target nodes).
	Replicas func() map[string]storage.ReplicaState
	// Services, when set, says which services run now (true) or were
	// stopped (false), by name; services it does not name are not shown
	// with a state.
	Services func() map[string]bool
	// Partial is Live.Partial.
	Partial bool
	// Drill, when true, shows the buttons that take a node down and up
	// (POST /api/nodes/{name}/down and /up, served beside the dashboard).
	Drill bool
	// DrillObjects, when true, also shows the buttons that stall and resume
	// replicas (POST /api/replicas/{name}/stall and /resume) and stop and
	// start services (POST /api/services/{name}/stop and /start).
	DrillObjects bool
}

// Live is what the dashboard knows of the estate now, beside the model.
type Live struct {
	// Status is each node's status (any JSON value), by node name.
	Status map[string]any
	// Down are the nodes known down; Unknown those whose state is not
	// known, with why.
	Down    map[string]bool
	Unknown map[string]string
	// Partial says the source sees only some nodes (one node's admin
	// endpoint and the peers it could ask): a node without a Status is
	// unknown, not up.
	Partial bool
	// Replicas and Services are as Source's.
	Replicas map[string]storage.ReplicaState
	Services map[string]bool
	Drill    bool
	// DrillObjects shows the replica and service drill buttons.
	DrillObjects bool
}

// State is the JSON the page polls (GET /api/dashboard).
type State struct {
	// Causes are the down nodes whose host is not down: what an operator
	// must bring back. Guests of a down server are down as a consequence.
	Causes       []string `json:"causes"`
	Drill        bool     `json:"drill"`
	DrillObjects bool     `json:"drill_objects"`
	Nodes        []Node   `json:"nodes"`
	// Tunnels, Forwards and Replicas are the estate's, with what the
	// impact of the causes and the measurements say of them.
	Tunnels  []Tunnel  `json:"tunnels"`
	Forwards []Forward `json:"forwards"`
	Replicas []Replica `json:"replicas"`
	// Internet is the status given for the internet's vantage point (the
	// probes of the sites from outside, with their certificates' expiry),
	// when the source has one.
	Internet any `json:"internet,omitempty"`
	// Impact is topology.Impact of Causes, nil when nothing is down.
	Impact *topology.ImpactReport `json:"impact"`
}

// Node is one node as the page draws it.
type Node struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Host     string `json:"host,omitempty"`
	Provider string `json:"provider,omitempty"`
	// State is "up", "down" (the cause), "host-down" (its server is down),
	// "affected" (up, but it has lost something it uses) or "unknown"
	// (no live state: Unknown says why).
	State   string `json:"state"`
	Unknown string `json:"unknown,omitempty"`
	Sites   []Site `json:"sites"`
	// Services are the node's services, with Running when the source
	// says (the lab).
	Services []Service `json:"services"`
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

// Service is one service of a node.
type Service struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	Lost     bool   `json:"lost"`
	// Running is nil when the source does not say.
	Running *bool `json:"running,omitempty"`
}

// Tunnel is one tunnel: its ends, its service, whether it is lost.
type Tunnel struct {
	Name     string   `json:"name"`
	Entrance string   `json:"entrance"`
	Exits    []string `json:"exits"`
	Service  string   `json:"service"`
	Lost     bool     `json:"lost"`
}

// Forward is one forward: its node, what it relays to, whether it is lost.
type Forward struct {
	Name string `json:"name"`
	Node string `json:"node"`
	Lost bool   `json:"lost"`
}

// Replica is one replica: its ends, its max_lag, the lag its target
// measures, whether it is stale (measured past max_lag) or lost (an end is
// down, from the impact report).
type Replica struct {
	Name   string  `json:"name"`
	Kind   string  `json:"kind"`
	Source string  `json:"source"`
	Target string  `json:"target"`
	MaxLag float64 `json:"max_lag_seconds"`
	// Measured says whether a lag is known; Lag is nil when no snapshot
	// is known (or it was never measured).
	Measured bool     `json:"measured"`
	Lag      *float64 `json:"lag_seconds"`
	Stale    bool     `json:"stale"`
	Error    string   `json:"error,omitempty"`
	Lost     bool     `json:"lost"`
}

// Compute builds the State from the model and what is live.
func Compute(m *inventory.Model, live Live) (*State, error) {
	status, down := live.Status, live.Down
	st := &State{Drill: live.Drill, DrillObjects: live.DrillObjects, Internet: status[reach.InternetClient]}
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
		case live.Unknown[n.Name] != "":
			v.State, v.Unknown = "unknown", live.Unknown[n.Name]
		case live.Partial && status[n.Name] == nil:
			v.State, v.Unknown = "unknown", "no admin endpoint off loopback in the inventory to ask it"
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
		for _, sv := range m.ServicesOn(n.Name) {
			vs := Service{Name: sv.Name, Port: sv.Port, Protocol: sv.Protocol}
			if st.Impact != nil {
				vs.Lost = slices.Contains(st.Impact.LostServices, sv.Name)
			}
			if r, ok := live.Services[sv.Name]; ok {
				vs.Running = &r
			}
			v.Services = append(v.Services, vs)
		}
		st.Nodes = append(st.Nodes, v)
	}
	lost := func(list func(*topology.ImpactReport) []string, name string) bool {
		return st.Impact != nil && slices.Contains(list(st.Impact), name)
	}
	for _, t := range m.Tunnels {
		vt := Tunnel{Name: t.Name, Service: t.Service, Lost: lost(func(r *topology.ImpactReport) []string { return r.LostTunnels }, t.Name)}
		if t.Entrance != nil {
			vt.Entrance = t.Entrance.Node
		}
		for _, x := range t.Exits {
			vt.Exits = append(vt.Exits, x.Node)
		}
		st.Tunnels = append(st.Tunnels, vt)
	}
	for _, f := range m.Forwards {
		st.Forwards = append(st.Forwards, Forward{Name: f.Name, Node: f.Node, Lost: lost(func(r *topology.ImpactReport) []string { return r.LostForwards }, f.Name)})
	}
	for _, r := range m.Replicas {
		vr := Replica{Name: r.Name, Kind: r.Kind, MaxLag: r.MaxLag.D().Seconds(), Lost: lost(func(r *topology.ImpactReport) []string { return r.StaleReplicas }, r.Name)}
		if r.Source != nil {
			vr.Source = r.Source.Node
		}
		if r.Target != nil {
			vr.Target = r.Target.Node
		}
		if ms, ok := live.Replicas[r.Name]; ok {
			vr.Measured, vr.Lag, vr.Stale, vr.Error = true, ms.Lag, ms.Stale, ms.Error
		}
		st.Replicas = append(st.Replicas, vr)
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
		live := Live{Drill: src.Drill, DrillObjects: src.DrillObjects, Partial: src.Partial}
		live.Status, live.Down = src.Nodes()
		if src.Unknown != nil {
			live.Unknown = src.Unknown()
		}
		if src.Replicas != nil {
			live.Replicas = src.Replicas()
		}
		if src.Services != nil {
			live.Services = src.Services()
		}
		st, err := Compute(src.Model(), live)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(st)
	})
	// "If this goes down": the impact of one node (?node=NAME, as
	// `offedge impact`) or of a tunnel, forward, site or replica
	// (?kind=KIND&name=NAME, topology.ImpactOf).
	mux.HandleFunc("GET /api/impact", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		kind, name := q.Get("kind"), q.Get("name")
		if kind == "" {
			kind, name = "node", q.Get("node")
		}
		rep, err := topology.ImpactOf(src.Model(), kind, name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		rep.WriteJSON(w)
	})
}
