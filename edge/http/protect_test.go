package httpedge

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offedge/offedge/edge/protect"
)

// microCache is the reference's /api/ location (proxy-off/nginx/
// openfoodfacts.org): proxy_cache_key $host$request_uri$cookie_user,
// proxy_cache_valid any 5s; the session cookie bypasses it; stale
// answers while the backend fails or the entry refreshes.
func microCache(cache string) *CachePolicy {
	return &CachePolicy{Cache: cache, Key: []string{"host", "uri", "cookie:user"}, Valid: map[int]time.Duration{0: 5 * time.Second},
		MinUses: 1, Bypass: []string{"cookie:session"}, UseStale: []string{"error", "timeout", "updating", "http_502", "http_503"}}
}

func cachedSite(n *testNode, pol func(string) *CachePolicy, backend string) Site {
	up := n.up(Upstream{Name: "po-off", Servers: []UpstreamServer{{Addr: backend}}, MaxFails: -1})
	c := n.cache(Cache{MaxBytes: 1 << 20, TTL: map[int]time.Duration{200: time.Hour}})
	return Site{Name: "off", Hosts: []string{"world.openfoodfacts.org"}, Routes: []Route{
		{Path: "/api/", Upstream: up, Cache: pol(c)},
		{Path: "/", Upstream: up},
	}}
}

// A burst of identical /api/ requests makes one upstream request: the
// first fills the entry while the others wait on its fill (the lock),
// then answer from it.
func TestMicroCacheBurstOneUpstreamRequest(t *testing.T) {
	n := newNode(t)
	var srv *Server
	const burst = 20
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		// Hold the fill until every request of the burst has missed,
		// so that they all wait on this one fetch.
		deadline := time.Now().Add(10 * time.Second)
		for srv.Stats().CacheMisses < burst && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		io.WriteString(w, `{"product":1}`)
	})
	clk := newClock()
	var addr string
	srv, addr = n.start(Config{Listener: "t", Sites: []Site{cachedSite(n, microCache, be.addr())}}, Options{Now: clk.Now})
	c := client(addr)
	var wg sync.WaitGroup
	statuses := make(chan string, burst)
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := get(t, c, "http://world.openfoodfacts.org/api/v2/product/1")
			if body != `{"product":1}` || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("answer %q, headers %v", body, resp.Header)
			}
			statuses <- resp.Header.Get("X-Cache-Status")
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[string]int{}
	for s := range statuses {
		count[s]++
	}
	if be.requests.Load() != 1 || count["MISS"] != 1 || count["HIT"] != burst-1 {
		t.Fatalf("%d upstream requests, statuses %v; want 1 request, 1 MISS and %d HIT", be.requests.Load(), count, burst-1)
	}
	// Fresh for 5 s (valid any 5s), then fetched again.
	clk.Add(4 * time.Second)
	if resp, _ := get(t, c, "http://world.openfoodfacts.org/api/v2/product/1"); resp.Header.Get("X-Cache-Status") != "HIT" {
		t.Fatalf("after 4s: %s", resp.Header.Get("X-Cache-Status"))
	}
	clk.Add(2 * time.Second)
	if resp, _ := get(t, c, "http://world.openfoodfacts.org/api/v2/product/1"); resp.Header.Get("X-Cache-Status") != "EXPIRED" || be.requests.Load() != 2 {
		t.Fatalf("after 6s: %s, %d upstream requests", resp.Header.Get("X-Cache-Status"), be.requests.Load())
	}
	// Other routes are not cached.
	get(t, c, "http://world.openfoodfacts.org/product/1")
	if resp, _ := get(t, c, "http://world.openfoodfacts.org/product/1"); resp.Header.Get("X-Cache-Status") != "" || be.requests.Load() != 4 {
		t.Fatalf("uncached route: %q, %d upstream requests", resp.Header.Get("X-Cache-Status"), be.requests.Load())
	}
}

// A logged-in client (the session cookie) bypasses the cache, and its
// answers are not stored; the user cookie is part of the key.
func TestMicroCacheSessionBypass(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		s, _ := r.Cookie("session")
		u, _ := r.Cookie("user")
		fmt.Fprintf(w, "session=%v user=%v", s != nil, u != nil)
	})
	_, addr := n.start(Config{Listener: "t", Sites: []Site{cachedSite(n, microCache, be.addr())}}, Options{Now: newClock().Now})
	c := client(addr)
	url := "http://world.openfoodfacts.org/api/v2/product/2"
	for i := range 2 {
		resp, body := get(t, c, url, "Cookie", "session=s3cret")
		if resp.Header.Get("X-Cache-Status") != "BYPASS" || body != "session=true user=false" {
			t.Fatalf("logged in, request %d: %s %q", i+1, resp.Header.Get("X-Cache-Status"), body)
		}
	}
	if resp, body := get(t, c, url); resp.Header.Get("X-Cache-Status") != "MISS" || body != "session=false user=false" {
		t.Fatalf("anonymous after logged-in requests: %s %q (a logged-in answer was stored?)", resp.Header.Get("X-Cache-Status"), body)
	}
	if resp, _ := get(t, c, url, "Cookie", "user=alice"); resp.Header.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("another user cookie shares the anonymous entry: %s", resp.Header.Get("X-Cache-Status"))
	}
	if resp, _ := get(t, c, url); resp.Header.Get("X-Cache-Status") != "HIT" {
		t.Fatalf("anonymous again: %s", resp.Header.Get("X-Cache-Status"))
	}
	if be.requests.Load() != 4 {
		t.Fatalf("%d upstream requests, want 4", be.requests.Load())
	}
}

// An expired entry is served (STALE) while the backend is down, and
// while it answers 502; once it is back, the entry is refreshed.
func TestMicroCacheStaleWhileBackendDown(t *testing.T) {
	n := newNode(t)
	var mu sync.Mutex
	mode := "ok"
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		m := mode
		mu.Unlock()
		if m == "502" {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "bad gateway")
			return
		}
		io.WriteString(w, "v-"+m)
	})
	var down atomic.Bool
	fwd := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			hj, _ := w.(http.Hijacker)
			cn, _, _ := hj.Hijack()
			cn.Close()
			return
		}
		be.Config.Handler.ServeHTTP(w, r)
	})
	clk := newClock()
	_, addr := n.start(Config{Listener: "t", Sites: []Site{cachedSite(n, microCache, fwd.addr())}}, Options{Now: clk.Now})
	c := client(addr)
	url := "http://world.openfoodfacts.org/api/v2/product/3"
	if _, body := get(t, c, url); body != "v-ok" {
		t.Fatalf("fill: %q", body)
	}
	clk.Add(10 * time.Second)
	down.Store(true)
	if resp, body := get(t, c, url); resp.StatusCode != 200 || body != "v-ok" || resp.Header.Get("X-Cache-Status") != "STALE" {
		t.Fatalf("backend down: %d %s %q; want the stale entry", resp.StatusCode, resp.Header.Get("X-Cache-Status"), body)
	}
	down.Store(false)
	mu.Lock()
	mode = "502"
	mu.Unlock()
	if resp, body := get(t, c, url); body != "v-ok" || resp.Header.Get("X-Cache-Status") != "STALE" {
		t.Fatalf("backend 502: %s %q; want the stale entry", resp.Header.Get("X-Cache-Status"), body)
	}
	mu.Lock()
	mode = "new"
	mu.Unlock()
	if resp, body := get(t, c, url); body != "v-new" || resp.Header.Get("X-Cache-Status") != "EXPIRED" {
		t.Fatalf("backend back: %s %q", resp.Header.Get("X-Cache-Status"), body)
	}
	if resp, body := get(t, c, url); body != "v-new" || resp.Header.Get("X-Cache-Status") != "HIT" {
		t.Fatalf("after the refresh: %s %q", resp.Header.Get("X-Cache-Status"), body)
	}
}

// background_update answers an expired entry at once and refreshes it
// behind the client's back; upstream Cache-Control is honoured.
func TestCacheBackgroundUpdateAndCacheControl(t *testing.T) {
	n := newNode(t)
	var mu sync.Mutex
	version := 1
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		v := version
		mu.Unlock()
		switch r.URL.Path {
		case "/api/private":
			w.Header().Set("Cache-Control", "private")
		case "/api/long":
			w.Header().Set("Cache-Control", "max-age=60")
		}
		fmt.Fprintf(w, "v%d", v)
	})
	clk := newClock()
	pol := func(c string) *CachePolicy {
		p := microCache(c)
		p.BackgroundUpdate = true
		return p
	}
	srv, addr := n.start(Config{Listener: "t", Sites: []Site{cachedSite(n, pol, be.addr())}}, Options{Now: clk.Now})
	c := client(addr)
	get(t, c, "http://world.openfoodfacts.org/api/x")
	clk.Add(6 * time.Second)
	mu.Lock()
	version = 2
	mu.Unlock()
	if resp, body := get(t, c, "http://world.openfoodfacts.org/api/x"); body != "v1" || resp.Header.Get("X-Cache-Status") != "STALE" {
		t.Fatalf("expired with background update: %s %q", resp.Header.Get("X-Cache-Status"), body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := get(t, c, "http://world.openfoodfacts.org/api/x")
		if body == "v2" && resp.Header.Get("X-Cache-Status") == "HIT" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background refresh never landed: %s %q", resp.Header.Get("X-Cache-Status"), body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// private: not stored; max-age=60 outlives valid 5s.
	get(t, c, "http://world.openfoodfacts.org/api/private")
	if resp, _ := get(t, c, "http://world.openfoodfacts.org/api/private"); resp.Header.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("private answer: %s", resp.Header.Get("X-Cache-Status"))
	}
	get(t, c, "http://world.openfoodfacts.org/api/long")
	clk.Add(30 * time.Second)
	if resp, _ := get(t, c, "http://world.openfoodfacts.org/api/long"); resp.Header.Get("X-Cache-Status") != "HIT" {
		t.Fatalf("max-age=60 after 30s: %s", resp.Header.Get("X-Cache-Status"))
	}
	_ = srv
}

// Purge drops one key.
func TestCachePurge(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, textHandler("x"))
	_, addr := n.start(Config{Listener: "t", Sites: []Site{cachedSite(n, microCache, be.addr())}}, Options{Now: newClock().Now})
	c := client(addr)
	get(t, c, "http://world.openfoodfacts.org/api/p?a=1")
	rc := n.built.Caches["cache0"]
	if rc.Purge("world.openfoodfacts.org /api/p?a=2 ") {
		t.Fatal("purged a key never stored")
	}
	if !rc.Purge("world.openfoodfacts.org /api/p?a=1 ") {
		t.Fatal("the stored key was not purged")
	}
	if resp, _ := get(t, c, "http://world.openfoodfacts.org/api/p?a=1"); resp.Header.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("after purge: %s", resp.Header.Get("X-Cache-Status"))
	}
}

func protectNode(t *testing.T, n *testNode, zones map[string]protect.ZoneConfig, maps map[string]protect.MapConfig) {
	t.Helper()
	n.built.Zones, n.built.Maps = map[string]*protect.Zone{}, map[string]*protect.Map{}
	for name, zc := range zones {
		zc.MaxBurst = max(zc.MaxBurst, zc.Burst) // as the plan resolves it
		z, err := protect.NewZone(zc)
		if err != nil {
			t.Fatal(err)
		}
		n.built.Zones[name] = z
	}
	for name, mc := range maps {
		m, err := protect.NewMap(mc)
		if err != nil {
			t.Fatal(err)
		}
		n.built.Maps[name] = m
	}
}

// A crawler class is limited (a map over the user agent, keyed by class
// and client); other clients are not; a dry-run zone counts what it
// would refuse and refuses nothing.
func TestCrawlerClassLimited(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, textHandler("ok"))
	crawlers := protect.MapConfig{Source: protect.SourceUserAgent, Rules: []protect.MapRule{{Regex: `(?i)bot|crawl|spider`, Class: "crawler"}}}
	zone := protect.ZoneConfig{Rate: 1, Burst: 2, NoDelay: true, Status: 429, MaxKeys: 100, Key: protect.KeyClassAddress, Map: "crawlers"}
	dry := zone
	dry.DryRun = true
	protectNode(t, n, map[string]protect.ZoneConfig{"crawlers": zone, "crawlers-dry": dry}, map[string]protect.MapConfig{"crawlers": crawlers})
	up := n.up(Upstream{Name: "po", Servers: []UpstreamServer{{Addr: be.addr()}}})
	site := Site{Name: "off", Hosts: []string{"world.openfoodfacts.org"}, Routes: []Route{
		{Path: "/", Upstream: up, Limits: []RouteLimit{{Zone: "crawlers", Burst: 2, NoDelay: true}}},
		{Path: "/dry/", Upstream: up, Limits: []RouteLimit{{Zone: "crawlers-dry", Burst: 2, NoDelay: true}}},
	}}
	_, addr := n.start(Config{Listener: "t", Sites: []Site{site}}, Options{Now: newClock().Now})
	c := client(addr)
	for i := range 3 {
		if resp, _ := get(t, c, "http://world.openfoodfacts.org/x", "User-Agent", "Googlebot/2.1"); resp.StatusCode != 200 {
			t.Fatalf("crawler request %d (within burst): %d", i+1, resp.StatusCode)
		}
	}
	resp, _ := get(t, c, "http://world.openfoodfacts.org/x", "User-Agent", "Googlebot/2.1")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("crawler past its burst: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for i := range 10 {
		if resp, _ := get(t, c, "http://world.openfoodfacts.org/x", "User-Agent", "Mozilla/5.0 Firefox"); resp.StatusCode != 200 {
			t.Fatalf("browser request %d: %d (a browser is in no class)", i+1, resp.StatusCode)
		}
	}
	for i := range 6 {
		if resp, _ := get(t, c, "http://world.openfoodfacts.org/dry/x", "User-Agent", "Googlebot/2.1"); resp.StatusCode != 200 {
			t.Fatalf("dry-run request %d: %d; dry-run refuses nothing", i+1, resp.StatusCode)
		}
	}
	if st := n.built.Zones["crawlers-dry"].Stats(); st.DryRun != 3 || st.Rejected != 0 {
		t.Fatalf("dry-run zone stats %+v; want 3 counted, none rejected", st)
	}
	if st := n.built.Zones["crawlers"].Stats(); st.Rejected != 1 {
		t.Fatalf("zone stats %+v", st)
	}
}

// limit_req_status 444 closes the connection without an answer.
func TestLimitStatus444Closes(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, textHandler("ok"))
	protectNode(t, n, map[string]protect.ZoneConfig{"off": {Rate: 1, Burst: 0, NoDelay: true, Status: 444, MaxKeys: 10, Key: protect.KeyAddress}}, nil)
	up := n.up(Upstream{Name: "po", Servers: []UpstreamServer{{Addr: be.addr()}}})
	_, addr := n.start(Config{Listener: "t", Sites: []Site{{Name: "off", Hosts: []string{"x"}, Routes: []Route{{Path: "/", Upstream: up, Limits: []RouteLimit{{Zone: "off", NoDelay: true}}}}}}}, Options{Now: newClock().Now})
	if resp, _ := get(t, client(addr), "http://x/"); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	cn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	cn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(cn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	b, err := io.ReadAll(cn)
	if len(b) != 0 {
		t.Fatalf("444: read %q (%v); want the connection closed without an answer", b, err)
	}
}

// The reference's user-agent rules answer the stop-crawling page; a
// referer rule answers 403; a bot match and 4xx answers feed a jail that
// bans at accept.
func TestBotRulesAndJail(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/missing") {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "ok")
	})
	bans, err := protect.NewBanList(protect.BanListConfig{MaxBans: 10, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jail, err := protect.NewJail(protect.JailConfig{Name: "http-4xx", Events: []string{protect.Event4xx}, MaxEvents: 3, Window: time.Minute, BanTime: time.Hour, MaxClients: 100}, "off", bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.built.Jails = map[string]*protect.Jail{"http-4xx": jail}
	up := n.up(Upstream{Name: "po", Servers: []UpstreamServer{{Addr: be.addr()}}})
	site := Site{Name: "off", Hosts: []string{"x"}, Jails: []string{"http-4xx"}, Routes: []Route{{Path: "/", Upstream: up}},
		Bots: []protect.BotRuleConfig{
			{Name: "stop-crawling", Action: protect.ActionPage, Page: "please use the data export\n",
				UserAgent: []protect.Pattern{{Exact: "-"}, {Exact: "Mozilla/5.0 (compatible)"}, {Exact: "python-requests/2.32.2"}}},
			{Name: "jobothoniel", Action: protect.ActionDeny, Referer: []protect.Pattern{{Regex: `(?i)jobothoniel\.com`}}},
		}}
	srv, addr := n.start(Config{Listener: "t", Sites: []Site{site}}, Options{})
	c := client(addr)
	if resp, body := get(t, c, "http://x/api/v2/search", "User-Agent", "python-requests/2.32.2"); resp.StatusCode != 200 || body != "please use the data export\n" {
		t.Fatalf("python-requests: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, c, "http://x/", "User-Agent", "python-requests/2.32.3"); body != "ok" {
		t.Fatalf("another version: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(t, c, "http://x/", "User-Agent", "curl", "Referer", "https://jobothoniel.com/"); resp.StatusCode != 403 {
		t.Fatalf("referer rule: %d", resp.StatusCode)
	}
	// Each rule's matches are counted (offedge_bot_requests_total).
	if got, want := settled(srv).Bots, []BotStats{{"off", "jobothoniel", 1}, {"off", "stop-crawling", 1}}; !slices.Equal(got, want) {
		t.Fatalf("bot stats %+v, want %+v", got, want)
	}
	// The 403 above counted; two 404s make three 4xx: banned.
	for range 2 {
		get(t, c, "http://x/missing", "User-Agent", "curl")
	}
	// The jail hears an answer after its last byte is written: wait until
	// the handler has counted it.
	settled(srv)
	if _, ok := bans.Banned(netip.MustParseAddr("127.0.0.1")); !ok {
		t.Fatalf("not banned after three 4xx answers; bans %+v", bans.List())
	}
}

// A proxied route's disk entry keeps its end-to-end fields across a
// restart (the cache is found again from its files).
func TestProxyCacheOnDiskKeepsFields(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	})
	dir := t.TempDir()
	clk := newClock()
	up := n.up(Upstream{Name: "po", Servers: []UpstreamServer{{Addr: be.addr()}}})
	c := n.cache(Cache{Dir: dir, MaxBytes: 1 << 20})
	site := Site{Name: "off", Hosts: []string{"x"}, Routes: []Route{{Path: "/", Upstream: up, Cache: &CachePolicy{Cache: c, Key: []string{"uri"}, Valid: map[int]time.Duration{200: time.Hour}, MinUses: 1}}}}
	_, addr := n.start(Config{Listener: "t", Sites: []Site{site}}, Options{Now: clk.Now})
	get(t, client(addr), "http://x/api/d")
	again, err := NewCache(Cache{Dir: dir, MaxBytes: 1 << 20}, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e, fresh := again.c.lookup(cacheKey("/api/d"), false)
	if e == nil || !fresh {
		t.Fatal("the entry was not found again on disk")
	}
	if h := e.httpHeader(); h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("fields after a restart: %v", h)
	}
}
