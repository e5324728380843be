// Command edgebench runs one httpedge.Server standalone for bench/http.sh:
// a reverse proxy to one upstream, or a static file server, built from
// flags. It is a bench harness, not the offedge CLI.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only when -pprof is set
	"os"
	"os/signal"
	"syscall"
	"time"

	httpedge "github.com/offedge/offedge/edge/http"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	mode := flag.String("mode", "proxy", "proxy | static")
	upstream := flag.String("upstream", "", "upstream host:port (proxy mode)")
	root := flag.String("root", "", "document root (static mode)")
	keepalive := flag.Int("keepalive", 16, "idle upstream connections kept")
	accessLog := flag.String("access-log", "", "access log path (empty: off)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address")
	flag.Parse()

	route := httpedge.Route{Path: "/"}
	switch *mode {
	case "proxy":
		route.Upstream = &httpedge.Upstream{Name: "backend", Keepalive: *keepalive, Servers: []httpedge.UpstreamServer{{Addr: *upstream}}}
	case "static":
		route.Static = &httpedge.Static{Root: *root}
	default:
		fmt.Fprintln(os.Stderr, "edgebench: -mode must be proxy or static")
		os.Exit(2)
	}
	site := httpedge.Site{Name: "bench", Hosts: []string{"localhost"}, Routes: []httpedge.Route{route}}
	if *accessLog != "" {
		site.AccessLog = &httpedge.AccessLog{Path: *accessLog, Format: "combined"}
	}
	srv, err := httpedge.NewServer(httpedge.Config{Listener: "edgebench " + *listen, Sites: []httpedge.Site{site}},
		httpedge.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgebench:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgebench:", err)
		os.Exit(1)
	}
	if *pprofAddr != "" {
		go http.ListenAndServe(*pprofAddr, nil)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "edgebench:", err)
		os.Exit(1)
	}
}
