package httpedge

import (
	"net/http"
	"testing"
	"time"
)

// A cache counts its answers by X-Cache-Status, and drops an entry nobody
// asked for within inactive (nginx's inactive=) even while it is fresh;
// an entry in use stays.
func TestCacheCountsAnswersAndDropsInactive(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok " + r.URL.Path)) })
	clk := newClock()
	up := n.up(Upstream{Name: "po", Servers: []UpstreamServer{{Addr: be.addr()}}, MaxFails: -1})
	name := n.cache(Cache{MaxBytes: 1 << 20, TTL: map[int]time.Duration{}, Inactive: 2 * time.Minute})
	site := Site{Name: "off", Hosts: []string{"x"}, Routes: []Route{{Path: "/", Upstream: up,
		Cache: &CachePolicy{Cache: name, Key: []string{"uri"}, Valid: map[int]time.Duration{200: time.Hour}, MinUses: 1, Bypass: []string{"cookie:session"}}}}}
	_, addr := n.start(Config{Listener: "t", Sites: []Site{site}}, Options{Now: clk.Now})
	c := client(addr)
	status := func(path string, h ...string) string {
		req, _ := http.NewRequest("GET", "http://x"+path, nil)
		if len(h) == 2 {
			req.Header.Set(h[0], h[1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Cache-Status")
	}
	for i, want := range []string{"MISS", "HIT", "HIT"} {
		if got := status("/a"); got != want {
			t.Fatalf("request %d of /a: %s, want %s", i+1, got, want)
		}
	}
	status("/b")
	if got := status("/a", "Cookie", "session=1"); got != "BYPASS" {
		t.Fatalf("with a session: %s", got)
	}
	rc := n.built.Caches[name]
	st := rc.Stats()
	if st.Entries != 2 || st.Results["MISS"] != 2 || st.Results["HIT"] != 2 || st.Results["BYPASS"] != 1 || st.MaxBytes != 1<<20 {
		t.Fatalf("stats %+v", st)
	}
	// /a is used 90 s later, /b is not: at 2m30s /b has been unused for
	// 2m30s (removed), /a for 60 s (kept), though both are fresh for an hour.
	clk.Add(90 * time.Second)
	if got := status("/a"); got != "HIT" {
		t.Fatalf("/a after 90 s: %s", got)
	}
	clk.Add(60 * time.Second)
	st = rc.Stats()
	if st.Entries != 1 || st.Inactive != 1 {
		t.Fatalf("after /b was unused 2m30s: %+v; want 1 entry left and 1 removed as inactive", st)
	}
	if got := status("/b"); got != "MISS" {
		t.Fatalf("/b after it was dropped: %s, want MISS", got)
	}
}

// Entries removed to stay under max_size count as evicted.
func TestCacheCountsEvictions(t *testing.T) {
	clk := newClock()
	c, err := newCache(Cache{MaxBytes: 4 * entryOverhead, TTL: map[int]time.Duration{200: time.Hour}}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		c.store(&entry{key: cacheKey(k), status: 200, body: make([]byte, 100), size: 100}, time.Hour)
	}
	st := c.fullStats()
	if st.Evicted == 0 || st.Bytes > st.MaxBytes || st.Entries+int(st.Evicted) != 6 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := newCache(Cache{MaxBytes: 1, Inactive: -time.Second}, clk.Now); err == nil {
		t.Fatal("a negative inactive was accepted")
	}
}
