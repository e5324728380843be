package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/offedge/offedge/dashboard"
)

// NetnsNodeStatus is one node of a namespace lab on its status page: what
// the lab did to it, and what its own offedge run says (GET /status and GET
// /probes on its admin endpoint, inside its namespace).
type NetnsNodeStatus struct {
	Node string `json:"node"`
	Kind string `json:"kind"`
	Host string `json:"host,omitempty"`
	// Down is what the lab took down: "links", "process", or "".
	Down string `json:"down,omitempty"`
	// Process is "running", "stopped", "failed" or "none" (the node has
	// nothing to run); Pid and Restarts describe it.
	Process  string `json:"process"`
	Pid      int    `json:"pid,omitempty"`
	Restarts int    `json:"restarts,omitempty"`
	// Runtime and Probes are the node's own answers, verbatim; Error says
	// why they are missing.
	Runtime json.RawMessage `json:"runtime,omitempty"`
	Probes  json.RawMessage `json:"probes,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// statusTimeout bounds one node's answers on the status page.
const statusTimeout = 2 * time.Second

// Status asks every node process for its state, all at once.
func (l *NetnsLab) Status(ctx context.Context) []NetnsNodeStatus {
	out := make([]NetnsNodeStatus, len(l.m.Nodes))
	var wg sync.WaitGroup
	for i, n := range l.m.Nodes {
		st := &out[i]
		st.Node, st.Kind, st.Process = n.Name, n.Kind, "none"
		if n.Host != nil {
			st.Host = n.Host.Name
		}
		if d, ok := l.downs.Load(n.Name); ok {
			st.Down = d.(string)
		}
		p := l.procs[n.Name]
		if p == nil {
			continue
		}
		p.mu.Lock()
		switch {
		case p.failed != nil:
			st.Process, st.Error = "failed", p.failed.Error()
		case p.running:
			st.Process = "running"
		default:
			st.Process = "stopped"
		}
		st.Restarts = p.restarts
		if p.cmd != nil && p.cmd.Process != nil {
			st.Pid = p.cmd.Process.Pid
		}
		p.mu.Unlock()
		if st.Process != "running" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, statusTimeout)
			defer cancel()
			rt, err := l.Admin(ctx, n.Name, "/status")
			if err == nil {
				st.Runtime = rt
				st.Probes, err = l.Admin(ctx, n.Name, "/probes")
			}
			if err != nil {
				st.Error = err.Error()
			}
		}()
	}
	wg.Wait()
	return out
}

// dashboardNodes is the lab's live state for the dashboard: a node is down
// when the lab took it down or its process does not answer.
func (l *NetnsLab) dashboardNodes() (map[string]any, map[string]bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*statusTimeout)
	defer cancel()
	status, down := map[string]any{}, map[string]bool{}
	for _, st := range l.Status(ctx) {
		status[st.Node] = st
		down[st.Node] = st.Down != "" || st.Process == "stopped" || st.Process == "failed"
	}
	return status, down
}

// affected is the node and, for a server, its guests: a server going down
// takes its guests with it, as in the loopback lab.
func (l *NetnsLab) affected(name string) ([]string, error) {
	n := l.m.Node(name)
	if n == nil {
		return nil, fmt.Errorf("unknown node %q", name)
	}
	out := []string{name}
	if n.Server != nil {
		for _, g := range l.m.GuestsOf(name) {
			out = append(out, g.Name)
		}
	}
	return out, nil
}

// Handler serves the dashboard (GET /, package dashboard) over the node
// processes' own answers, the status JSON (GET /api/status), and the
// drill: POST /api/nodes/{name}/down and /up take a node's links (a
// server's with its guests') down and back, /stop and /start its process.
func (l *NetnsLab) Handler() http.Handler {
	mux := http.NewServeMux()
	dashboard.Mount(mux, dashboard.Source{Model: l.Model, Drill: true, Nodes: l.dashboardNodes})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(l.Status(r.Context()))
	})
	mux.HandleFunc("POST /api/nodes/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		nodes, err := l.affected(name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		for _, n := range nodes {
			switch action {
			case "down":
				err = l.Down(n)
			case "up":
				err = l.Up(n)
			case "stop":
				if l.procs[n] != nil {
					err = l.Stop(n)
				}
			case "start":
				if l.procs[n] != nil {
					err = l.Start(ctx, n)
				}
			default:
				http.Error(w, "action must be down, up, stop or start", http.StatusNotFound)
				return
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		fmt.Fprintf(w, "%s: %s\n", name, action)
	})
	return mux
}

// ServeStatus serves Handler on addr (in this process's own namespace)
// until ctx ends; it returns the bound address once listening.
func (l *NetnsLab) ServeStatus(ctx context.Context, addr string) (net.Addr, error) {
	return serveStatus(ctx, addr, l.Handler())
}
