// Command tunnelbench runs one offedge tunnel entrance, tunnel exit or TCP
// forward from flags, for bench/tunnel.sh and manual tests until the real
// CLI exists. It prints "listening ADDR" once the listener is open and stops
// on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/offedge/offedge/edge/conn"
	"github.com/offedge/offedge/edge/forward"
	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/plan"
)

type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

func main() {
	mode := flag.String("mode", "", "entrance, exit or forward")
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	name := flag.String("name", "bench", "tunnel or forward name")
	target := flag.String("target", "", "exit and forward: service host:port; entrance: comma-separated exits")
	psk := flag.String("psk", "", "pre-shared secret file (mode 0600)")
	proxyProto := flag.Bool("proxy-protocol", false, "forward: send a PROXY v2 header")
	maxConns := flag.Int("max-conns", plan.DefaultMaxConns, "maximum concurrent connections")
	kx := flag.String("kx", "", "entrance: key exchange, hybrid (default) or x25519")
	mux := flag.Bool("mux", true, "entrance: carry clients as streams of long-lived sessions (offedge-mux/1), the plan's default; false: one TLS connection per client")
	verbose := flag.Bool("v", false, "log connection errors")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file until stopped")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "tunnelbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// As offedge run: the listener below sets the default keepalive.
	opts := tunnel.Options{Logger: log, ListenKeepAlive: plan.DefaultTCPKeepAlive}
	var srv server
	var err error
	// The plan's defaults (plan/defaults.go), as offedge run would use.
	perClient := min(plan.DefaultMaxConnsPerClient, *maxConns)
	switch *mode {
	case "entrance":
		srv, err = tunnel.NewEntrance(tunnel.EntranceConfig{Name: *name, Exits: strings.Split(*target, ","),
			Auth: tunnel.Auth{PSKFile: *psk}, MaxConns: *maxConns, MaxConnsPerClient: perClient, KeyExchange: *kx, Mux: *mux,
			ConnectTimeout: plan.DefaultConnectTimeout, HandshakeTimeout: plan.DefaultHandshakeTimeout,
			IdleTimeout: plan.DefaultTunnelIdle, KeepAlive: plan.DefaultTCPKeepAlive}, opts)
	case "exit":
		srv, err = tunnel.NewExit(tunnel.ExitConfig{Listener: *listen, MaxConns: *maxConns, MaxConnsPerClient: perClient,
			HandshakeTimeout: plan.DefaultHandshakeTimeout,
			Tunnels: []tunnel.ExitTunnel{{Name: *name, Target: *target, Auth: tunnel.Auth{PSKFile: *psk},
				ConnectTimeout: plan.DefaultConnectTimeout, IdleTimeout: plan.DefaultTunnelIdle, KeepAlive: plan.DefaultTCPKeepAlive}}}, opts)
	case "forward":
		srv, err = forward.New(forward.Config{Name: *name, Target: *target, ProxyProtocol: *proxyProto,
			MaxConns: *maxConns, MaxConnsPerClient: perClient, ConnectTimeout: plan.DefaultConnectTimeout, IdleTimeout: plan.DefaultTunnelIdle},
			forward.Options{Logger: log})
	default:
		err = fmt.Errorf("-mode must be entrance, exit or forward")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunnelbench:", err)
		os.Exit(2)
	}
	// As offedge run opens tunnel and forward listeners.
	ln, err := conn.Listen(context.Background(), *listen, plan.DefaultTCPKeepAlive)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunnelbench:", err)
		os.Exit(1)
	}
	fmt.Println("listening", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "tunnelbench:", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
}
