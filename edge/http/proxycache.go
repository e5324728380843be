package httpedge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CachePolicy is how a route uses one of the node's caches, with nginx's
// proxy_cache semantics where Open Food Facts relies on them. The static
// fallback is the same mechanism with a fixed policy (key: the URI;
// validity: the cache's TTL).
type CachePolicy struct {
	// Cache names the cache among the node's resources.
	Cache string `json:"cache"`
	// Key lists what the cache key is made of, in order (nginx
	// proxy_cache_key): scheme, host, uri (path and query), path,
	// arg:NAME, cookie:NAME, header:NAME. The reference's micro-cache is
	// [host, uri, cookie:user].
	Key []string `json:"key"`
	// Valid maps a status to how long its answers stay fresh; status 0
	// is any status (nginx proxy_cache_valid any 5s). Statuses absent are
	// not cached.
	Valid map[int]time.Duration `json:"valid"`
	// MinUses is how many requests for a key come before its answer is
	// stored (nginx proxy_cache_min_uses); at least 1.
	MinUses int `json:"min_uses"`
	// IgnoreCacheControl stores answers whatever their Cache-Control,
	// Expires and Set-Cookie say (nginx proxy_ignore_headers), for Valid;
	// by default an upstream's no-store, no-cache, private or Set-Cookie
	// keeps an answer out, and its max-age (s-maxage, Expires) sets its
	// validity.
	IgnoreCacheControl bool `json:"ignore_cache_control,omitempty"`
	// Bypass lists conditions under which the cache is not used: the
	// request goes upstream and its answer is not stored (a session
	// cookie: cookie:session). A condition is cookie:NAME, header:NAME or
	// arg:NAME, true when present and neither empty nor "0", as nginx's
	// proxy_cache_bypass and proxy_no_cache.
	Bypass []string `json:"bypass,omitempty"`
	// NoStore lists conditions under which the answer is served from the
	// cache when there, but a fresh one is not stored.
	NoStore []string `json:"no_store,omitempty"`
	// UseStale lists when an expired entry is served instead (nginx
	// proxy_cache_use_stale): error (the upstream could not be reached),
	// timeout, updating (another request is refreshing it), http_500,
	// http_502, http_503, http_504.
	UseStale []string `json:"use_stale,omitempty"`
	// BackgroundUpdate serves the expired entry at once and refreshes it
	// in the background (nginx proxy_cache_background_update); needs
	// updating in UseStale.
	BackgroundUpdate bool `json:"background_update,omitempty"`
}

// cachePolicy is a compiled CachePolicy.
type cachePolicy struct {
	cache         *cache
	key           []keyPart
	valid         map[int]time.Duration
	anyValid      time.Duration
	minUses       int
	honourCC      bool
	bypass        []keyPart
	noStore       []keyPart
	staleError    bool
	staleTimeout  bool
	staleUpdating bool
	staleStatus   map[int]bool
	background    bool
	// allHeaders keeps every end-to-end response field with an entry (a
	// proxied answer); false keeps storedHeaders only (fallback files).
	allHeaders bool
	// keepCookies sends the client's Cookie and Authorization upstream on
	// a fill (a proxied route; the key says whose answer it is); the
	// fallback strips them.
	keepCookies bool
}

type keyPart struct {
	kind string // scheme, host, uri, path, arg, cookie, header
	name string
}

func parseKeyPart(s string, conditional bool) (keyPart, error) {
	kind, name, named := strings.Cut(s, ":")
	switch kind {
	case "scheme", "host", "uri", "path":
		if !named && !conditional {
			return keyPart{kind: kind}, nil
		}
	case "arg", "cookie", "header":
		if named && name != "" {
			if kind == "header" {
				name = http.CanonicalHeaderKey(name)
			}
			return keyPart{kind: kind, name: name}, nil
		}
	}
	if conditional {
		return keyPart{}, fmt.Errorf("condition %q: use cookie:NAME, header:NAME or arg:NAME", s)
	}
	return keyPart{}, fmt.Errorf("key part %q: use scheme, host, uri, path, arg:NAME, cookie:NAME or header:NAME", s)
}

// compileCachePolicy checks pc against the node's caches.
func compileCachePolicy(pc *CachePolicy, res Resources) (*cachePolicy, error) {
	c, ok := res.Caches[pc.Cache]
	if !ok {
		return nil, fmt.Errorf("cache %q is not among the node's caches", pc.Cache)
	}
	pol := &cachePolicy{cache: c.c, valid: map[int]time.Duration{}, minUses: pc.MinUses, honourCC: !pc.IgnoreCacheControl,
		background: pc.BackgroundUpdate, allHeaders: true, keepCookies: true, staleStatus: map[int]bool{}}
	if len(pc.Key) == 0 {
		return nil, errors.New("cache key: list its parts (e.g. [scheme, host, uri])")
	}
	for _, k := range pc.Key {
		p, err := parseKeyPart(k, false)
		if err != nil {
			return nil, err
		}
		pol.key = append(pol.key, p)
	}
	if len(pc.Valid) == 0 {
		return nil, errors.New("valid lists no status: nothing would be cached")
	}
	for code, d := range pc.Valid {
		if (code != 0 && (code < 100 || code > 599)) || d <= 0 {
			return nil, fmt.Errorf("valid for %d: a status (0 for any) and a positive duration", code)
		}
		if code == 0 {
			pol.anyValid = d
		} else {
			pol.valid[code] = d
		}
	}
	if pc.MinUses < 1 {
		return nil, fmt.Errorf("min_uses %d: at least 1", pc.MinUses)
	}
	for _, list := range []struct {
		in  []string
		out *[]keyPart
	}{{pc.Bypass, &pol.bypass}, {pc.NoStore, &pol.noStore}} {
		for _, s := range list.in {
			p, err := parseKeyPart(s, true)
			if err != nil {
				return nil, err
			}
			*list.out = append(*list.out, p)
		}
	}
	for _, u := range pc.UseStale {
		switch u {
		case "error":
			pol.staleError = true
		case "timeout":
			pol.staleTimeout = true
		case "updating":
			pol.staleUpdating = true
		case "http_500", "http_502", "http_503", "http_504":
			code, _ := strconv.Atoi(u[5:])
			pol.staleStatus[code] = true
		default:
			return nil, fmt.Errorf("use_stale %q: use error, timeout, updating, http_500, http_502, http_503 or http_504", u)
		}
	}
	if pol.background && !pol.staleUpdating {
		return nil, errors.New("background_update needs updating in use_stale (the expired entry is served while it refreshes)")
	}
	return pol, nil
}

// fallbackPolicy is the static fallback's use of its cache: keyed by the
// request URI, valid for the cache's TTL per status.
func fallbackPolicy(c *cache) *cachePolicy {
	return &cachePolicy{cache: c, key: []keyPart{{kind: "uri"}}, valid: c.ttl, minUses: 1, honourCC: true}
}

func (p *cachePolicy) keepsStale() bool {
	return p.staleError || p.staleTimeout || p.staleUpdating || len(p.staleStatus) > 0
}

// part returns the value of one key part or condition for r.
func (s *Server) keyValue(r *http.Request, k keyPart) string {
	switch k.kind {
	case "scheme":
		if s.tlsOn {
			return "https"
		}
		return "http"
	case "host":
		h, _ := normalizeHost(r.Host)
		return h
	case "uri":
		return targetURI(r)
	case "path":
		p, _ := requestURI(r.URL)
		return p
	case "arg":
		return r.URL.Query().Get(k.name)
	case "cookie":
		c, err := r.Cookie(k.name)
		if err != nil {
			return ""
		}
		return c.Value
	case "header":
		return r.Header.Get(k.name)
	}
	return ""
}

// keyText is the cache key of r under p: its parts joined by a space
// (no part can hold one), the text the admin API purges.
func (s *Server) keyText(r *http.Request, p *cachePolicy) string {
	var b strings.Builder
	for i, k := range p.key {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.keyValue(r, k))
	}
	return b.String()
}

func (s *Server) anyCondition(r *http.Request, conds []keyPart) bool {
	for _, k := range conds {
		if v := s.keyValue(r, k); v != "" && v != "0" {
			return true
		}
	}
	return false
}

// ttl is how long resp stays fresh under p; 0: not stored.
func (p *cachePolicy) ttl(resp *http.Response, now time.Time) time.Duration {
	d, ok := p.valid[resp.StatusCode]
	if !ok {
		d, ok = p.anyValid, p.anyValid > 0
	}
	if !ok {
		return 0
	}
	if !p.honourCC {
		return d
	}
	if !cacheable(resp) {
		return 0
	}
	// The upstream's own lifetime wins over Valid, as nginx.
	if age, ok := maxAge(resp.Header["Cache-Control"]); ok {
		return age
	}
	if ex := resp.Header.Get("Expires"); ex != "" {
		t, err := http.ParseTime(ex)
		if err != nil {
			return 0 // an invalid Expires means already expired (RFC 9111 5.3)
		}
		return t.Sub(now)
	}
	return d
}

// maxAge reads s-maxage (the shared-cache lifetime) or max-age.
func maxAge(cc []string) (time.Duration, bool) {
	var age, sage int64 = -1, -1
	for _, line := range cc {
		for tok := range strings.SplitSeq(line, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(tok), "=")
			n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
			if err != nil || n < 0 {
				continue
			}
			n = min(n, int64(365*24*3600))
			switch strings.ToLower(k) {
			case "max-age":
				age = n
			case "s-maxage":
				sage = n
			}
		}
	}
	switch {
	case sage >= 0:
		return time.Duration(sage) * time.Second, true
	case age >= 0:
		return time.Duration(age) * time.Second, true
	}
	return 0, false
}

// cachedProxyHandler proxies a route through its cache policy.
type cachedProxyHandler struct {
	pool *pool
	pol  *cachePolicy
}

func (h cachedProxyHandler) serve(s *Server, w *recorder, r *http.Request, rt *route, body *bodyReader) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.proxy(w, r, rt, h.pool, body) // nginx proxy_cache_methods GET HEAD
		return
	}
	s.serveCache(w, r, rt, h.pool, h.pol)
}

// setCacheStatus records the cache's answer (c.mark) and sets the
// X-Cache-Status header (nginx $upstream_cache_status) on an answer the
// cache does not write itself.
func setCacheStatus(c *cache, w *recorder, status string) {
	c.mark(w, status)
	w.Header().Set("X-Cache-Status", status)
}

// serveCache answers a GET or HEAD from p's cache, filling it from pool
// with one upstream request per key at a time (nginx proxy_cache_lock):
// requests for a key being fetched wait for that fetch.
func (s *Server) serveCache(w *recorder, r *http.Request, rt *route, pool *pool, p *cachePolicy) {
	c := p.cache
	if len(p.bypass) > 0 && s.anyCondition(r, p.bypass) {
		setCacheStatus(c, w, "BYPASS")
		s.proxy(w, r, rt, pool, nil)
		return
	}
	text := s.keyText(r, p)
	if len(text) > MaxCacheKeyBytes {
		setCacheStatus(c, w, "BYPASS")
		s.proxy(w, r, rt, pool, nil)
		return
	}
	key := cacheKey(text)
	stale, fresh := c.lookup(key, p.keepsStale())
	if fresh {
		s.stats.cacheHits.Add(1)
		c.mark(w, "HIT")
		c.serve(w, r, stale, "HIT")
		return
	}
	if stale != nil && p.staleUpdating && (p.background || c.flight.running(key)) {
		status := "UPDATING"
		if p.background && !c.flight.running(key) {
			status = "STALE"
			// Detached from this request (cloned now: the request is not
			// ours once the handler returns); the flight makes it one per key.
			bg := r.Clone(context.WithoutCancel(r.Context()))
			go c.flight.do(key, func() *fetchResult { return s.fill(bg, pool, p, key, true, true) })
		}
		s.stats.cacheHits.Add(1)
		c.mark(w, status)
		c.serve(w, r, stale, status)
		return
	}
	s.stats.cacheMisses.Add(1)
	noStore := len(p.noStore) > 0 && s.anyCondition(r, p.noStore)
	res, shared := c.flight.do(key, func() *fetchResult { return s.fill(r, pool, p, key, !noStore, stale != nil) })
	if res.server != nil {
		w.upstream = res.server.addr
		if !shared {
			w.upTime = res.took
		}
	}
	if stale != nil && p.serveStaleFor(res) {
		rt.site.log.Warn("serving a stale cache entry", "listener", s.name(), "site", rt.site.name, "route", rt.path, "upstream", pool.name, "err", res.err)
		c.mark(w, "STALE")
		c.serve(w, r, stale, "STALE")
		return
	}
	switch {
	case res.err != nil:
		if r.Context().Err() != nil {
			w.status = statusClientClosed
			return
		}
		rt.site.log.Error("cache fill failed", "listener", s.name(), "site", rt.site.name, "route", rt.path, "upstream", pool.name, "err", res.err)
		code := http.StatusBadGateway
		var ne net.Error
		if errors.As(res.err, &ne) && ne.Timeout() {
			code = http.StatusGatewayTimeout
		}
		s.errorPage(w, r, rt.site, code, "the upstream server did not answer")
	case res.tooBig, shared && !res.stored:
		// Too large to keep, or an answer that was not for sharing (not
		// stored: Set-Cookie, private, min_uses not reached): each client
		// makes its own request, as nginx's waiters do when the lock's
		// holder stored nothing.
		setCacheStatus(c, w, "MISS")
		s.proxy(w, r, rt, pool, nil)
	default:
		status := "MISS"
		if stale != nil {
			status = "EXPIRED"
		}
		if shared {
			status = "HIT"
		}
		c.mark(w, status)
		if res.entry.status >= 400 {
			if _, ok := rt.site.pages[res.entry.status]; ok {
				s.errorPage(w, r, rt.site, res.entry.status, "")
				return
			}
		}
		c.serve(w, r, res.entry, status)
	}
}

// serveStaleFor reports whether a fill result lets p serve the stale
// entry instead: the upstream failed (error, timeout) or answered a
// listed 5xx.
func (p *cachePolicy) serveStaleFor(res *fetchResult) bool {
	if res.err != nil {
		var ne net.Error
		if errors.As(res.err, &ne) && ne.Timeout() {
			return p.staleTimeout
		}
		return p.staleError
	}
	return res.entry != nil && p.staleStatus[res.entry.status]
}

// fill fetches key's answer from pool (a GET, whatever the client's
// method: HEAD fills with the GET answer, as nginx) and stores it when p
// allows. It runs detached from the client that started it: the others
// waiting on the same key must not fail because the first one went away.
// With an expired entry at hand (hasStale), an answer with a status
// use_stale lists does not replace it.
func (s *Server) fill(r *http.Request, pool *pool, p *cachePolicy, key string, mayStore, hasStale bool) *fetchResult {
	c := p.cache
	ctx := context.WithoutCancel(r.Context())
	ctx, cancel := context.WithTimeout(ctx, pool.cfg.ReadTimeout+pool.cfg.ConnectTimeout)
	defer cancel()
	get := r.Clone(ctx)
	for _, k := range cacheRequestHeaders {
		if p.keepCookies && (k == "Cookie" || k == "Authorization") {
			continue
		}
		delete(get.Header, k)
	}
	pr := proxyRequest{ctx: ctx, r: get, method: http.MethodGet, host: pool.cfg.Host, tls: s.tlsOn, stats: &s.stats}
	if pr.host == "" {
		pr.host = get.Host
	}
	t0 := s.opts.Now()
	resp, b, err := pool.roundTrip(&pr)
	if err != nil {
		return &fetchResult{err: err, server: b, took: s.opts.Now().Sub(t0)}
	}
	defer resp.Body.Close()
	limit := c.entryLimit()
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength <= limit {
		buf.Grow(int(resp.ContentLength) + 1)
	}
	n, err := io.Copy(&buf, io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return &fetchResult{err: fmt.Errorf("reading the upstream answer: %w", err), server: b}
	}
	if n > limit {
		return &fetchResult{tooBig: true, server: b}
	}
	body := buf.Bytes()
	if cap(body) > len(body)+len(body)/8+64 {
		body = bytes.Clone(body) // do not keep the buffer's slack
	}
	now := s.opts.Now()
	e := newEntry(key, resp, body, now)
	if p.allHeaders {
		e.header = endToEndFields(resp.Header, !p.honourCC)
	}
	stored := false
	if hasStale && p.staleStatus[resp.StatusCode] {
		mayStore = false
	}
	if mayStore && (p.minUses <= 1 || c.use(key) >= p.minUses) {
		if d := p.ttl(resp, now); d > 0 {
			stored = c.store(e, d)
		}
	}
	return &fetchResult{entry: e, stored: stored, server: b, took: s.opts.Now().Sub(t0)}
}

// endToEndFields copies the fields of a proxied answer an entry keeps:
// all but hop-by-hop, hidden and framing ones (and Set-Cookie when the
// answer is stored despite it).
func endToEndFields(h http.Header, dropCookies bool) []headerKV {
	var out []headerKV
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		if hopField(k) || hiddenResponseField(k) || k == "Content-Length" || k == "Date" || k == "X-Cache-Status" || (dropCookies && k == "Set-Cookie") {
			continue
		}
		for _, v := range h[k] {
			out = append(out, headerKV{k, strings.Clone(v)})
		}
	}
	return slices.Clip(out)
}

// Purge drops the entry whose key text (its parts joined by spaces, as
// the route's cache key lists them) is key; it reports whether there was
// one.
func (c *ResponseCache) Purge(key string) bool { return c.c.purge(cacheKey(key)) }
