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
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/internal/gcpace"
	"github.com/offedge/offedge/plan"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	mode := flag.String("mode", "proxy", "proxy | static")
	upstream := flag.String("upstream", "", "upstream host:port (proxy mode)")
	root := flag.String("root", "", "document root (static mode)")
	keepalive := flag.Int("keepalive", 16, "idle upstream connections kept")
	accessLog := flag.String("access-log", "", "access log path (empty: off)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file until SIGINT/SIGTERM")
	memProfile := flag.String("memprofile", "", "write an allocation profile (alloc_space/alloc_objects) to this file at SIGINT/SIGTERM")
	memRate := flag.Int("memprofilerate", 0, "runtime.MemProfileRate when -memprofile is set (0: Go's default, 512 KiB)")
	netHTTP1 := flag.Bool("nethttp1", false, "serve HTTP/1 with net/http's server loop instead of edge/http/h1 (for comparisons)")
	flag.Parse()
	go gcpace.Keep(context.Background()) // as offedge run does

	// The node resources and limits a plan would give this one site.
	route := httpedge.Route{Path: "/", MaxBodyBytes: plan.DefaultMaxBodyBytes}
	upstreams := map[string]httpedge.Upstream{}
	switch *mode {
	case "proxy":
		route.Upstream = "backend"
		upstreams["backend"] = httpedge.Upstream{Name: "backend", Keepalive: *keepalive,
			ConnectTimeout: plan.DefaultConnectTimeout, ReadTimeout: plan.DefaultUpstreamRead,
			MaxFails: plan.DefaultMaxFails, FailTimeout: plan.DefaultFailTimeout,
			Servers: []httpedge.UpstreamServer{{Addr: *upstream, Weight: plan.DefaultWeight}}}
	case "static":
		route.Static = &httpedge.Static{Root: *root}
	default:
		fmt.Fprintln(os.Stderr, "edgebench: -mode must be proxy or static")
		os.Exit(2)
	}
	// Default: wrk and idleconns name the address or localhost as Host.
	site := httpedge.Site{Name: "bench", Hosts: []string{"localhost"}, Default: true, Routes: []httpedge.Route{route}}
	logs := map[string]httpedge.AccessLog{}
	if *accessLog != "" {
		logs[*accessLog] = httpedge.AccessLog{Path: *accessLog, BufferBytes: plan.DefaultLogBuffer, FlushInterval: plan.DefaultLogFlush}
		site.AccessLog = &httpedge.SiteLog{File: *accessLog, Format: "combined"}
	}
	opts := httpedge.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), NetHTTP1: *netHTTP1}
	res, err := httpedge.Build(upstreams, nil, logs, nil, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "edgebench:", err)
		os.Exit(1)
	}
	srv, err := httpedge.NewServer(httpedge.Config{Listener: "edgebench " + *listen, Sites: []httpedge.Site{site}, Limits: plan.DefaultLimits()}, res, opts)
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
	if *memProfile != "" && *memRate > 0 {
		runtime.MemProfileRate = *memRate
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "edgebench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "edgebench:", err)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
		if *cpuProfile != "" {
			pprof.StopCPUProfile()
		}
		if *memProfile != "" {
			if err := writeHeapProfile(*memProfile); err != nil {
				fmt.Fprintln(os.Stderr, "edgebench:", err)
			}
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		cancel()
		serveErr = <-served
	case serveErr = <-served:
	}
	if serveErr != nil {
		fmt.Fprintln(os.Stderr, "edgebench:", serveErr)
		os.Exit(1)
	}
}

// writeHeapProfile writes the allocation profile (all samples since start:
// go tool pprof -sample_index=alloc_space or alloc_objects).
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
