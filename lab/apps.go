package lab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/lab/standin"
	"github.com/offedge/offedge/plan"
)

// app is what stands behind one service: a real engine process or a stand-in.
type app struct {
	svc   *inventory.Service
	node  string
	label string // "redis-server 7.0.15 (real engine)" or "stand-in mongodb"
	addrs []netip.AddrPort

	standin   standin.Server
	listeners []net.Listener
	wg        sync.WaitGroup
	cmd       *exec.Cmd
	exited    chan struct{}

	// An engine that starts in the background (PostgreSQL's initdb takes
	// longer than the whole lab's start-up budget) closes ready when it
	// listens or has failed; cancel aborts it.
	mu     sync.Mutex
	ready  chan struct{}
	cancel context.CancelFunc
}

func (a *app) setLabel(l string) {
	a.mu.Lock()
	a.label = l
	a.mu.Unlock()
}

// AppStatus is an application on the status page.
type AppStatus struct {
	Service string   `json:"service"`
	Label   string   `json:"label"`
	Addrs   []string `json:"addrs"`
}

func (a *app) status() AppStatus {
	a.mu.Lock()
	st := AppStatus{Service: a.svc.Name, Label: a.label}
	a.mu.Unlock()
	for _, ap := range a.addrs {
		st.Addrs = append(st.Addrs, ap.String())
	}
	return st
}

// serviceAddrs returns the lab sockets a service listens on: the node's
// addresses on the networks it binds (all of them when it binds none), or
// the node's loopback.
func (l *Lab) serviceAddrs(s *inventory.Service) ([]netip.AddrPort, error) {
	n := l.m.Node(s.Node)
	nm := l.mapFor(s.Node)
	if s.Loopback {
		ap, err := nm.Listen(plan.LoopbackNetwork, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.Port)))
		return []netip.AddrPort{ap}, err
	}
	var out []netip.AddrPort
	for _, a := range n.Addresses {
		if len(s.Bind) > 0 && !contains(s.Bind, a.Network) {
			continue
		}
		ap, err := nm.Listen(a.Network, netip.AddrPortFrom(a.IP, uint16(s.Port)))
		if err != nil {
			return nil, err
		}
		out = append(out, ap)
	}
	// Like a 0.0.0.0 bind, a service binding every network also answers
	// on the node's own loopback.
	if len(s.Bind) == 0 {
		ap, _ := nm.Listen(plan.LoopbackNetwork, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.Port)))
		out = append(out, ap)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (l *Lab) startApp(ctx context.Context, s *inventory.Service) (*app, error) {
	addrs, err := l.serviceAddrs(s)
	if err != nil {
		return nil, err
	}
	a := &app{svc: s, node: s.Node, addrs: addrs}
	if !l.opts.NoEngines && s.Protocol == "redis" {
		if bin := findBinary("redis-server"); bin != "" {
			if err := a.startRedis(ctx, bin, filepath.Join(l.nodeDir(s.Node), "var", "redis-"+s.Name)); err == nil {
				return a, nil
			} else {
				l.log.Warn("real redis-server failed to start; using the stand-in", "service", s.Name, "err", err)
			}
		}
	}
	if !l.opts.NoEngines && s.Protocol == "postgresql" {
		if initdb, postgres := findPostgres(); initdb != "" {
			dir, err := l.pgDir(s.Name)
			if err != nil {
				return nil, err
			}
			a.startPostgres(initdb, postgres, dir, l.log)
			return a, nil
		}
	}
	info := standin.Info{Service: s.Name, Node: s.Node, Title: s.Title}
	if s.Protocol == "http" && strings.HasPrefix(s.Name, "po-") {
		info.Flavor = strings.TrimPrefix(s.Name, "po-")
	}
	srv, err := standin.New(s.Protocol, info, standin.Options{Logger: l.log})
	if err != nil {
		return nil, err
	}
	a.standin = srv
	a.label = "stand-in " + srv.Kind()
	for _, ap := range addrs {
		ln, err := net.Listen("tcp", ap.String())
		if err != nil {
			a.stop()
			return nil, fmt.Errorf("listening on %s: %w", ap, err)
		}
		a.listeners = append(a.listeners, ln)
		a.wg.Add(1)
		go func() { defer a.wg.Done(); srv.Serve(ln) }()
	}
	return a, nil
}

func findBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// startRedis runs a real redis-server bound to the service's IPv4 lab
// addresses (it serves one port; IPv6 binds are left to stand-ins).
func (a *app) startRedis(ctx context.Context, bin, dir string) error {
	var binds []string
	port := uint16(0)
	for _, ap := range a.addrs {
		if ap.Addr().Is4() {
			binds = append(binds, ap.Addr().String())
			port = ap.Port()
		}
	}
	if len(binds) == 0 {
		return fmt.Errorf("no IPv4 address to bind")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"--bind", strings.Join(binds, " "), "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log")}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	a.cmd = cmd
	a.exited = make(chan struct{})
	go func() { cmd.Wait(); close(a.exited) }()
	// Wait for the port, or the process to die (port taken, bad config).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-a.exited:
			return fmt.Errorf("redis-server exited at start; see %s", filepath.Join(dir, "redis.log"))
		default:
		}
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(netip.MustParseAddr(binds[0]), port).String(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			a.label = "redis-server " + redisVersion(bin) + " (real engine)"
			return nil
		}
		select {
		case <-a.exited:
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			a.stop()
			return ctx.Err()
		}
	}
	a.stop()
	return fmt.Errorf("redis-server did not listen within 5s")
}

func redisVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return ""
	}
	// "Redis server v=7.0.15 sha=..."
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				return v
			}
		}
	}
	return ""
}

func (a *app) stop() {
	if a.cancel != nil {
		a.cancel()
		<-a.ready
	}
	if a.standin != nil {
		a.standin.Close()
	}
	for _, ln := range a.listeners {
		ln.Close()
	}
	a.wg.Wait()
	if a.cmd != nil && a.cmd.Process != nil {
		// SIGTERM is a smart shutdown for redis-server; PostgreSQL wants
		// SIGINT for a fast one (it would wait for clients otherwise).
		sig := syscall.SIGTERM
		if a.svc.Protocol == "postgresql" {
			sig = syscall.SIGINT
		}
		a.cmd.Process.Signal(sig)
		select {
		case <-a.exited:
		case <-time.After(5 * time.Second):
			a.cmd.Process.Kill()
			<-a.exited
		}
		a.cmd = nil
	}
}
