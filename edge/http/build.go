package httpedge

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/edge/acl"
)

// DefaultMaxBodyBytes is nginx's client_max_body_size default.
const DefaultMaxBodyBytes = 1 << 20

// chain is one compiled Config: immutable once built.
type chain struct {
	cfg        Config
	hosts      *hostTable[*site]
	sites      []*site
	def        *site // answers unknown hosts
	tlsDefault *site // explicitly Default site with a certificate (TLS only)
	pools      []*pool
	acme       bool
}

type site struct {
	name    string
	routes  routeTable
	pages   map[int][]byte
	maint   *maintenance
	alog    *accessLogger
	allow   *acl.List
	cert    *certs.Cert
	headers []headerKV
	hsts    []string    // Strict-Transport-Security value (TLS listeners), nil none
	stats   *routeStats // requests answered outside the site's routes
}

type headerKV struct{ k, v string }

type routeKind int

const (
	kindProxy routeKind = iota
	kindStatic
	kindRedirect
)

type route struct {
	site       *site
	path       string
	exact      bool
	kind       routeKind
	pool       *pool
	static     *staticHandler
	redirect   string
	code       int
	headers    []headerKV // site headers then route headers (route wins)
	maxBody    int64
	websocket  bool
	streamBody bool // request body streamed upstream, not buffered
	auth       *basicAuth
	desc       string // for logs: "site \"off\" route \"/api/\""
	stats      *routeStats
}

type routeTable struct {
	exact    map[string]*route
	prefixes []*route // longest first
}

func (t *routeTable) match(path string) *route {
	if r, ok := t.exact[path]; ok {
		return r
	}
	for _, r := range t.prefixes {
		if strings.HasPrefix(path, r.path) {
			return r
		}
	}
	return nil
}

// build compiles cfg. Resources (pools, logs) are acquired from the server
// so that they outlive a chain and are shared across Updates.
func (s *Server) build(cfg Config) (*chain, error) {
	ch := &chain{cfg: cfg, hosts: newHostTable[*site]()}
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			s.releaseLocked(ch)
		}
	}()
	if len(cfg.Sites) == 0 {
		return nil, fmt.Errorf("listener %q: no sites", cfg.Listener)
	}
	store := certs.NewStore(certs.Options{Logger: s.log, Now: s.opts.Now})
	names := map[string]bool{}
	for i := range cfg.Sites {
		sc := &cfg.Sites[i]
		st, err := s.buildSite(ch, cfg, sc, store)
		if err != nil {
			if sc.Name == "" {
				return nil, fmt.Errorf("listener %q: site #%d: %w", cfg.Listener, i+1, err)
			}
			return nil, fmt.Errorf("listener %q: site %q: %w", cfg.Listener, sc.Name, err)
		}
		if names[sc.Name] {
			return nil, fmt.Errorf("listener %q: site %q: defined twice", cfg.Listener, sc.Name)
		}
		names[sc.Name] = true
		for _, h := range sc.Hosts {
			if err := ch.hosts.add(h, st); err != nil {
				return nil, fmt.Errorf("listener %q: site %q: %w", cfg.Listener, sc.Name, err)
			}
		}
		ch.sites = append(ch.sites, st)
		if sc.Default {
			if ch.def != nil {
				return nil, fmt.Errorf("listener %q: site %q: a second default site (%q is already default)", cfg.Listener, sc.Name, ch.def.name)
			}
			ch.def = st
			if cfg.TLS {
				ch.tlsDefault = st
			}
		}
	}
	// No implicit default: a host no site names is refused on plain HTTP as
	// an unknown SNI is on TLS, unless a site is explicitly marked default.
	// (nginx falls back to the first server block, which is how a
	// misconfigured name ends up served by whatever site comes first.)
	ok = true
	return ch, nil
}

func (s *Server) buildSite(ch *chain, cfg Config, sc *Site, store *certs.Store) (*site, error) {
	if sc.Name == "" {
		return nil, errors.New("a site needs a name")
	}
	st := &site{name: sc.Name, allow: sc.Allow, pages: map[int][]byte{}, stats: s.routes.get(sc.Name, "")}
	if cfg.TLS && sc.HSTS != "" {
		st.hsts = []string{sc.HSTS}
	}
	if cfg.TLS {
		if sc.CertFile == "" || sc.KeyFile == "" {
			return nil, errors.New("a TLS listener needs cert_file and key_file for every site")
		}
		c, err := store.Add(sc.CertFile, sc.KeyFile)
		if err != nil {
			return nil, err
		}
		st.cert = c
	}
	for _, k := range sortedKeys(sc.Headers) {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("header %q: not a valid header name", k)
		}
		st.headers = append(st.headers, headerKV{http.CanonicalHeaderKey(k), sc.Headers[k]})
	}
	for code, path := range sc.ErrorPages {
		if code < 400 || code > 599 {
			return nil, fmt.Errorf("error page for %d: only 4xx and 5xx statuses have error pages", code)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("error page for %d: %w", code, err)
		}
		st.pages[code] = b
	}
	if sc.MaintenanceFile != "" {
		st.maint = &maintenance{path: sc.MaintenanceFile, now: s.opts.Now}
	}
	if sc.AccessLog != nil {
		al, err := s.accessLoggerLocked(*sc.AccessLog)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		st.alog = al
	}
	st.routes.exact = map[string]*route{}
	seen := map[string]bool{}
	for i := range sc.Routes {
		rc := &sc.Routes[i]
		rt, err := s.buildRoute(ch, st, rc)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", rc.Path, err)
		}
		key := fmt.Sprint(rc.Exact, rc.Path)
		if seen[key] {
			return nil, fmt.Errorf("route %q: defined twice", rc.Path)
		}
		seen[key] = true
		if rc.Exact {
			st.routes.exact[rc.Path] = rt
		} else {
			st.routes.prefixes = append(st.routes.prefixes, rt)
		}
		if strings.HasPrefix(rc.Path, acmePrefix) {
			ch.acme = true
		}
	}
	sort.SliceStable(st.routes.prefixes, func(i, j int) bool {
		return len(st.routes.prefixes[i].path) > len(st.routes.prefixes[j].path)
	})
	return st, nil
}

const acmePrefix = "/.well-known/acme-challenge/"

func (s *Server) buildRoute(ch *chain, st *site, rc *Route) (*route, error) {
	if !strings.HasPrefix(rc.Path, "/") {
		return nil, errors.New("path must start with /")
	}
	rt := &route{site: st, path: rc.Path, exact: rc.Exact, websocket: rc.WebSocket, streamBody: rc.StreamRequestBody,
		desc: fmt.Sprintf("site %q route %q", st.name, rc.Path), stats: s.routes.get(st.name, routeName(rc))}
	n := 0
	if rc.Upstream != nil {
		n++
	}
	if rc.Static != nil {
		n++
	}
	if rc.Redirect != "" {
		n++
	}
	if n != 1 {
		return nil, errors.New("exactly one of upstream, static and redirect must be set")
	}
	switch {
	case rc.Upstream != nil:
		if err := validateUpstream(rc.Upstream); err != nil {
			return nil, fmt.Errorf("upstream %q: %w", rc.Upstream.Name, err)
		}
		p, err := s.acquirePool(*rc.Upstream)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", rc.Upstream.Name, err)
		}
		ch.pools = append(ch.pools, p)
		rt.kind, rt.pool = kindProxy, p
	case rc.Static != nil:
		sh, err := s.buildStatic(ch, rc.Static)
		if err != nil {
			return nil, fmt.Errorf("static: %w", err)
		}
		rt.kind, rt.static = kindStatic, sh
	default:
		if !strings.HasPrefix(rc.Redirect, "http://") && !strings.HasPrefix(rc.Redirect, "https://") && !strings.HasPrefix(rc.Redirect, "/") {
			return nil, fmt.Errorf("redirect %q: must be an absolute URL or a path", rc.Redirect)
		}
		rt.kind, rt.redirect = kindRedirect, strings.TrimSuffix(rc.Redirect, "/")
		rt.code = rc.RedirectCode
		if rt.code == 0 {
			rt.code = http.StatusMovedPermanently
		}
		switch rt.code {
		case 301, 302, 303, 307, 308:
		default:
			return nil, fmt.Errorf("redirect code %d: must be 301, 302, 303, 307 or 308", rt.code)
		}
	}
	switch {
	case rc.MaxBodyBytes == 0:
		rt.maxBody = DefaultMaxBodyBytes
	case rc.MaxBodyBytes < -1:
		return nil, fmt.Errorf("max_body_bytes %d: use -1 for unlimited", rc.MaxBodyBytes)
	default:
		rt.maxBody = rc.MaxBodyBytes
	}
	hs := map[string]string{}
	for _, kv := range st.headers {
		hs[kv.k] = kv.v
	}
	for k, v := range rc.Headers {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("header %q: not a valid header name", k)
		}
		hs[http.CanonicalHeaderKey(k)] = v
	}
	for _, k := range sortedKeys(hs) {
		rt.headers = append(rt.headers, headerKV{k, hs[k]})
	}
	if rc.BasicAuthFile != "" {
		a, err := loadHtpasswd(rc.BasicAuthFile, st.name)
		if err != nil {
			return nil, err
		}
		rt.auth = a
	}
	return rt, nil
}

// release drops a chain's references to shared resources; pools no chain
// uses any more are closed (health checks stopped, idle connections closed;
// requests in flight on them finish normally).
func (s *Server) release(ch *chain) {
	if ch == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(ch)
}

func (s *Server) releaseLocked(ch *chain) {
	for _, p := range ch.pools {
		p.refs--
		if p.refs <= 0 {
			p.close()
			delete(s.pools, p.fp)
		}
	}
	ch.pools = nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// maintenance reports whether the maintenance file exists, looking at most
// once a second so that the check costs nothing per request.
type maintenance struct {
	path    string
	now     func() time.Time
	checked atomic.Int64
	on      atomic.Bool
}

func (m *maintenance) active() bool {
	now := m.now().UnixNano()
	last := m.checked.Load()
	if now-last >= int64(time.Second) && m.checked.CompareAndSwap(last, now) {
		_, err := os.Stat(m.path)
		m.on.Store(err == nil)
	}
	return m.on.Load()
}

// routeName is the route label of a route's counters: its path, with "="
// in front for an exact route (nginx's "location =").
func routeName(rc *Route) string {
	if rc.Exact {
		return "=" + rc.Path
	}
	return rc.Path
}
