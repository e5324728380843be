// Package runtime is the only place where a plan meets the operating
// system: it opens the plan's listeners, filters each through the same
// access-list wrapper, builds the role behind each (HTTP sites, tunnel
// entrances and exits, forwards) once, and on reload applies only what
// changed: an unchanged listener keeps its socket and its connections, a
// changed one is updated in place (new connections see the new config, open
// ones finish on the old), a removed one drains.
package runtime

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/edge/conn"
	"github.com/offedge/offedge/edge/forward"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/plan"
)

// AddrMap maps the production addresses of a plan to the sockets actually
// used. Production uses none (the identity); the lab maps every address of
// every network to loopback so a whole infrastructure runs on one machine.
type AddrMap interface {
	// Listen maps a listener's address on network.
	Listen(network string, ap netip.AddrPort) (netip.AddrPort, error)
	// Dial maps an address the node connects to on network.
	Dial(network string, ap netip.AddrPort) (netip.AddrPort, error)
	// Source maps the source address the node presents on network. It
	// returns the zero Addr when no source binding is needed, and an error
	// when the node cannot present that address now (the lab's NAT gateway
	// is down).
	Source(network string, ip netip.Addr) (netip.Addr, error)
	// ACL maps an access list written in production addresses.
	ACL(network string, l acl.List) acl.List
}

// Options configure a node's runtime.
type Options struct {
	Logger *slog.Logger
	// Map is nil in production.
	Map AddrMap
	// RootCAs verifies TLS upstreams (the lab's CA); nil means the system pool.
	RootCAs *x509.CertPool
	// ShutdownTimeout bounds the drain of a removed listener and of Shutdown.
	ShutdownTimeout time.Duration
	// Keys caches the keys tunnels derive from their secrets (a slow KDF);
	// nil gives the node its own. The lab shares one between all nodes.
	Keys *tunnel.KeyCache
}

type role interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

type running struct {
	spec   plan.Listener
	bound  netip.AddrPort
	ln     *acl.Listener
	role   role
	stats  *acl.Stats
	served chan struct{}
}

// Node runs one node's plan.
type Node struct {
	name string
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	plan      atomic.Pointer[plan.Plan]
	listeners map[string]*running
	reloads   atomic.Uint64
	failures  atomic.Uint64
	lastErr   atomic.Pointer[string]
}

// Start opens every listener of p and serves it. When one cannot be opened
// (address in use, a secret file with loose permissions, a clear-text tunnel
// entrance on a public address) nothing is left running and the error says
// which listener failed.
func Start(p *plan.Plan, opts Options) (*Node, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	if opts.Keys == nil {
		opts.Keys = new(tunnel.KeyCache)
	}
	n := &Node{name: p.Node, opts: opts, log: opts.Logger.With("node", p.Node), listeners: map[string]*running{}}
	n.plan.Store(p)
	for _, l := range p.Listeners {
		r, err := n.open(l)
		if err != nil {
			n.Shutdown(context.Background())
			return nil, err
		}
		n.listeners[l.Key()] = r
	}
	return n, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.name }

// Plan returns the plan in force.
func (n *Node) Plan() *plan.Plan { return n.plan.Load() }

func (n *Node) open(l plan.Listener) (*running, error) {
	addr := l.Addr
	list := l.ACL
	if n.opts.Map != nil {
		var err error
		if addr, err = n.opts.Map.Listen(l.Network, l.Addr); err != nil {
			return nil, fmt.Errorf("%s on %s: %w", l.Name, l.Addr, err)
		}
		list = n.opts.Map.ACL(l.Network, l.ACL)
	}
	rl, err := n.newRole(l)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", l.Name, l.Addr, err)
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		rl.Shutdown(context.Background())
		return nil, fmt.Errorf("%s: listening on %s: %w", l.Name, addr, err)
	}
	stats := new(acl.Stats)
	fl := acl.Wrap(ln, list, acl.ListenerOptions{Name: l.Name, Logger: n.log, Stats: stats})
	r := &running{spec: l, bound: addr, ln: fl, role: rl, stats: stats, served: make(chan struct{})}
	go func() {
		defer close(r.served)
		if err := rl.Serve(fl); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, forward.ErrServerClosed) && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("listener stopped", "listener", l.Name, "addr", addr.String(), "err", err)
		}
	}()
	n.log.Info("listening", "listener", l.Name, "addr", addr.String(), "kind", l.Kind)
	return r, nil
}

func (n *Node) newRole(l plan.Listener) (role, error) {
	switch {
	case l.HTTP != nil:
		return httpedge.NewServer(*l.HTTP, httpedge.Options{Logger: n.log, Dial: n.dial, RootCAs: n.opts.RootCAs})
	case l.Entrance != nil:
		return tunnel.NewEntrance(*l.Entrance, tunnel.Options{Logger: n.log, Dial: n.dial, Keys: n.opts.Keys})
	case l.Exit != nil:
		return tunnel.NewExit(*l.Exit, tunnel.Options{Logger: n.log, Dial: n.dial, Keys: n.opts.Keys})
	case l.Forward != nil:
		return forward.New(*l.Forward, forward.Options{Logger: n.log, Dial: n.dial})
	}
	return nil, fmt.Errorf("listener of kind %q has no configuration", l.Kind)
}

// update applies a changed configuration to a running role in place.
func (n *Node) update(r *running, l plan.Listener) error {
	var err error
	switch rl := r.role.(type) {
	case *httpedge.Server:
		err = rl.Update(*l.HTTP)
	case *tunnel.Entrance:
		err = rl.Update(*l.Entrance)
	case *tunnel.Exit:
		err = rl.Update(*l.Exit)
	case *forward.Forwarder:
		err = rl.Update(*l.Forward)
	default:
		err = fmt.Errorf("cannot update a %T", r.role)
	}
	if err != nil {
		return err
	}
	list := l.ACL
	if n.opts.Map != nil {
		list = n.opts.Map.ACL(l.Network, l.ACL)
	}
	r.ln.SetList(list)
	r.spec = l
	return nil
}

// dial connects to a plan address: mapped (the lab), and from the source
// address the plan shows, so that access lists downstream (a tunnel exit
// admits only its entrance node's inventory address) see who is
// connecting. Production binds that source too, unless the plan goes
// through a NAT gateway (the source is then the gateway's) or stays on
// loopback; a source this host does not have fails with reason "source".
func (n *Node) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: not an address of the plan: %w", addr, err)
	}
	var d conn.Dialer
	target := ap
	info, known := n.plan.Load().Dials[ap]
	switch {
	case n.opts.Map != nil:
		if !known {
			return nil, fmt.Errorf("dial %s: the plan of %s does not reach this address", addr, n.name)
		}
		if target, err = n.opts.Map.Dial(info.Network, ap); err != nil {
			return nil, err
		}
		if d.Source, err = n.opts.Map.Source(info.Network, info.Source); err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
	case known && info.Via == "" && info.Network != plan.LoopbackNetwork:
		d.Source = info.Source
	}
	return d.DialContext(ctx, target.String())
}

func sameConfig(a, b plan.Listener) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// Apply makes p the node's plan, changing only what differs: listeners
// whose configuration is identical are untouched, changed ones are updated
// in place, new ones opened, removed ones drained. If anything fails, the
// listeners already changed keep their new configuration and the error says
// what failed; callers validate (compile) before calling Apply, so failures
// here are operating-system ones (a port taken by another program).
func (n *Node) Apply(ctx context.Context, p *plan.Plan) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reloads.Add(1)
	n.plan.Store(p)
	var errs []error
	want := map[string]plan.Listener{}
	for _, l := range p.Listeners {
		want[l.Key()] = l
	}
	for k, r := range n.listeners {
		if _, keep := want[k]; !keep {
			n.stop(ctx, r)
			delete(n.listeners, k)
		}
	}
	for _, l := range p.Listeners {
		k := l.Key()
		r, exists := n.listeners[k]
		switch {
		case exists && sameConfig(r.spec, l):
		case exists && r.spec.Kind == l.Kind:
			if err := n.update(r, l); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", l.Name, err))
			}
		default:
			if exists {
				n.stop(ctx, r)
				delete(n.listeners, k)
			}
			nr, err := n.open(l)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n.listeners[k] = nr
		}
	}
	if err := errors.Join(errs...); err != nil {
		n.failures.Add(1)
		msg := err.Error()
		n.lastErr.Store(&msg)
		return err
	}
	n.lastErr.Store(nil)
	return nil
}

func (n *Node) stop(ctx context.Context, r *running) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.ShutdownTimeout)
	defer cancel()
	if err := r.role.Shutdown(ctx); err != nil {
		n.log.Warn("drain incomplete", "listener", r.spec.Name, "err", err)
	}
	r.ln.Close()
	<-r.served
}

// Shutdown drains every listener within the shutdown timeout.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var wg sync.WaitGroup
	for k, r := range n.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.stop(ctx, r)
		}()
		delete(n.listeners, k)
	}
	wg.Wait()
	return nil
}

// OpenTunnel opens the named tunnel from this node's entrance, as the
// entrance does for a client, for a probe to speak the service's protocol
// through it.
func (n *Node) OpenTunnel(ctx context.Context, name string) (net.Conn, error) {
	n.mu.Lock()
	var ent *tunnel.Entrance
	for _, r := range n.listeners {
		if e, ok := r.role.(*tunnel.Entrance); ok && r.spec.Entrance != nil && r.spec.Entrance.Name == name {
			ent = e
			break
		}
	}
	n.mu.Unlock()
	if ent == nil {
		return nil, fmt.Errorf("node %s runs no entrance of tunnel %q", n.name, name)
	}
	return ent.Open(ctx)
}

// ListenerStatus is one listener as the status page shows it.
type ListenerStatus struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Network  string `json:"network"`
	Addr     string `json:"addr"`  // production address
	Bound    string `json:"bound"` // socket actually bound
	Accepted uint64 `json:"accepted"`
	Denied   uint64 `json:"denied"`
}

// Status is a snapshot of the node's listeners and reloads.
type Status struct {
	Node          string           `json:"node"`
	Listeners     []ListenerStatus `json:"listeners"`
	Reloads       uint64           `json:"reloads"`
	FailedReloads uint64           `json:"failed_reloads"`
	LastError     string           `json:"last_error,omitempty"`
}

// Status reports the node's listeners and counters.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := Status{Node: n.name, Reloads: n.reloads.Load(), FailedReloads: n.failures.Load()}
	if e := n.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	for _, r := range n.listeners {
		st.Listeners = append(st.Listeners, ListenerStatus{
			Name: r.spec.Name, Kind: r.spec.Kind, Network: r.spec.Network, Addr: r.spec.Addr.String(),
			Bound: r.bound.String(), Accepted: r.stats.Accepted.Load(), Denied: r.stats.Denied.Load(),
		})
	}
	sort.Slice(st.Listeners, func(i, j int) bool { return st.Listeners[i].Bound < st.Listeners[j].Bound })
	return st
}
