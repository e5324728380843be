package plan

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/edge/forward"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/pki"
)

// Options adjust where a plan finds files. The zero value is production.
type Options struct {
	// Root is prepended to every file path in the plan (certificates,
	// secrets, static roots, error pages, logs). The lab gives each node its
	// own directory this way; production leaves it empty.
	Root string
	// CertbotDir is certbot's configuration directory (default /etc/letsencrypt).
	CertbotDir string
	// PKIDir holds the CA and node certificates of `offedge pki` (default /etc/offedge/pki).
	PKIDir string
	// UserspaceForwards relays forwards with mode kernel in userspace, with
	// the same allow list: the loopback lab has no kernel NAT.
	UserspaceForwards bool
	// HTTP01Port is the port ACME CAs validate HTTP-01 on: 80, unless a
	// test's or the lab's pebble validates on another.
	HTTP01Port int
}

func (o Options) file(p string) string {
	if p == "" {
		return ""
	}
	if o.Root == "" {
		return p
	}
	return path.Join(o.Root, p)
}

// CompileError lists every reason a node's plan cannot be built.
type CompileError struct {
	Node     string
	Problems []string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("node %q: cannot compile its plan:\n  %s", e.Node, strings.Join(e.Problems, "\n  "))
}

type compiler struct {
	m        *inventory.Model
	node     *inventory.Node
	opts     Options
	plan     *Plan
	problems []string
	// upstreamOK remembers, per upstream name, whether it compiled (each
	// upstream is compiled once per node, however many routes use it).
	upstreamOK map[string]bool
	// errorLogs are the log files sites write their error logs to (a file
	// is an access log or an error log, never both).
	errorLogs map[string]bool
}

func (c *compiler) fail(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// Compile returns what node runs. It fails, listing every problem, when a
// listener cannot be placed or an upstream cannot be reached: the same
// conditions `offedge check` reports, so a plan that compiles can be served.
func Compile(m *inventory.Model, node string, opts Options) (*Plan, error) {
	n := m.Node(node)
	if n == nil {
		return nil, fmt.Errorf("unknown node %q", node)
	}
	if opts.CertbotDir == "" {
		opts.CertbotDir = "/etc/letsencrypt"
	}
	if opts.PKIDir == "" {
		opts.PKIDir = "/etc/offedge/pki"
	}
	if opts.HTTP01Port == 0 {
		opts.HTTP01Port = 80
	}
	c := &compiler{m: m, node: n, opts: opts, upstreamOK: map[string]bool{}, errorLogs: map[string]bool{}, plan: &Plan{Node: node, Dials: map[netip.AddrPort]Dial{}, Resources: Resources{
		Upstreams:    map[string]httpedge.Upstream{},
		Caches:       map[string]httpedge.Cache{},
		AccessLogs:   map[string]httpedge.AccessLog{},
		Certificates: map[string]httpedge.Certificate{},
	}}}
	c.protection()
	c.sites()
	c.tunnels()
	c.forwards()
	c.conflicts()
	c.plan.Admin = c.admin() // before the firewall, which admits its ACL
	c.plan.Firewall = c.firewall()
	c.plan.Storage = c.storage()
	if len(c.problems) > 0 {
		return nil, &CompileError{Node: node, Problems: c.problems}
	}
	sort.SliceStable(c.plan.Listeners, func(i, j int) bool {
		a, b := c.plan.Listeners[i], c.plan.Listeners[j]
		if a.Addr.Addr() != b.Addr.Addr() {
			return a.Addr.Addr().Less(b.Addr.Addr())
		}
		return a.Addr.Port() < b.Addr.Port()
	})
	return c.plan, nil
}

// dial records how the node reaches a target and returns its address.
func (c *compiler) dial(t inventory.Target) string {
	if !t.Loopback {
		d := Dial{Network: t.Network, Source: t.Source}
		if t.Via != nil {
			d.Via = t.Via.Name
		}
		c.plan.Dials[t.Addr] = d
	} else {
		c.plan.Dials[t.Addr] = Dial{Network: LoopbackNetwork, Source: t.Source}
	}
	return t.Addr.String()
}

// aclFor resolves allow entries for a listener on network. An empty list
// denies everyone (the default for TCP services); "any" admits everyone.
func (c *compiler) aclFor(allow []string, network, object string) acl.List {
	if network == LoopbackNetwork {
		// Only processes on the node itself can reach a loopback listener.
		return acl.List{Rules: []acl.Rule{
			{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Allow: true, From: "loopback"},
			{Prefix: netip.MustParsePrefix("::1/128"), Allow: true, From: "loopback"},
		}}
	}
	res := c.m.ResolveAllow(allow, network)
	if len(res.Unknown) > 0 {
		c.fail("%s: allow names unknown %s", object, strings.Join(res.Unknown, ", "))
	}
	if res.Any {
		return acl.AllowAll()
	}
	var l acl.List
	for _, s := range res.Sources {
		l.Rules = append(l.Rules, acl.Rule{Prefix: s.Prefix, Allow: true, From: s.From})
	}
	return l
}

func (c *compiler) addrsOn(network string, only netip.Addr) []netip.Addr {
	if only.IsValid() {
		return []netip.Addr{only}
	}
	var out []netip.Addr
	for _, a := range c.node.AddressesOn(network) {
		out = append(out, a.IP)
	}
	return out
}

// upstream declares the named upstream among the node's resources (once,
// whatever number of routes and listeners use it) and returns its name.
func (c *compiler) upstream(name, object string) string {
	if ok, done := c.upstreamOK[name]; done {
		if !ok {
			return ""
		}
		return name
	}
	u := c.m.Upstream(name)
	if u == nil {
		c.fail("%s: unknown upstream %q", object, name)
		c.upstreamOK[name] = false
		return ""
	}
	out := httpedge.Upstream{
		Name:           u.Name,
		Host:           u.Host,
		Keepalive:      orInt(u.Keepalive, DefaultKeepalive),
		ConnectTimeout: or(u.ConnectTimeout.D(), DefaultConnectTimeout),
		ReadTimeout:    or(u.ReadTimeout.D(), DefaultUpstreamRead),
		MaxFails:       orInt(u.MaxFails, DefaultMaxFails),
		FailTimeout:    or(u.FailTimeout.D(), DefaultFailTimeout),
	}
	if h := u.HealthCheck; h != nil {
		out.HealthCheck = &httpedge.HealthCheck{
			Path: h.Path, Status: h.Status,
			Interval: or(h.Interval.D(), DefaultHealthInterval), Timeout: or(h.Timeout.D(), DefaultHealthTimeout),
			Rise: orInt(h.Rise, DefaultHealthRise), Fall: orInt(h.Fall, DefaultHealthFall),
		}
	}
	ok := true
	for i, s := range u.Servers {
		t, reached := c.m.ReachUpstreamServer(c.node, s)
		if !reached {
			c.fail("%s: upstream %q server %d: no network path from %s", object, u.Name, i, c.node.Name)
			ok = false
			continue
		}
		out.Servers = append(out.Servers, httpedge.UpstreamServer{
			Addr: c.dial(t), Weight: orInt(s.Weight, DefaultWeight), Backup: s.Backup, TLS: s.TLS, ServerName: s.ServerName, MaxConns: s.MaxConns,
		})
		if s.MaxConns > 0 {
			// Only a capped pool queues: its wait is shown, resolved.
			out.Queue, out.QueueTimeout = u.Queue, or(u.QueueTimeout.D(), DefaultQueueTimeout)
		}
	}
	if u.Retries != nil {
		out.Retries = *u.Retries
	} else {
		out.Retries = max(len(out.Servers)-1, 0)
	}
	c.upstreamOK[name] = ok
	if !ok {
		return ""
	}
	c.plan.Resources.Upstreams[name] = out
	return name
}

// certificate declares a site's certificate and returns its name: the
// certbot lineage, the certificate file, or the ACME certificate's name.
func (c *compiler) certificate(s *inventory.Site) string {
	if s.TLS.ACME != nil {
		return c.acmeCertificate(s)
	}
	name, files := c.filesCertificate(s.TLS)
	c.plan.Resources.Certificates[name] = files
	return name
}

// filesCertificate is where a site's certbot or certificate files are.
func (c *compiler) filesCertificate(t *inventory.TLS) (string, httpedge.Certificate) {
	if t.Certbot == "" {
		return t.CertFile, httpedge.Certificate{CertFile: c.opts.file(t.CertFile), KeyFile: c.opts.file(t.KeyFile)}
	}
	dir, name := c.opts.CertbotDir, t.Certbot
	if t.CertbotDir != "" {
		dir, name = t.CertbotDir, path.Join(t.CertbotDir, t.Certbot)
	}
	return name, httpedge.Certificate{
		CertFile: c.opts.file(path.Join(dir, "live", t.Certbot, "fullchain.pem")),
		KeyFile:  c.opts.file(path.Join(dir, "live", t.Certbot, "privkey.pem")),
	}
}

// accessLog declares a log file, named by its path: one writer per file,
// whatever number of sites and listeners write to it.
func (c *compiler) accessLog(a *inventory.AccessLog, object string) *httpedge.SiteLog {
	p := c.opts.file(a.Path)
	if c.errorLogs[p] {
		c.fail("%s: access log %s is a site's error log too; give each its own file", object, a.Path)
	}
	f := httpedge.AccessLog{Path: p, BufferBytes: orInt(int(a.Buffer), DefaultLogBuffer), FlushInterval: or(a.Flush.D(), DefaultLogFlush)}
	if prev, ok := c.plan.Resources.AccessLogs[p]; ok && prev != f {
		c.fail("%s: access log %s: buffer %d and flush %s differ from another site's (%d, %s) writing the same file",
			object, a.Path, f.BufferBytes, f.FlushInterval, prev.BufferBytes, prev.FlushInterval)
	}
	c.plan.Resources.AccessLogs[p] = f
	format := a.Format
	if format == "" {
		format = DefaultLogFormat
	}
	return &httpedge.SiteLog{File: p, Format: format}
}

// errorLog declares a site's error log: a log file of the node (one
// writer per path, shared by the sites naming it), written through small
// buffers flushed every DefaultLogFlush.
func (c *compiler) errorLog(e *inventory.ErrorLog, object string) *httpedge.SiteErrorLog {
	p := c.opts.file(e.Path)
	f := httpedge.AccessLog{Path: p, BufferBytes: DefaultErrorLogBuffer, FlushInterval: DefaultLogFlush}
	if _, ok := c.plan.Resources.AccessLogs[p]; ok && !c.errorLogs[p] {
		c.fail("%s: error log %s is an access log too; give each its own file", object, e.Path)
	}
	c.errorLogs[p] = true
	c.plan.Resources.AccessLogs[p] = f
	return &httpedge.SiteErrorLog{File: p, Level: errorLogLevel(e.Level)}
}

// errorLogLevel maps nginx's error_log levels onto the edge's four.
func errorLogLevel(l string) string {
	switch l {
	case "":
		return DefaultErrorLogLevel
	case "notice":
		return "info"
	case "crit", "alert", "emerg":
		return "error"
	}
	return l
}

// cache declares the cache of a static route with a fallback, named after
// the site and the route: the same route served on two listeners (ports 80
// and 443) shares one cache.
func (c *compiler) cache(s *inventory.Site, r *inventory.Route) string {
	name := s.Name + " " + r.Path
	hc := httpedge.Cache{MaxBytes: DefaultCacheBytes, TTL: map[int]time.Duration{200: DefaultFallbackTTL}, Inactive: DefaultCacheInactive}
	if ca := r.Static.Cache; ca != nil {
		hc = httpedge.Cache{Dir: c.opts.file(ca.Dir), MaxBytes: int64(ca.MaxSize), TTL: map[int]time.Duration{}, Inactive: or(ca.Inactive.D(), DefaultCacheInactive)}
		if hc.MaxBytes == 0 {
			hc.MaxBytes = DefaultCacheBytes
		}
		for code, d := range ca.TTL {
			hc.TTL[code] = d.D()
		}
	}
	c.plan.Resources.Caches[name] = hc
	return name
}

func (c *compiler) site(s *inventory.Site, network string) httpedge.Site {
	obj := fmt.Sprintf("site %q", s.Name)
	out := httpedge.Site{
		Name: s.Name, Hosts: s.Hosts, Default: s.Default, Headers: s.Headers, HeadersAlways: s.HeadersAlways,
		MaintenanceFile: c.opts.file(s.MaintenanceFile),
	}
	if t := s.TLS; t != nil {
		out.Certificate = c.certificate(s)
		if t.MinVersion != "" || len(t.Ciphers) > 0 || len(t.Curves) > 0 || t.SessionTickets != nil {
			out.TLSPolicy = &httpedge.TLSPolicy{MinVersion: t.MinVersion, Ciphers: t.Ciphers, Curves: t.Curves,
				NoSessionTickets: t.SessionTickets != nil && !*t.SessionTickets}
		}
	}
	if len(s.ErrorPages) > 0 {
		out.ErrorPages = map[int]string{}
		for code, p := range s.ErrorPages {
			out.ErrorPages[code] = c.opts.file(p)
		}
	}
	if a := s.AccessLog; a != nil {
		out.AccessLog = c.accessLog(a, obj)
	}
	if e := s.ErrorLog; e != nil {
		out.ErrorLog = c.errorLog(e, obj)
	}
	if len(s.Allow) > 0 {
		l := c.aclFor(s.Allow, network, obj)
		out.Allow = &l
	}
	c.siteProtection(s, &out, network)
	out.Maps, out.Rewrites = inventory.MapConfigs(s.Maps), inventory.StepConfigs(s.Rewrites)
	for _, r := range s.Routes {
		robj := fmt.Sprintf("%s: route %q", obj, r.Path)
		hr := httpedge.Route{
			Path: r.Path, Exact: r.Kind() == inventory.MatchExact, Redirect: r.Redirect,
			Headers: r.Headers, HeadersAlways: r.HeadersAlways, NoSiteHeaders: r.HeadersInherit != nil && !*r.HeadersInherit,
			Expires:      expires(s.Expires, r.Expires),
			Compress:     compress(s.Compress, r.Compress, r.Static != nil),
			MaxBodyBytes: int64(r.MaxBodySize), WebSocket: r.WebSocket,
			BasicAuthFile:     c.opts.file(r.BasicAuth),
			StreamRequestBody: r.RequestBuffering != nil && !*r.RequestBuffering,
		}
		if k := r.Kind(); k != inventory.MatchExact && k != inventory.MatchPrefix {
			hr.Match = k
		}
		if hr.MaxBodyBytes == 0 {
			hr.MaxBodyBytes = DefaultMaxBodyBytes
		}
		if r.Redirect != "" {
			hr.RedirectCode = orInt(r.RedirectCode, DefaultRedirectCode)
		}
		if r.Upstream != "" {
			hr.Upstream = c.upstream(r.Upstream, robj)
			if r.Cache != nil {
				hr.Cache = routeCache(r.Cache)
			}
		}
		hr.Limits = c.routeLimits(r.Limits)
		hr.Rewrites, hr.UpstreamPath = inventory.StepConfigs(r.Rewrites), r.UpstreamPath
		if st := r.Static; st != nil {
			hs := &httpedge.Static{Root: c.opts.file(st.Root)}
			if st.Fallback != "" {
				hs.Fallback = c.upstream(st.Fallback, robj+" fallback")
				hs.Cache = c.cache(s, r)
			}
			hr.Static = hs
		}
		out.Routes = append(out.Routes, hr)
	}
	if fwd := c.challengeForward(s); fwd != nil {
		out.Routes = append(out.Routes, *fwd)
	}
	return out
}

// expires is a route's expires: its own, else its site's (nginx inherits
// expires into a location that sets none); "off" is none.
func expires(site, route *inventory.Expires) *httpedge.Expires {
	e := site
	if route != nil {
		e = route
	}
	if e == nil || e.Mode == "off" {
		return nil
	}
	return &httpedge.Expires{Mode: e.Mode, Seconds: e.Seconds}
}

// compress is a route's compression: each field its own, else its
// site's, else the defaults table's; nil when neither coding is on.
// gzip_static applies to static routes only.
func compress(site, route *inventory.Compress, static bool) *httpedge.Compress {
	if site == nil && route == nil {
		return nil
	}
	var s, r inventory.Compress
	if site != nil {
		s = *site
	}
	if route != nil {
		r = *route
	}
	flag := func(a, b *bool, def bool) bool {
		switch {
		case a != nil:
			return *a
		case b != nil:
			return *b
		}
		return def
	}
	out := &httpedge.Compress{
		Gzip:      flag(r.Gzip, s.Gzip, true),
		Zstd:      flag(r.Zstd, s.Zstd, true),
		Static:    static && flag(r.GzipStatic, s.GzipStatic, false),
		Types:     DefaultCompressTypes,
		MinLength: DefaultCompressMinLength,
		GzipLevel: orInt(r.Level, orInt(s.Level, DefaultGzipLevel)),
	}
	if !out.Gzip && !out.Zstd {
		return nil
	}
	switch {
	case r.Types != nil:
		out.Types = r.Types
	case s.Types != nil:
		out.Types = s.Types
	}
	switch {
	case r.MinLength != nil:
		out.MinLength = int64(*r.MinLength)
	case s.MinLength != nil:
		out.MinLength = int64(*s.MinLength)
	}
	return out
}

func (c *compiler) sites() {
	type key struct {
		network string
		addr    netip.AddrPort
	}
	type group struct {
		l        *Listener
		tls      bool
		redirect bool
		owners   []string
		open     bool // some site on it admits anyone
	}
	groups := map[key]*group{}
	var order []key
	for _, s := range c.m.SitesOn(c.node.Name) { // the model's index: compiling every node stays linear
		if s.Node != c.node.Name {
			continue
		}
		for _, l := range s.Listen {
			for _, ip := range c.addrsOn(l.Network, l.Address) {
				k := key{l.Network, netip.AddrPortFrom(ip, uint16(l.Port))}
				g := groups[k]
				if g == nil {
					g = &group{tls: l.TLS, redirect: l.RedirectHTTPS, l: &Listener{
						Name: fmt.Sprintf("http %s", k.addr), Kind: KindHTTP, Network: l.Network, Addr: k.addr,
						Public: c.m.IsPublic(l.Network),
						HTTP: &httpedge.Config{Listener: fmt.Sprintf("%s %s", c.node.Name, k.addr), TLS: l.TLS, RedirectHTTPS: l.RedirectHTTPS,
							Limits: DefaultLimits()},
					}}
					groups[k] = g
					order = append(order, k)
				}
				if g.tls != l.TLS {
					c.fail("listener %s: sites %s and %q disagree on tls", k.addr, strings.Join(g.owners, ", "), s.Name)
				}
				if g.redirect != l.RedirectHTTPS {
					c.fail("listener %s: sites %s and %q disagree on redirect_https", k.addr, strings.Join(g.owners, ", "), s.Name)
				}
				if l.TLS && s.TLS == nil {
					c.fail("site %q: listens with tls on %s but has no certificate source", s.Name, k.addr)
				}
				g.owners = append(g.owners, fmt.Sprintf("%q", s.Name))
				hs := c.site(s, l.Network)
				if l.TLS && s.TLS != nil && (s.TLS.HSTS == nil || *s.TLS.HSTS) {
					hs.HSTS = httpedge.DefaultHSTS
				}
				g.l.HTTP.Sites = append(g.l.HTTP.Sites, hs)
				if len(s.Allow) == 0 {
					g.open = true
				} else {
					add := c.aclFor(s.Allow, l.Network, fmt.Sprintf("site %q", s.Name))
					g.l.ACL.Rules = append(g.l.ACL.Rules, add.Rules...)
					g.l.ACL.Default = g.l.ACL.Default || add.Default
				}
			}
		}
	}
	forwarded := c.holdsForwardedChallenges()
	for _, k := range order {
		g := groups[k]
		if forwarded && !g.tls && int(k.addr.Port()) == c.opts.HTTP01Port {
			g.l.HTTP.Sites = append(g.l.HTTP.Sites, forwardedChallengeSite())
		}
		if g.open {
			// Site allow lists are enforced per request once the Host is known.
			g.l.ACL = acl.AllowAll()
		}
		c.plan.Listeners = append(c.plan.Listeners, *g.l)
	}
}

// tunnelAuth declares the secret of t's end use ("TUNNEL entrance" or
// "TUNNEL exit") on this node, once per node, and returns the auth that
// names it.
func (c *compiler) tunnelAuth(t *inventory.Tunnel, peers []string, use string) tunnel.Auth {
	if t.Auth == nil {
		return tunnel.Auth{}
	}
	var name string
	var s tunnel.Secret
	var a tunnel.Auth
	if t.Auth.PSK != "" {
		name, s = "psk "+t.Name, tunnel.Secret{PSKFile: c.opts.file(t.Auth.PSK), Tunnel: t.Name}
		a = tunnel.Auth{Secret: name}
	} else {
		f := pki.NodeFiles(c.opts.file(c.opts.PKIDir), c.node.Name)
		name, s = "pki", tunnel.Secret{CAFile: f.CA, CertFile: f.Cert, KeyFile: f.Key}
		a = tunnel.Auth{Secret: name, PKI: &tunnel.PKIAuth{PeerNames: peers}}
	}
	if c.plan.Resources.Secrets == nil {
		c.plan.Resources.Secrets = map[string]TunnelSecret{}
	}
	ts := c.plan.Resources.Secrets[name]
	ts.Secret = s
	if !slices.Contains(ts.Uses, use) {
		ts.Uses = append(ts.Uses, use)
		slices.Sort(ts.Uses)
	}
	c.plan.Resources.Secrets[name] = ts
	return a
}

func (c *compiler) endpointListeners(e *inventory.Endpoint) (network string, addrs []netip.AddrPort) {
	if e.Loopback {
		return LoopbackNetwork, c.m.EndpointAddrs(e)
	}
	return e.Network, c.m.EndpointAddrs(e)
}

func (c *compiler) tunnels() {
	exits := map[string]*Listener{}
	var exitOrder []string
	for _, t := range c.m.TunnelsAt(c.node.Name) {
		obj := fmt.Sprintf("tunnel %q", t.Name)
		svc := c.m.Service(t.Service)
		if t.Entrance != nil && t.Entrance.Node == c.node.Name {
			cfg := &tunnel.EntranceConfig{
				Name: t.Name, ConnectTimeout: or(t.ConnectTimeout.D(), DefaultConnectTimeout),
				HandshakeTimeout: DefaultHandshakeTimeout, IdleTimeout: or(t.IdleTimeout.D(), DefaultTunnelIdle),
				KeepAlive: DefaultTCPKeepAlive, AllowPublic: t.Entrance.Public, KeyExchange: t.KeyExchange,
				Mux: t.Mux == nil || *t.Mux, MaxConns: DefaultMaxConns, MaxConnsPerClient: DefaultMaxConnsPerClient,
			}
			var peers []string
			for i, ex := range t.Exits {
				tg, ok := c.m.ReachEndpoint(c.node, ex)
				if !ok {
					c.fail("%s: exit %d on %s is unreachable from the entrance on %s", obj, i, ex.Node, c.node.Name)
					continue
				}
				cfg.Exits = append(cfg.Exits, c.dial(tg))
				peers = append(peers, ex.Node)
			}
			cfg.Auth = c.tunnelAuth(t, peers, t.Name+" entrance")
			network, addrs := c.endpointListeners(t.Entrance)
			cfg.Public = c.m.IsPublic(network)
			for _, ap := range addrs {
				c.plan.Listeners = append(c.plan.Listeners, Listener{
					Name: fmt.Sprintf("tunnel %s entrance", t.Name), Kind: KindTunnelEntrance,
					Network: network, Addr: ap, Public: cfg.Public,
					ACL: c.aclFor(t.Allow, network, obj+" entrance"), Entrance: cfg,
				})
			}
		}
		for _, ex := range t.Exits {
			if ex.Node != c.node.Name {
				continue
			}
			et := tunnel.ExitTunnel{
				Name: t.Name, ConnectTimeout: or(t.ConnectTimeout.D(), DefaultConnectTimeout),
				IdleTimeout: or(t.IdleTimeout.D(), DefaultTunnelIdle), KeepAlive: DefaultTCPKeepAlive,
			}
			var entranceNode *inventory.Node
			if t.Entrance != nil {
				entranceNode = c.m.Node(t.Entrance.Node)
			}
			var peers []string
			if entranceNode != nil {
				peers = []string{entranceNode.Name}
			}
			et.Auth = c.tunnelAuth(t, peers, t.Name+" exit")
			if svc != nil {
				tg, ok := c.m.ReachService(c.node, svc)
				if !ok {
					c.fail("%s: the exit on %s cannot reach service %q", obj, c.node.Name, svc.Name)
				} else {
					et.Target = c.dial(tg)
				}
			}
			network, addrs := c.endpointListeners(ex)
			for _, ap := range addrs {
				k := network + " " + ap.String()
				l := exits[k]
				if l == nil {
					l = &Listener{
						Name: fmt.Sprintf("tunnel exit %s", ap), Kind: KindTunnelExit, Network: network, Addr: ap,
						Public: c.m.IsPublic(network),
						Exit: &tunnel.ExitConfig{Listener: fmt.Sprintf("%s %s", c.node.Name, ap), HandshakeTimeout: DefaultHandshakeTimeout,
							MaxConns: DefaultMaxConns, MaxConnsPerClient: DefaultMaxConnsPerClient},
					}
					exits[k] = l
					exitOrder = append(exitOrder, k)
				}
				l.Exit.Tunnels = append(l.Exit.Tunnels, et)
				// The exit admits the addresses its entrances present there.
				if entranceNode != nil {
					add := c.aclFor([]string{entranceNode.Name}, network, obj+" exit")
					for _, r := range add.Rules {
						r.From = fmt.Sprintf("%s (tunnel %s)", r.From, t.Name)
						if !hasPrefix(l.ACL.Rules, r.Prefix) {
							l.ACL.Rules = append(l.ACL.Rules, r)
						}
					}
				}
			}
		}
	}
	for _, k := range exitOrder {
		c.plan.Listeners = append(c.plan.Listeners, *exits[k])
	}
}

func hasPrefix(rules []acl.Rule, p netip.Prefix) bool {
	for _, r := range rules {
		if r.Prefix == p {
			return true
		}
	}
	return false
}

func (c *compiler) forwards() {
	for _, f := range c.m.ForwardsOn(c.node.Name) {
		if f.Node != c.node.Name || f.Listen == nil || (f.IsKernel() && !c.opts.UserspaceForwards) {
			continue // a kernel forward is a DNAT rule of the node's firewall
		}
		obj := fmt.Sprintf("forward %q", f.Name)
		cfg := &forward.Config{Name: f.Name, ProxyProtocol: f.ProxyProtocol, ConnectTimeout: DefaultConnectTimeout, IdleTimeout: DefaultTunnelIdle, MaxConns: DefaultMaxConns, MaxConnsPerClient: DefaultMaxConnsPerClient}
		if svc := c.m.Service(f.Service); svc != nil {
			tg, ok := c.m.ReachService(c.node, svc)
			if !ok {
				c.fail("%s: %s cannot reach service %q", obj, c.node.Name, svc.Name)
			} else {
				cfg.Target = c.dial(tg)
			}
		}
		network, addrs := c.endpointListeners(f.Listen)
		for _, ap := range addrs {
			c.plan.Listeners = append(c.plan.Listeners, Listener{
				Name: fmt.Sprintf("forward %s", f.Name), Kind: KindForward, Network: network, Addr: ap,
				Public: c.m.IsPublic(network), ACL: c.aclFor(f.Allow, network, obj), Forward: cfg,
			})
		}
	}
}

// conflicts refuses two listeners on one socket (HTTP sites sharing one are
// already merged into a single listener).
func (c *compiler) conflicts() {
	seen := map[string]string{}
	for _, l := range c.plan.Listeners {
		k := l.Key()
		if prev, dup := seen[k]; dup {
			c.fail("%s and %s both listen on %s", prev, l.Name, l.Addr)
			continue
		}
		seen[k] = l.Name
	}
}

func or(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}
