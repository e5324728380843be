// Package runtime is the only place where a plan meets the operating
// system. It builds the node's resources once (upstream pools, caches,
// access log files, certificates: see registry), shares them between the
// listeners, opens the plan's listeners, filters each through the same
// access-list wrapper and serves each with its role (an HTTP server, a
// tunnel entrance or exit, a forward).
//
// A reload (Apply) is all or nothing: every new resource is built, every
// changed listener's configuration prepared and every new socket bound
// before anything is swapped, so a reload that names a missing
// certificate, a bad htpasswd file or a missing static root, or whose new
// listener cannot bind, leaves the old configuration serving in full. An
// unchanged listener keeps its socket and its connections, a changed one is
// updated in place (new connections see the new configuration, open ones
// finish on the old), a removed one drains; a resource the new plan still
// declares unchanged survives the reload untouched, one it no longer
// declares is closed.
package runtime

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/edge/conn"
	"github.com/offedge/offedge/edge/forward"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/protect"
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
	// FDLimit is the number of file descriptors the node's listeners
	// share (see connCaps); 0 raises RLIMIT_NOFILE to its hard limit and
	// takes that.
	FDLimit uint64
	// StateDir is where the node keeps what must survive a restart (its
	// bans): the plan's relative state files are in it. "" keeps them in
	// memory (a library user, a test); offedge run passes --state-dir.
	StateDir string
	// ACME adjusts how the node's ACME certificates are obtained.
	ACME ACMEOptions
}

// statePath is where a plan's state file f is: absolute as the plan says,
// or in the state directory; "" when there is none.
func (o Options) statePath(f string) string {
	if f == "" || filepath.IsAbs(f) {
		return f
	}
	if o.StateDir == "" {
		return ""
	}
	return filepath.Join(o.StateDir, f)
}

type running struct {
	spec   plan.Listener
	bound  netip.AddrPort
	ln     *acl.Listener
	role   Role
	stats  *acl.Stats
	served chan struct{}
}

// Node runs one node's plan.
type Node struct {
	name string
	opts Options
	log  *slog.Logger
	reg  *registry
	// bans is the node's ban list, asked at accept by every listener.
	bans     *protect.BanList
	banState *banState

	mu        sync.Mutex // serialises Apply, Reload and Shutdown
	fdLimit   uint64
	caps      map[string]int // connection caps by listener key (connCaps), guarded by mu
	plan      atomic.Pointer[plan.Plan]
	pending   atomic.Pointer[plan.Plan] // the plan being applied: its dials are valid while it is prepared
	gen       *generation
	listeners map[string]*running
	reloads   atomic.Uint64
	failures  atomic.Uint64
	lastErr   atomic.Pointer[string]
}

// Start builds the resources of p, opens every listener and serves it.
// When one cannot be opened (address in use, a certificate that does not
// load, a secret file with loose permissions, a clear-text tunnel entrance
// on a public address) nothing is left running and the error says which
// listener or resource failed.
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
	bc := protect.BanListConfig{MaxBans: plan.DefaultMaxBans}
	if p.Resources.Bans != nil {
		bc = *p.Resources.Bans
	}
	bans, err := protect.NewBanList(bc, nil)
	if err != nil {
		return nil, fmt.Errorf("node %s: bans: %w", p.Node, err)
	}
	n.bans = bans
	n.banState = restoreBans(n.log, bans, opts.statePath(bc.StateFile), bc.MaxBans)
	n.reg = newRegistry(httpedge.Options{Logger: n.log, Dial: n.dial, RootCAs: opts.RootCAs}, opts.Keys, bans, opts.ACME)
	n.plan.Store(p)
	n.fdLimit = opts.FDLimit
	if n.fdLimit == 0 {
		n.fdLimit = raiseNoFile()
	}
	n.caps = connCaps(n.fdLimit, p.Listeners)
	gen, err := n.reg.acquire(&p.Resources)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", p.Node, err)
	}
	var opened []*running
	for _, l := range p.Listeners {
		r, err := n.prepare(l, gen)
		if err != nil {
			n.discard(opened)
			gen.release()
			return nil, err
		}
		opened = append(opened, r)
	}
	n.gen = gen
	for _, r := range opened {
		n.listeners[r.spec.Key()] = r
		n.serve(r)
	}
	return n, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.name }

// Plan returns the plan in force.
func (n *Node) Plan() *plan.Plan { return n.plan.Load() }

// aclOf is the access list of l, mapped.
func (n *Node) aclOf(l plan.Listener) acl.List {
	if n.opts.Map != nil {
		return n.opts.Map.ACL(l.Network, l.ACL)
	}
	return l.ACL
}

// prepare builds the role of l and binds its socket; nothing is served
// until serve.
func (n *Node) prepare(l plan.Listener, gen *generation) (*running, error) {
	rl, err := n.newRole(l, gen)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", l.Name, l.Addr, err)
	}
	r, err := n.bind(l, rl)
	if err != nil {
		rl.Shutdown(context.Background())
		return nil, err
	}
	return r, nil
}

// bind opens the socket of l for role rl.
func (n *Node) bind(l plan.Listener, rl Role) (*running, error) {
	addr := l.Addr
	if n.opts.Map != nil {
		var err error
		if addr, err = n.opts.Map.Listen(l.Network, l.Addr); err != nil {
			return nil, fmt.Errorf("%s on %s: %w", l.Name, l.Addr, err)
		}
	}
	var ln net.Listener
	var err error
	if l.HTTP != nil {
		ln, err = net.Listen("tcp", addr.String())
	} else {
		// Tunnels and forwards: keepalive set once on the listener,
		// inherited by every accepted connection.
		ln, err = conn.Listen(context.Background(), addr.String(), listenKeepAlive(l))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: listening on %s: %w", l.Name, addr, err)
	}
	stats := new(acl.Stats)
	fl := acl.Wrap(ln, n.aclOf(l), acl.ListenerOptions{Name: l.Name, Logger: n.log, Stats: stats, Gate: n.bans})
	return &running{spec: l, bound: addr, ln: fl, role: rl, stats: stats, served: make(chan struct{})}, nil
}

// listenKeepAlive is the TCP keepalive of the connections a tunnel or
// forward listener accepts: the entrance's own, or the plan's default.
func listenKeepAlive(l plan.Listener) time.Duration {
	if l.Entrance != nil {
		return l.Entrance.KeepAlive
	}
	return plan.DefaultTCPKeepAlive
}

func (n *Node) serve(r *running) {
	go func() {
		defer close(r.served)
		if err := r.role.Serve(r.ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, forward.ErrServerClosed) && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("listener stopped", "listener", r.spec.Name, "addr", r.bound.String(), "err", err)
		}
	}()
	n.log.Info("listening", "listener", r.spec.Name, "addr", r.bound.String(), "kind", r.spec.Kind)
}

// discard closes listeners prepared but never served.
func (n *Node) discard(rs []*running) {
	for _, r := range rs {
		r.role.Shutdown(context.Background())
		r.ln.Close()
	}
}

// dial connects to a plan address: mapped (the lab), and from the source
// address the plan shows (route).
func (n *Node) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	target, source, err := n.route(addr)
	if err != nil {
		return nil, err
	}
	return conn.Dialer{Source: source}.DialContext(ctx, target.String())
}

// route is where a connection to a plan address goes: mapped (the lab),
// and from the source address the plan shows, so that access lists
// downstream (a tunnel exit admits only its entrance node's inventory
// address) see who is connecting. Production binds that source too, unless
// the plan goes through a NAT gateway (the source is then the gateway's) or
// stays on loopback; a source this host does not have fails the dial with
// reason "source". Forwards connect from their own event loop with it.
func (n *Node) route(addr string) (netip.AddrPort, netip.Addr, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ap, netip.Addr{}, fmt.Errorf("dial %s: not an address of the plan: %w", addr, err)
	}
	target := ap
	var source netip.Addr
	info, known := n.plan.Load().Dials[ap]
	if !known {
		// A reload being prepared (its new pools' first health probes).
		if p := n.pending.Load(); p != nil {
			info, known = p.Dials[ap]
		}
	}
	switch {
	case n.opts.Map != nil:
		if !known {
			return ap, source, fmt.Errorf("dial %s: the plan of %s does not reach this address", addr, n.name)
		}
		if target, err = n.opts.Map.Dial(info.Network, ap); err != nil {
			return ap, source, err
		}
		if source, err = n.opts.Map.Source(info.Network, info.Source); err != nil {
			return ap, source, fmt.Errorf("dial %s: %w", addr, err)
		}
	case known && info.Via == "" && info.Network != plan.LoopbackNetwork:
		source = info.Source
	}
	return target, source, nil
}

func sameConfig(a, b plan.Listener) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// needsNewRole reports whether going from a to b cannot be an update in
// place: another kind, or an HTTP listener whose TLS switch or limits
// changed (fixed for a server's life).
func needsNewRole(a, b plan.Listener) bool {
	if a.Kind != b.Kind {
		return true
	}
	if a.HTTP != nil && b.HTTP != nil {
		return a.HTTP.TLS != b.HTTP.TLS || a.HTTP.Limits != b.HTTP.Limits
	}
	return false
}

// Apply makes p the node's plan, all or nothing. It first builds what p
// needs and the running plan does not have: resources, the new
// configuration of every changed listener, the roles and sockets of new
// listeners. If any of that fails, it is all discarded, the running
// configuration keeps serving untouched, the failure is counted
// (failed_reloads) and the error lists every problem. Only then does it
// swap: changed listeners are updated in place, new ones start serving,
// removed ones drain, and resources p no longer declares are closed.
// Listeners whose configuration and resources are identical are untouched.
func (n *Node) Apply(ctx context.Context, p *plan.Plan) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reloads.Add(1)
	if err := n.apply(ctx, p); err != nil {
		n.failed(err)
		return err
	}
	n.lastErr.Store(nil)
	return nil
}

// Reload loads a new plan and applies it. A plan that cannot be loaded
// (the inventory fails to load, check or compile) is a refused reload:
// counted in failed_reloads like one that fails to apply.
func (n *Node) Reload(ctx context.Context, load func() (*plan.Plan, error)) error {
	p, err := load()
	if err != nil {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.reloads.Add(1)
		err = fmt.Errorf("reload refused; the running configuration keeps serving: %w", err)
		n.failed(err)
		return err
	}
	return n.Apply(ctx, p)
}

func (n *Node) failed(err error) {
	n.failures.Add(1)
	msg := err.Error()
	n.lastErr.Store(&msg)
}

type replacement struct {
	old  *running
	spec plan.Listener
	role Role
}

type update struct {
	r      *running
	spec   plan.Listener
	commit func()
}

func (n *Node) apply(ctx context.Context, p *plan.Plan) error {
	n.pending.Store(p)
	defer n.pending.Store(nil)
	n.caps = connCaps(n.fdLimit, p.Listeners)
	gen, err := n.reg.acquire(&p.Resources)
	if err != nil {
		return fmt.Errorf("reload refused; the running configuration keeps serving: %w", err)
	}
	if bc := p.Resources.Bans; bc != nil {
		if err := n.bans.SetConfig(*bc); err != nil {
			gen.release()
			return fmt.Errorf("reload refused; the running configuration keeps serving: bans: %w", err)
		}
	}
	sameRes := n.gen != nil && n.gen.sameHTTP(gen)
	sameSecrets := n.gen != nil && sameMap(n.gen.secrets, gen.secrets)
	var (
		errs     []error
		updates  []update
		opened   []*running
		replaced []replacement
		want     = map[string]bool{}
	)
	for _, l := range p.Listeners {
		k := l.Key()
		want[k] = true
		r, exists := n.listeners[k]
		switch {
		case exists && sameConfig(r.spec, l) && (l.HTTP == nil || sameRes) && (!l.Tunnel() || sameSecrets):
			// Untouched.
		case exists && !needsNewRole(r.spec, l):
			commit, err := r.role.Update(n.budgeted(l), gen)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s on %s: %w", l.Name, l.Addr, err))
				continue
			}
			updates = append(updates, update{r, l, commit})
		case exists:
			rl, err := n.newRole(l, gen)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s on %s: %w", l.Name, l.Addr, err))
				continue
			}
			replaced = append(replaced, replacement{r, l, rl})
		default:
			nr, err := n.prepare(l, gen)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			opened = append(opened, nr)
		}
	}
	if len(errs) > 0 {
		n.discard(opened)
		for _, rp := range replaced {
			rp.role.Shutdown(context.Background())
		}
		gen.release()
		return fmt.Errorf("reload refused; the running configuration keeps serving: %w", errors.Join(errs...))
	}

	// Everything is built: swap.
	n.plan.Store(p)
	if bc := p.Resources.Bans; bc != nil {
		n.banState.setPath(n.opts.statePath(bc.StateFile))
	}
	for _, u := range updates {
		u.commit()
		u.r.ln.SetList(n.aclOf(u.spec))
		u.r.spec = u.spec
	}
	for _, r := range opened {
		n.listeners[r.spec.Key()] = r
		n.serve(r)
	}
	for k, r := range n.listeners {
		if !want[k] {
			n.stop(ctx, r)
			delete(n.listeners, k)
		}
	}
	// A listener that changed kind (or TLS, or limits) needs its socket:
	// the old role drains, then the new one binds the address it freed.
	for _, rp := range replaced {
		n.stop(ctx, rp.old)
		delete(n.listeners, rp.spec.Key())
		r, err := n.bind(rp.spec, rp.role)
		if err != nil {
			rp.role.Shutdown(context.Background())
			errs = append(errs, err)
			continue
		}
		n.listeners[rp.spec.Key()] = r
		n.serve(r)
	}
	old := n.gen
	n.gen = gen
	old.release()
	if len(errs) > 0 {
		return fmt.Errorf("reload applied, but a replaced listener could not reopen its socket: %w", errors.Join(errs...))
	}
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

// Shutdown drains every listener within the shutdown timeout, then closes
// the node's resources.
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
	n.gen.release()
	n.gen = nil
	n.banState.stop()
	return nil
}

// OpenTunnel opens the named tunnel from this node's entrance, as the
// entrance does for a client, for a probe to speak the service's protocol
// through it.
func (n *Node) OpenTunnel(ctx context.Context, name string) (net.Conn, error) {
	n.mu.Lock()
	var ent opener
	for _, r := range n.listeners {
		if e, ok := r.role.(opener); ok && r.spec.Entrance != nil && r.spec.Entrance.Name == name {
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
	// Stats is the role's own snapshot (requests, tunnels, bytes...).
	Stats RoleStats `json:"stats"`
}

// Status is a snapshot of the node: its listeners, its resources and its
// reloads. Metrics (package observe) read it.
type Status struct {
	Node      string           `json:"node"`
	Listeners []ListenerStatus `json:"listeners"`
	// Upstreams is the state of every server of every pool of the node,
	// once each (the listeners share the pools).
	Upstreams []httpedge.UpstreamStats `json:"upstreams,omitempty"`
	// Resources lists the node's open resources, "kind name".
	Resources []string `json:"resources,omitempty"`
	// Protection counts the decisions of the node's rate zones, jails and
	// ban list.
	Protection ProtectionStatus `json:"protection"`
	// Certificates are the certificates the node serves, once each.
	Certificates []CertificateStatus `json:"certificates,omitempty"`
	// Caches are the node's response caches (proxy caches and static
	// fallbacks) by name: contents, answers, removals.
	Caches map[string]httpedge.CacheStats `json:"caches,omitempty"`
	// ACME are the certificates the node obtains itself (also among
	// Certificates, as what is served).
	ACME []ACMEStatus `json:"acme,omitempty"`
	// Reloads counts reload attempts; FailedReloads those refused (the
	// running configuration kept serving) or, rarely, applied only in part
	// (a replaced listener could not reopen its socket).
	Reloads       uint64 `json:"reloads"`
	FailedReloads uint64 `json:"failed_reloads"`
	LastError     string `json:"last_error,omitempty"`
}

// CertificateStatus is one certificate resource of the node.
type CertificateStatus struct {
	// Name is the plan's resource name.
	Name     string    `json:"name"`
	Names    []string  `json:"names"`
	NotAfter time.Time `json:"not_after"`
}

// Status reports the node's listeners and counters.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := Status{Node: n.name, Reloads: n.reloads.Load(), FailedReloads: n.failures.Load(), Resources: n.reg.open()}
	if e := n.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	for _, r := range n.listeners {
		st.Listeners = append(st.Listeners, ListenerStatus{
			Name: r.spec.Name, Kind: r.spec.Kind, Network: r.spec.Network, Addr: r.spec.Addr.String(),
			Bound: r.bound.String(), Accepted: r.stats.Accepted.Load(), Denied: r.stats.Denied.Load(),
			Stats: r.role.Stats(),
		})
	}
	sort.Slice(st.Listeners, func(i, j int) bool { return st.Listeners[i].Bound < st.Listeners[j].Bound })
	st.Protection.Bans = n.bans.Stats()
	st.Protection.BanState = n.banState.stats()
	if n.gen != nil {
		for name, z := range n.gen.http.Zones {
			if st.Protection.Zones == nil {
				st.Protection.Zones = map[string]protect.ZoneStats{}
			}
			st.Protection.Zones[name] = z.Stats()
		}
		for name, j := range n.gen.http.Jails {
			if st.Protection.Jails == nil {
				st.Protection.Jails = map[string]uint64{}
			}
			st.Protection.Jails[name] = j.Banned()
		}
		if t := n.gen.http.Tarpit; t != nil {
			st.Protection.TarpitHeld, st.Protection.TarpitOverrun = t.Held(), t.Overrun()
		}
		for _, name := range slices.Sorted(maps.Keys(n.gen.http.Pools)) {
			st.Upstreams = append(st.Upstreams, n.gen.http.Pools[name].Stats()...)
		}
		for name, c := range n.gen.http.Caches {
			if st.Caches == nil {
				st.Caches = map[string]httpedge.CacheStats{}
			}
			st.Caches[name] = c.Stats()
		}
		for _, name := range slices.Sorted(maps.Keys(n.gen.http.Certificates)) {
			c := n.gen.http.Certificates[name]
			cs := CertificateStatus{Name: name, Names: c.Names()}
			if leaf := c.Leaf(); leaf != nil {
				cs.NotAfter = leaf.NotAfter
			}
			if a, ok := n.plan.Load().Resources.ACME[name]; ok && c.Pending() && a.Fallback == nil {
				// A self-signed placeholder's expiry means nothing (the
				// ACME metrics say why it is served).
				cs.NotAfter = time.Time{}
			}
			st.Certificates = append(st.Certificates, cs)
		}
		for _, ac := range n.gen.acme {
			st.ACME = append(st.ACME, ac.status())
		}
	}
	return st
}

// RenewCertificate forces the renewal of the node's ACME certificate
// that names name (a host of its site, or the plan's resource name).
func (n *Node) RenewCertificate(name string) error {
	n.mu.Lock()
	var list []*acmeCert
	if n.gen != nil {
		list = n.gen.acme
	}
	n.mu.Unlock()
	for _, ac := range list {
		if ac.name == name || slices.Contains(ac.spec.Names, name) {
			if err := ac.renew(); err != nil {
				return fmt.Errorf("certificate %s: %w", ac.name, err)
			}
			return nil
		}
	}
	return fmt.Errorf("node %s obtains no ACME certificate for %q", n.name, name)
}

// ProtectionStatus is what the node's protections did.
type ProtectionStatus struct {
	Zones map[string]protect.ZoneStats `json:"zones,omitempty"`
	// Jails counts the bans each jail made.
	Jails         map[string]uint64 `json:"jails,omitempty"`
	Bans          protect.BanStats  `json:"bans"`
	BanState      BanStateStats     `json:"ban_state"`
	TarpitHeld    uint64            `json:"tarpit_held,omitempty"`
	TarpitOverrun uint64            `json:"tarpit_overrun,omitempty"`
}

// Bans is the node's ban list: bans added here are refused at accept by
// every listener, from the next connection on.
func (n *Node) Bans() *protect.BanList { return n.bans }

// PurgeCache drops the entry of key (the key text: its parts joined by
// spaces) from the named cache; it reports whether there was one.
func (n *Node) PurgeCache(cache, key string) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gen == nil {
		return false, errors.New("the node serves nothing")
	}
	c, ok := n.gen.http.Caches[cache]
	if !ok {
		return false, fmt.Errorf("no cache %q on node %s", cache, n.name)
	}
	return c.Purge(key), nil
}
