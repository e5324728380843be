package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/offedge/offedge/dashboard"
	"github.com/offedge/offedge/reach"
	"github.com/offedge/offedge/storage"
)

// dashboardNodes is the lab's live state for the dashboard.
func (l *Lab) dashboardNodes() (map[string]any, map[string]bool) {
	status, down := map[string]any{}, map[string]bool{}
	for _, st := range l.Status() {
		status[st.Node] = st
		down[st.Node] = st.Down
	}
	l.mu.Lock()
	if l.internet != nil {
		status[reach.InternetClient] = map[string]any{"node": reach.InternetClient, "probes": l.internet.prober.Results()}
	}
	l.mu.Unlock()
	return status, down
}

// replicaStates are the replicas as their target nodes' storage watches
// last measured them (the nodes that are up).
func (l *Lab) replicaStates() map[string]storage.ReplicaState {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]storage.ReplicaState{}
	for _, ln := range l.nodes {
		if ln.down || ln.obs == nil {
			continue
		}
		for _, r := range ln.watch.Replicas() {
			out[r.Name] = r
		}
	}
	return out
}

// serviceStates says which services of the nodes that are up run their
// application now (true) or were stopped by the drill (false).
func (l *Lab) serviceStates() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for _, s := range l.m.Services {
		ln := l.nodes[s.Node]
		if ln == nil || ln.down {
			continue
		}
		out[s.Name] = slices.ContainsFunc(ln.apps, func(a *app) bool { return a.svc == s })
	}
	return out
}

// Handler serves the dashboard (GET /, see package dashboard), the status JSON (GET /api/status), the
// probes run now from their vantage points (GET /api/probes[?node=NAME],
// what `offedge probe --lab` asks) and the failure-drill API (POST
// /api/nodes/{name}/down and /up, POST /api/services/{name}/stop and
// /start, POST /api/replicas/{name}/stall, /prune, /hang and /resume, POST
// /api/pools/{node}/{pool}/fill and /drain).
func (l *Lab) Handler() http.Handler {
	mux := http.NewServeMux()
	dashboard.Mount(mux, dashboard.Source{Model: l.Model, Drill: true, DrillObjects: true, Nodes: l.dashboardNodes,
		Replicas: l.replicaStates, Services: l.serviceStates})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(l.Status())
	})
	mux.HandleFunc("GET /api/probes", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		res, err := l.RunProbes(ctx, r.URL.Query().Get("node"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("POST /api/services/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		var err error
		switch action {
		case "stop":
			err = l.StopService(name)
		case "start":
			ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
			err = l.StartService(ctx, name)
			cancel()
		default:
			http.Error(w, "action must be stop or start", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "service %s: %s\n", name, action)
	})
	mux.HandleFunc("POST /api/replicas/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		var err error
		switch action {
		case "stall", "resume":
			err = l.StallReplica(name, action == "stall")
		case "prune":
			err = l.PruneReplica(name)
		case "hang":
			err = l.HangReplica(name)
		default:
			http.Error(w, "action must be stall, prune, hang or resume", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "replica %s: %s\n", name, action)
	})
	mux.HandleFunc("POST /api/pools/{node}/{pool}/{action}", func(w http.ResponseWriter, r *http.Request) {
		node, pool, action := r.PathValue("node"), r.PathValue("pool"), r.PathValue("action")
		if action != "fill" && action != "drain" {
			http.Error(w, "action must be fill or drain", http.StatusNotFound)
			return
		}
		if err := l.FillPool(node, pool, action == "fill"); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "pool %s on %s: %s\n", pool, node, action)
	})
	mux.HandleFunc("POST /api/nodes/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		var err error
		switch action {
		case "down":
			err = l.Down(name)
		case "up":
			ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
			err = l.Up(ctx, name)
			cancel()
		default:
			http.Error(w, "action must be down or up", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s is %s\n", name, action)
	})
	return mux
}

// ServeStatus serves Handler on addr until ctx ends; it returns the bound
// address once listening.
func (l *Lab) ServeStatus(ctx context.Context, addr string) (net.Addr, error) {
	return serveStatus(ctx, addr, l.Handler())
}

// serveStatus serves h on addr until ctx ends, for either lab.
func serveStatus(ctx context.Context, addr string, h http.Handler) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status page: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(c)
	}()
	return ln.Addr(), nil
}
