package httpedge

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/edge/http/vars"
)

// chain is one compiled Config: immutable once built.
type chain struct {
	cfg        Config
	hosts      *hostTable[*site]
	sites      []*site
	def        *site   // answers unknown hosts
	tlsDefault *site   // explicitly Default site with a certificate (TLS only)
	pools      []*pool // the pools the chain's routes use, once each (for Stats)
	acme       bool
	// challenges answers ACME HTTP-01 tokens on a plain-HTTP listener.
	challenges Challenges
	alpn       ALPNChallenges // TLS listeners only
}

type site struct {
	name   string
	routes routeTable
	pages  map[int][]byte
	maint  *maintenance
	alog   *accessLogger
	log    *slog.Logger // what the server logs about the site's requests
	ownLog bool         // log is the site's error log, not the server's
	// hdrVars: an added header of the site or a route has variables;
	// extCache and extAddr are the slots of the response variables.
	hdrVars           bool
	extCache, extAddr int
	allow             *acl.List
	cert              *certs.Cert
	tlsCfg            *siteTLS    // the site's own TLS policy, nil: the listener's
	resp              *respPolicy // the site's always fields, for answers outside its routes
	headers           []addHeader
	hsts              []string    // Strict-Transport-Security value (TLS listeners), nil none
	stats             *routeStats // requests answered outside the site's routes
	protect           *siteProtect
	// The rewrite phase: the site's names, its server-level steps, and
	// whether any request needs the variable engine at all (dynamic).
	scope      *vars.Scope
	steps      *vars.Program
	serverName string
	dynamic    bool
}

type headerKV struct{ k, v string }

// routeHandler is what a route does once the site's rules (allow list,
// maintenance, authentication, body limit) have passed: proxy to a pool,
// serve files with a fallback, or redirect. Each is a value built once
// with the chain.
type routeHandler interface {
	serve(s *Server, w *recorder, r *http.Request, rt *route, body *bodyReader)
}

// proxyHandler sends the request to a pool.
type proxyHandler struct{ pool *pool }

func (h proxyHandler) serve(s *Server, w *recorder, r *http.Request, rt *route, body *bodyReader) {
	s.proxy(w, r, rt, h.pool, body)
}

// redirectHandler answers with a redirect to prefix + request URI.
type redirectHandler struct {
	prefix string
	code   int
}

func (h redirectHandler) serve(_ *Server, w *recorder, r *http.Request, _ *route, _ *bodyReader) {
	w.Header().Set("Location", h.prefix+targetURI(r))
	w.WriteHeader(h.code)
}

// notFoundHandler answers 404: a route of steps only, none of which answered.
type notFoundHandler struct{}

func (notFoundHandler) serve(s *Server, w *recorder, r *http.Request, rt *route, _ *bodyReader) {
	s.errorPage(w, r, rt.site, http.StatusNotFound, "not found")
}

type route struct {
	site       *site
	path       string
	exact      bool
	priority   bool        // a priority prefix (nginx "^~")
	re         *vars.Regex // a regex route
	handler    routeHandler
	resp       *respPolicy // expires and added fields (site's then route's), nil: none
	compress   *compressPolicy
	maxBody    int64
	websocket  bool
	streamBody bool // request body streamed upstream, not buffered
	auth       *basicAuth
	limits     []routeLimit
	steps      *vars.Program  // location-level rewrite phase
	upPath     string         // proxy_pass URI part replacing the matched prefix
	upPathTmpl *vars.Template // proxy_pass URI with variables: the whole target
	desc       string         // for logs: "site \"off\" route \"/api/\""
	stats      *routeStats
}

// routeTable chooses a site's route as nginx chooses a location
// (vars.Locations, shared with offedge check).
type routeTable struct{ vars.Locations[*route] }

// match chooses the route of path; a regex route's match records its
// captures in q (nil when none is needed). nil: no route.
func (t *routeTable) match(path string, q *vars.Request) *route {
	rt, _ := t.Match(path, q)
	return rt
}

// build compiles cfg against the node's resources, which it names and
// never owns: a chain holds no resource of its own but static roots, which
// the server keeps open for its life.
func (s *Server) build(cfg Config, res Resources) (*chain, error) {
	ch := &chain{cfg: cfg, hosts: newHostTable[*site]()}
	if !cfg.TLS {
		ch.challenges = res.Challenges
	} else {
		ch.alpn = res.ALPNChallenges
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(cfg.Sites) == 0 {
		return nil, fmt.Errorf("listener %q: no sites", cfg.Listener)
	}
	names := map[string]bool{}
	for i := range cfg.Sites {
		sc := &cfg.Sites[i]
		st, err := s.buildSite(ch, cfg, sc, res)
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
	return ch, nil
}

// usePool notes that the chain uses p (once, for Stats).
func (ch *chain) usePool(p *pool) {
	for _, x := range ch.pools {
		if x == p {
			return
		}
	}
	ch.pools = append(ch.pools, p)
}

// pool finds the named pool among the node's resources.
func (res Resources) pool(name string) (*pool, error) {
	p, ok := res.Pools[name]
	if !ok {
		return nil, fmt.Errorf("upstream %q is not among the node's upstreams", name)
	}
	return p.p, nil
}

func (s *Server) buildSite(ch *chain, cfg Config, sc *Site, res Resources) (*site, error) {
	if sc.Name == "" {
		return nil, errors.New("a site needs a name")
	}
	st := &site{name: sc.Name, allow: sc.Allow, pages: map[int][]byte{}, stats: s.routes.get(sc.Name, "")}
	if cfg.TLS && sc.HSTS != "" {
		st.hsts = []string{sc.HSTS}
	}
	if cfg.TLS {
		if sc.Certificate == "" {
			return nil, errors.New("a TLS listener needs a certificate for every site")
		}
		c, ok := res.Certificates[sc.Certificate]
		if !ok {
			return nil, fmt.Errorf("certificate %q is not among the node's certificates", sc.Certificate)
		}
		st.cert = c
		if sc.TLSPolicy != nil {
			stls, err := newSiteTLS(s.tlsConfig, sc.TLSPolicy)
			if err != nil {
				return nil, err
			}
			st.tlsCfg = stls
		}
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
	sp, err := buildSiteProtect(sc, res)
	if err != nil {
		return nil, err
	}
	if sp != nil {
		for _, b := range sp.bots {
			sp.hits[b] = s.bots.get(sc.Name, b.Name)
		}
	}
	st.protect = sp
	if sc.MaintenanceFile != "" {
		st.maint = &maintenance{path: sc.MaintenanceFile, now: s.opts.Now}
	}
	if sc.AccessLog != nil {
		al, err := newAccessLogger(*sc.AccessLog, res)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		st.alog = al
	}
	st.log = s.log
	if sc.ErrorLog != nil {
		if st.log, err = newErrorLogger(*sc.ErrorLog, res); err != nil {
			return nil, fmt.Errorf("error log: %w", err)
		}
		st.ownLog = true
	}
	if len(sc.Hosts) > 0 {
		st.serverName = strings.TrimPrefix(sc.Hosts[0], "*.")
	}
	sets := vars.SetNames(sc.Rewrites, nil)
	for i := range sc.Routes {
		sets = vars.SetNames(sc.Routes[i].Rewrites, sets)
	}
	if st.scope, err = vars.NewScope(sc.Maps, sets, vars.ResponseVariables, classMapVariables(res)...); err != nil {
		return nil, err
	}
	hs, err := headerList(sc.Headers, sc.HeadersAlways, st.scope)
	if err != nil {
		return nil, err
	}
	st.headers = hs
	if len(hs) > 0 {
		st.resp = &respPolicy{headers: hs}
		st.resp.vars = hasTemplates(hs)
	}
	st.hdrVars = st.resp != nil && st.resp.vars
	st.extCache, st.extAddr = st.scope.ExternSlot("upstream_cache_status"), st.scope.ExternSlot("upstream_addr")
	if st.steps, err = vars.CompileSteps(sc.Rewrites, st.scope, 0); err != nil {
		return nil, fmt.Errorf("rewrites: %w", err)
	}
	st.dynamic = st.steps.Len() > 0
	seen := map[string]bool{}
	for i := range sc.Routes {
		rc := &sc.Routes[i]
		rt, err := s.buildRoute(ch, st, rc, res)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", rc.Path, err)
		}
		key := fmt.Sprint(rc.Exact, rc.Path)
		if rt.re != nil {
			key = rc.Match + " " + rc.Path
		}
		if seen[key] {
			return nil, fmt.Errorf("route %q: defined twice", rc.Path)
		}
		seen[key] = true
		switch {
		case rt.re != nil:
			st.routes.AddRegex(rt.re, rt)
		case rc.Exact:
			st.routes.AddExact(rc.Path, rt)
		default:
			st.routes.AddPrefix(rc.Path, rt.priority, rt)
		}
		if strings.HasPrefix(rc.Path, acmePrefix) {
			ch.acme = true
		}
		if rt.steps.Len() > 0 || rt.upPathTmpl != nil {
			st.dynamic = true
		}
		if rt.resp != nil && rt.resp.vars {
			st.hdrVars = true
		}
	}
	st.routes.Sort()
	return st, nil
}

const acmePrefix = "/.well-known/acme-challenge/"

func (s *Server) buildRoute(ch *chain, st *site, rc *Route, res Resources) (*route, error) {
	rt := &route{site: st, path: rc.Path, exact: rc.Exact, websocket: rc.WebSocket, streamBody: rc.StreamRequestBody,
		desc: fmt.Sprintf("site %q route %q", st.name, rc.Path), stats: s.routes.get(st.name, routeName(rc))}
	switch rc.Match {
	case "":
	case "priority_prefix":
		if rc.Exact {
			return nil, errors.New("exact and a priority prefix at once")
		}
		rt.priority = true
	case "regex", "regex_ci":
		if rc.Exact {
			return nil, errors.New("exact and a regex at once")
		}
		re, err := vars.CompileRegex(rc.Path, rc.Match == "regex_ci")
		if err != nil {
			return nil, err
		}
		rt.re = re
	default:
		return nil, fmt.Errorf("match %q: use priority_prefix, regex or regex_ci (or none: a prefix; exact: an exact path)", rc.Match)
	}
	if rt.re == nil && !strings.HasPrefix(rc.Path, "/") {
		return nil, errors.New("path must start with /")
	}
	n := 0
	if rc.Upstream != "" {
		n++
	}
	if rc.Static != nil {
		n++
	}
	if rc.Redirect != "" {
		n++
	}
	if n != 1 && !(n == 0 && len(rc.Rewrites) > 0) {
		return nil, errors.New("exactly one of upstream, static and redirect must be set (or rewrites that answer)")
	}
	if rc.Cache != nil && rc.Upstream == "" {
		return nil, errors.New("cache: only a proxied route (upstream) has a cache policy; a static fallback names its cache itself")
	}
	switch {
	case rc.Upstream != "":
		p, err := res.pool(rc.Upstream)
		if err != nil {
			return nil, err
		}
		ch.usePool(p)
		rt.handler = proxyHandler{p}
		if rc.Cache != nil {
			pol, err := compileCachePolicy(rc.Cache, res)
			if err != nil {
				return nil, fmt.Errorf("cache: %w", err)
			}
			rt.handler = cachedProxyHandler{p, pol}
		}
	case rc.Static != nil:
		sh, err := s.buildStatic(ch, rc.Static, res)
		if err != nil {
			return nil, fmt.Errorf("static: %w", err)
		}
		rt.handler = sh
	case rc.Redirect == "":
		// Only steps: a request they do not answer finds nothing here
		// (nginx's location without content: its root's files; none).
		rt.handler = notFoundHandler{}
	default:
		if !strings.HasPrefix(rc.Redirect, "http://") && !strings.HasPrefix(rc.Redirect, "https://") && !strings.HasPrefix(rc.Redirect, "/") {
			return nil, fmt.Errorf("redirect %q: must be an absolute URL or a path", rc.Redirect)
		}
		switch rc.RedirectCode {
		case 301, 302, 303, 307, 308:
		default:
			return nil, fmt.Errorf("redirect code %d: must be 301, 302, 303, 307 or 308", rc.RedirectCode)
		}
		rt.handler = redirectHandler{prefix: strings.TrimSuffix(rc.Redirect, "/"), code: rc.RedirectCode}
	}
	groups := 0
	if rt.re != nil {
		groups = rt.re.Groups()
	}
	steps, err := vars.CompileSteps(rc.Rewrites, st.scope, groups)
	if err != nil {
		return nil, fmt.Errorf("rewrites: %w", err)
	}
	rt.steps = steps
	if rc.UpstreamPath != "" {
		if rc.Upstream == "" {
			return nil, errors.New("upstream_path: only a proxied route (upstream) has one")
		}
		t, err := vars.Parse(rc.UpstreamPath, st.scope)
		if err != nil {
			return nil, fmt.Errorf("upstream_path: %w", err)
		}
		switch {
		case !strings.HasPrefix(rc.UpstreamPath, "/"):
			return nil, fmt.Errorf("upstream_path %q: must start with /", rc.UpstreamPath)
		case t.MaxCapture > groups:
			return nil, fmt.Errorf("upstream_path %q names $%d, but the route captures %d groups", rc.UpstreamPath, t.MaxCapture, groups)
		case !t.IsLiteral():
			rt.upPathTmpl = t
		case rt.re != nil:
			return nil, errors.New("upstream_path on a regex route must name variables (nginx: proxy_pass cannot have a URI part in a location given by a regular expression)")
		default:
			rt.upPath = rc.UpstreamPath
		}
	}
	switch {
	case rc.MaxBodyBytes == 0:
		return nil, errors.New("max_body_bytes is 0: give the limit in bytes (-1: unlimited)")
	case rc.MaxBodyBytes < -1:
		return nil, fmt.Errorf("max_body_bytes %d: use -1 for unlimited", rc.MaxBodyBytes)
	default:
		rt.maxBody = rc.MaxBodyBytes
	}
	own, err := headerList(rc.Headers, rc.HeadersAlways, st.scope)
	if err != nil {
		return nil, err
	}
	hs := own
	if !rc.NoSiteHeaders {
		hs = mergeHeaders(st.headers, own)
	}
	if rc.Expires != nil {
		if err := rc.Expires.check(); err != nil {
			return nil, err
		}
	}
	if len(hs) > 0 || rc.Expires != nil {
		rt.resp = &respPolicy{headers: hs, expires: rc.Expires, vars: hasTemplates(hs)}
	}
	if rc.Compress != nil {
		cp, err := compileCompress(rc.Compress)
		if err != nil {
			return nil, err
		}
		if cp.static && rc.Static == nil {
			return nil, errors.New("compress: gzip_static is for static routes")
		}
		rt.compress = cp
	}
	lims, err := buildRouteLimits(rc, res)
	if err != nil {
		return nil, err
	}
	rt.limits = lims
	if rc.BasicAuthFile != "" {
		a, err := loadHtpasswd(rc.BasicAuthFile, st.name)
		if err != nil {
			return nil, err
		}
		rt.auth = a
	}
	return rt, nil
}

func validHeaderName(k string) bool { return httpguts.ValidHeaderFieldName(k) }

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

// routeName is the route label of a route's counters: its path, after
// nginx's location modifier ("=/", "^~/images/", "~*\.jpg$").
func routeName(rc *Route) string { return rc.Modifier() + rc.Path }

// Modifier is the route's nginx location modifier: "=", "^~", "~", "~*",
// or "" for a prefix.
func (rc Route) Modifier() string {
	switch {
	case rc.Exact:
		return "="
	case rc.Match == "priority_prefix":
		return "^~"
	case rc.Match == "regex":
		return "~"
	case rc.Match == "regex_ci":
		return "~*"
	}
	return ""
}
