package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"time"
)

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>offedge lab</title>
<meta http-equiv="refresh" content="5">
<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.down{color:#b00;font-weight:bold}h2{margin-bottom:.3em}small{color:#666}</style>
</head><body><h1>offedge lab</h1>
<p>Every listener below is served by the same runtime as <code>offedge run</code>. Counters refresh every 5 s.
Failure drill: <code>curl -X POST http://HOST/api/nodes/NAME/down</code> and <code>.../up</code>.</p>
{{range .}}<h2>{{.Node}} <small>{{.Kind}}{{if .Host}} on {{.Host}}{{end}}</small>{{if .Down}} <span class="down">DOWN</span>{{end}}</h2>
{{if or .Runtime.Listeners .Apps}}<table><tr><th>kind</th><th>listener / service</th><th>production</th><th>lab socket</th><th>accepted</th><th>denied</th></tr>
{{range .Runtime.Listeners}}<tr><td>{{.Kind}}</td><td>{{.Name}}</td><td>{{.Addr}}</td><td>{{.Bound}}</td><td>{{.Accepted}}</td><td>{{.Denied}}</td></tr>
{{end}}{{range .Apps}}<tr><td>service</td><td>{{.Service}} <small>({{.Label}})</small></td><td></td><td>{{range .Addrs}}{{.}} {{end}}</td><td></td><td></td></tr>
{{end}}</table>{{end}}{{end}}
</body></html>
`))

// Handler serves the status page (GET /), its JSON (GET /api/status), the
// probes run now from their vantage points (GET /api/probes[?node=NAME],
// what `offedge probe --lab` asks) and the failure-drill API (POST
// /api/nodes/{name}/down and /up, POST /api/services/{name}/stop and
// /start).
func (l *Lab) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		statusPage.Execute(w, l.Status())
	})
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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status page: %w", err)
	}
	srv := &http.Server{Handler: l.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(c)
	}()
	return ln.Addr(), nil
}
