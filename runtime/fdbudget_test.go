package runtime

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/edge/acl"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/plan"
)

func TestConnCaps(t *testing.T) {
	ls := []plan.Listener{
		{Network: "n", Addr: netip.MustParseAddrPort("127.0.0.1:80"), HTTP: &httpedge.Config{}},
		{Network: "n", Addr: netip.MustParseAddrPort("127.0.0.1:6379"), Entrance: &tunnel.EntranceConfig{}},
	}
	caps := connCaps(600, ls)
	// 600 - (64 + 75 + 4) = 457 descriptors: 2/3 for HTTP, 1/3 for the tunnel, 2 per connection.
	if h, e := caps[ls[0].Key()], caps[ls[1].Key()]; h != 152 || e != 76 {
		t.Fatalf("caps: http %d, entrance %d; want 152 and 76", h, e)
	}
	if got := connCaps(10, ls); got[ls[0].Key()] != 1 {
		t.Fatalf("a tiny limit gives %v; want at least 1 each", got)
	}
	if got := capConns(0, 4096, 76); got != 76 {
		t.Fatalf("capConns = %d", got)
	}
	if got := capConns(10, 4096, 76); got != 10 {
		t.Fatalf("capConns kept %d, want the configured 10", got)
	}
}

// budgetChild is what the child process of TestDescriptorBudget runs: a
// node with an HTTP listener and a tunnel entrance under RLIMIT_NOFILE 600.
type budgetChild struct {
	HTTP, Backend, Entrance, Exit, PSK string
}

// TestDescriptorBudget (issue 9 finding 4): in a process limited to 600
// descriptors, 700 idle HTTP keep-alive connections must leave a tunnel
// entrance of the same process able to serve its client. The node runs in
// a child process with the lowered limit; the clients, the backend, the
// exit and its target run here.
func TestDescriptorBudget(t *testing.T) {
	if os.Getenv("OFFEDGE_BUDGET_CHILD") != "" {
		runBudgetChild(t)
		return
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	target := listenEcho(t)
	dir := t.TempDir()
	psk := filepath.Join(dir, "t.psk")
	secret := make([]byte, 32)
	rand.Read(secret)
	if err := os.WriteFile(psk, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	exitLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x, err := tunnel.NewExit(tunnel.ExitConfig{Listener: exitLn.Addr().String(), HandshakeTimeout: plan.DefaultHandshakeTimeout,
		MaxConns: plan.DefaultMaxConns, MaxConnsPerClient: 1024,
		Tunnels: []tunnel.ExitTunnel{{Name: "t", Target: target, Auth: tunnel.Auth{PSKFile: psk}, ConnectTimeout: plan.DefaultConnectTimeout,
			IdleTimeout: plan.DefaultTunnelIdle, KeepAlive: plan.DefaultTCPKeepAlive}}}, tunnel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	go x.Serve(exitLn)
	defer x.Shutdown(context.Background())

	cfg := budgetChild{HTTP: "127.0.0.1:" + freePort(t, "127.0.0.1"), Backend: strings.TrimPrefix(backend.URL, "http://"),
		Entrance: "127.0.0.1:" + freePort(t, "127.0.0.1"), Exit: exitLn.Addr().String(), PSK: psk}
	js, _ := json.Marshal(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestDescriptorBudget$", "-test.v")
	cmd.Env = append(os.Environ(), "OFFEDGE_BUDGET_CHILD="+string(js))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	ready, exited := make(chan struct{}), make(chan struct{})
	var childOut strings.Builder
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			childOut.WriteString(sc.Text() + "\n")
			if sc.Text() == "READY" {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("child exited:\n%s\n%s", childOut.String(), tail(stderr.String()))
	case <-ctx.Done():
		t.Fatalf("child did not start:\n%s\n%s", childOut.String(), stderr.String())
	}
	// 700 keep-alive clients, idle after one request.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 700 {
		c, err := net.DialTimeout("tcp", cfg.HTTP, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: s\r\n\r\n")
		conns = append(conns, c)
	}
	// The first ones are answered (the rest wait in the backlog).
	conns[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(conns[0]), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first HTTP client: %v", err)
	}
	// The tunnel entrance still serves.
	c, err := net.DialTimeout("tcp", cfg.Entrance, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "through the tunnel\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "through the tunnel\n" {
		t.Fatalf("tunnel client beside 700 idle HTTP connections: %q, %v\nchild:\n%s", line, err, tail(stderr.String()))
	}
	if n := strings.Count(stderr.String(), "too many open files"); n > 0 {
		t.Fatalf("the child hit EMFILE %d times:\n%s", n, tail(stderr.String()))
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

func listenEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// entranceConfig is a tunnel entrance with the plan's defaults.
func entranceConfig(exit, psk string) *tunnel.EntranceConfig {
	return &tunnel.EntranceConfig{Name: "t", Exits: []string{exit}, Auth: tunnel.Auth{PSKFile: psk},
		ConnectTimeout: plan.DefaultConnectTimeout, HandshakeTimeout: plan.DefaultHandshakeTimeout, IdleTimeout: plan.DefaultTunnelIdle,
		KeepAlive: plan.DefaultTCPKeepAlive, MaxConns: plan.DefaultMaxConns, MaxConnsPerClient: 1024}
}

func runBudgetChild(t *testing.T) {
	var cfg budgetChild
	if err := json.Unmarshal([]byte(os.Getenv("OFFEDGE_BUDGET_CHILD")), &cfg); err != nil {
		t.Fatal(err)
	}
	lim := syscall.Rlimit{Cur: 600, Max: 600}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	all := acl.List{Default: true}
	p := &plan.Plan{Node: "n", Listeners: []plan.Listener{
		{Name: "http", Kind: plan.KindHTTP, Network: "lan", Addr: netip.MustParseAddrPort(cfg.HTTP), ACL: all,
			HTTP: &httpedge.Config{Listener: "http", Limits: plan.DefaultLimits(), Sites: []httpedge.Site{{Name: "s", Hosts: []string{"s"}, Default: true,
				Routes: []httpedge.Route{{Path: "/", Upstream: "b", MaxBodyBytes: plan.DefaultMaxBodyBytes}}}}}},
		{Name: "entrance", Kind: plan.KindTunnelEntrance, Network: "lan", Addr: netip.MustParseAddrPort(cfg.Entrance), ACL: all,
			Entrance: entranceConfig(cfg.Exit, cfg.PSK)},
	}}
	p.Resources.Upstreams = map[string]httpedge.Upstream{"b": {Name: "b", Servers: []httpedge.UpstreamServer{{Addr: cfg.Backend, Weight: 1}},
		Keepalive: plan.DefaultKeepalive, ConnectTimeout: plan.DefaultConnectTimeout, ReadTimeout: plan.DefaultUpstreamRead,
		MaxFails: plan.DefaultMaxFails, FailTimeout: plan.DefaultFailTimeout}}
	n, err := Start(p, Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	fmt.Println("READY")
	io.Copy(io.Discard, os.Stdin) // until the parent is done
}
