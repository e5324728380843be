package httpedge

import (
	"container/list"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// jpeg is large enough (over net/http's 512-byte sniff prefix) to go
// through sendfile.
var jpeg = "JPEGDATA-" + strings.Repeat("x", 100<<10) + "0123456789"

func staticSetup(t *testing.T, n *testNode, fallback, cache string) (string, string, *Server) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "images/products/300/000"), 0o755)
	writeFile(t, filepath.Join(root, "images/products/300/000/1.jpg"), jpeg)
	writeFile(t, filepath.Join(root, "style.css"), "body{}")
	writeFile(t, filepath.Join(dir, "secret.txt"), "TOP SECRET")
	os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(root, "escape.txt"))
	os.Symlink("style.css", filepath.Join(root, "inside.css"))
	site := Site{Name: "images", Hosts: []string{"images.openfoodfacts.org"},
		Headers: map[string]string{"Link": "<http://creativecommons.org/licenses/by-sa/3.0/>; rel='license'; title='CC-BY-SA 3.0'", "Access-Control-Allow-Origin": "*"},
		Routes:  []Route{{Path: "/", Static: &Static{Root: root, Fallback: fallback, Cache: cache}}}}
	srv, addr := n.start(Config{Sites: []Site{site}}, Options{})
	return addr, root, srv
}

func TestStaticFiles(t *testing.T) {
	addr, _, srv := staticSetup(t, newNode(t), "", "")
	c := client(addr)
	base := "http://images.openfoodfacts.org"
	resp, body := get(t, c, base+"/images/products/300/000/1.jpg")
	if resp.StatusCode != 200 || body != jpeg || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Link") == "" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatal("licence/CORS headers missing")
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" {
		t.Fatal("no ETag / Last-Modified")
	}
	// The counter is updated when sendfile returns, which may be just
	// after the client has every byte.
	testutil.Eventually(t, 5*time.Second, "file bytes handed to sendfile", func() bool {
		return srv.Stats().ZeroCopyBytes >= uint64(len(jpeg)-512)
	})
	tests := []struct {
		name   string
		hdr    []string
		status int
		body   string
	}{
		{"range", []string{"Range", "bytes=4-7"}, 206, "DATA"},
		{"suffix range", []string{"Range", "bytes=-4"}, 206, "6789"},
		{"bad range", []string{"Range", "bytes=200000-300000"}, 416, ""},
		{"if-none-match", []string{"If-None-Match", etag}, 304, ""},
		{"if-modified-since", []string{"If-Modified-Since", lm}, 304, ""},
		{"stale etag", []string{"If-None-Match", `"x"`}, 200, jpeg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, c, base+"/images/products/300/000/1.jpg", tt.hdr...)
			if resp.StatusCode != tt.status || (tt.body != "" && body != tt.body) {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		resp, err := c.Head(base + "/style.css")
		if err != nil || resp.StatusCode != 200 || resp.ContentLength != 6 || resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
			t.Fatalf("HEAD: %v %v", resp, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if resp, _ := get(t, c, base+"/nope.jpg"); resp.StatusCode != 404 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("symlink inside root", func(t *testing.T) {
		if resp, body := get(t, c, base+"/inside.css"); resp.StatusCode != 200 || body != "body{}" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
}

func TestStaticTraversalRefused(t *testing.T) {
	n := newNode(t)
	fb := newBackend(t, textHandler("FALLBACK"))
	addr, _, _ := staticSetup(t, n, n.up(Upstream{Name: "fb", Servers: []UpstreamServer{{Addr: fb.addr()}}}), "")
	tests := []struct{ name, uri string }{
		{"dotdot", "/../secret.txt"},
		{"dotdot deep", "/images/../../secret.txt"},
		{"encoded dots", "/%2e%2e/secret.txt"},
		{"mixed encoded", "/images/%2E./%2e%2E/secret.txt"},
		{"encoded slash", "/images%2f..%2f..%2fsecret.txt"},
		{"backslash", "/..\\secret.txt"},
		{"encoded backslash", "/..%5csecret.txt"},
		{"NUL", "/style.css%00.jpg"},
		{"symlink outside root", "/escape.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := raw(t, addr, "GET "+tt.uri+" HTTP/1.1\r\nHost: images.openfoodfacts.org\r\nConnection: close\r\n\r\n")
			if strings.Contains(body, "SECRET") || resp.StatusCode < 400 {
				t.Fatalf("%s: %d %q", tt.uri, resp.StatusCode, body)
			}
			if strings.Contains(body, "FALLBACK") {
				t.Fatalf("%s was sent to the fallback", tt.uri)
			}
		})
	}
}

func TestFallbackAndCache(t *testing.T) {
	nd := newNode(t)
	var upstreamCalls atomic.Int64
	gate := make(chan struct{})
	var gated atomic.Bool
	fb := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		upstreamCalls.Add(1)
		if gated.Load() {
			<-gate
		}
		if r.Host != "cache.openfoodfacts.org" {
			http.Error(w, "wrong host "+r.Host, 400)
			return
		}
		if strings.HasSuffix(r.URL.Path, "missing.jpg") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Last-Modified", time.Unix(1_600_000_000, 0).UTC().Format(http.TimeFormat))
		fmt.Fprintf(w, "remote:%s", r.URL.RequestURI())
	})
	up := nd.up(Upstream{Name: "off1", Host: "cache.openfoodfacts.org", Servers: []UpstreamServer{{Addr: fb.addr()}}})
	cache := nd.cache(Cache{MaxBytes: 1 << 20, TTL: map[int]time.Duration{200: 24 * time.Hour}})
	addr, _, srv := staticSetup(t, nd, up, cache)
	c := client(addr)
	base := "http://images.openfoodfacts.org"

	resp, body := get(t, c, base+"/images/products/1/2.jpg")
	if resp.StatusCode != 200 || body != "remote:/images/products/1/2.jpg" || resp.Header.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("first: %d %q %q", resp.StatusCode, body, resp.Header.Get("X-Cache-Status"))
	}
	resp, body = get(t, c, base+"/images/products/1/2.jpg")
	if body != "remote:/images/products/1/2.jpg" || resp.Header.Get("X-Cache-Status") != "HIT" || upstreamCalls.Load() != 1 {
		t.Fatalf("second: %q %q, upstream calls %d", body, resp.Header.Get("X-Cache-Status"), upstreamCalls.Load())
	}
	if resp, body := get(t, c, base+"/images/products/1/2.jpg", "Range", "bytes=0-5"); resp.StatusCode != 206 || body != "remote" {
		t.Fatalf("range on a cached entry: %d %q", resp.StatusCode, body)
	}
	// Local files never touch the fallback.
	if _, body := get(t, c, base+"/style.css"); body != "body{}" {
		t.Fatalf("local: %q", body)
	}
	// 404 has no TTL: not cached.
	get(t, c, base+"/missing.jpg")
	get(t, c, base+"/missing.jpg")
	if n := upstreamCalls.Load(); n != 3 {
		t.Fatalf("upstream calls %d, want 3 (404 not cached)", n)
	}

	t.Run("singleflight", func(t *testing.T) {
		before := upstreamCalls.Load()
		gated.Store(true)
		var wg sync.WaitGroup
		bodies := make([]string, 20)
		for i := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, bodies[i] = get(t, c, base+"/images/products/9/9.jpg")
			}()
		}
		testutil_eventually(t, func() bool { return upstreamCalls.Load() > before })
		close(gate)
		wg.Wait()
		gated.Store(false)
		if n := upstreamCalls.Load() - before; n != 1 {
			t.Fatalf("20 concurrent misses made %d upstream requests, want 1", n)
		}
		for i, b := range bodies {
			if b != "remote:/images/products/9/9.jpg" {
				t.Fatalf("client %d got %q", i, b)
			}
		}
	})
	st := settled(srv)
	if st.CacheHits == 0 || st.CacheMisses == 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func testutil_eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCacheLRUAndTTL(t *testing.T) {
	clk := newClock()
	// Room for two 40-byte entries, bookkeeping included, not three.
	room := 2 * (&entry{body: make([]byte, 40)}).entryCost()
	c := &cache{max: room + 39, ttl: map[int]time.Duration{200: time.Hour}, now: clk.Now}
	c.ll, c.m = newList(), map[string]*listElem{}
	ok := &http.Response{StatusCode: 200, Header: http.Header{}}
	put := func(k string, n int) bool {
		return c.put(&entry{key: k, status: 200, body: make([]byte, n), size: int64(n)}, ok)
	}
	put("a", 40)
	put("b", 40)
	c.get("a") // a is now most recent
	put("c", 40)
	if c.get("b") != nil || c.get("a") == nil || c.get("c") == nil {
		t.Fatal("LRU did not evict the least recently used entry")
	}
	if n, size := c.stats(); n != 2 || size != room {
		t.Fatalf("%d entries, %d bytes", n, size)
	}
	if put("huge", int(room)) {
		t.Fatal("an entry larger than max_bytes was stored")
	}
	noStore := &http.Response{StatusCode: 200, Header: http.Header{"Cache-Control": {"private"}}}
	if c.put(&entry{key: "p", status: 200, size: 1}, noStore) {
		t.Fatal("private response cached")
	}
	clk.Add(2 * time.Hour)
	if c.get("a") != nil {
		t.Fatal("expired entry served")
	}
}

func TestDiskCacheSurvivesRestart(t *testing.T) {
	n := newNode(t)
	var calls atomic.Int64
	img := strings.Repeat("i", 64<<10)
	fb := newBackend(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1); io.WriteString(w, img) })
	dir := t.TempDir()
	root := t.TempDir()
	cfg := Config{Sites: []Site{{Name: "img", Hosts: []string{"img"}, Routes: []Route{{Path: "/", Static: &Static{Root: root,
		Fallback: n.up(Upstream{Name: "fb", Servers: []UpstreamServer{{Addr: fb.addr()}}}),
		Cache:    n.cache(Cache{Dir: dir, MaxBytes: 1 << 20, TTL: map[int]time.Duration{200: time.Hour}})}}}}}}
	srv1, addr1 := n.start(cfg, Options{})
	if resp, body := get(t, client(addr1), "http://img/a.jpg"); body != img || resp.Header.Get("X-Cache-Status") != "MISS" {
		t.Fatalf("%q", body)
	}
	srv1.Shutdown(t.Context())
	srv2, addr2 := n.start(cfg, Options{})
	resp, body := get(t, client(addr2), "http://img/a.jpg")
	if body != img || resp.Header.Get("X-Cache-Status") != "HIT" || calls.Load() != 1 {
		t.Fatalf("after restart: %q %q calls=%d", body, resp.Header.Get("X-Cache-Status"), calls.Load())
	}
	testutil.Eventually(t, 5*time.Second, "disk hit sent with sendfile", func() bool { return srv2.Stats().ZeroCopyBytes > 0 })
}

type listElem = list.Element

func newList() *list.List { return list.New() }

// The open-file cache shares one descriptor between requests: concurrent
// ranges at different offsets must not disturb each other, and a replaced
// file is seen within the cache's TTL.
func TestOpenFileCache(t *testing.T) {
	addr, root, _ := staticSetup(t, newNode(t), "", "")
	c := client(addr)
	base := "http://images.openfoodfacts.org/images/products/300/000/1.jpg"
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := i * 3001
			resp, body := get(t, c, base, "Range", fmt.Sprintf("bytes=%d-%d", off, off+999))
			if resp.StatusCode != 206 || body != jpeg[off:off+1000] {
				errs <- fmt.Sprintf("range at %d: %d, %d bytes, content differs", off, resp.StatusCode, len(body))
			}
			resp, body = get(t, c, base)
			if resp.StatusCode != 200 || body != jpeg {
				errs <- fmt.Sprintf("whole file: %d, %d bytes", resp.StatusCode, len(body))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	resp, _ := get(t, c, "http://images.openfoodfacts.org/style.css")
	etag := resp.Header.Get("ETag")
	if resp.Header.Get("Content-Type") != "text/css; charset=utf-8" || etag == "" {
		t.Fatalf("cached entry headers: %v", resp.Header)
	}
	tmp := filepath.Join(root, "style.css.new")
	writeFile(t, tmp, "body{color:red}")
	if err := os.Rename(tmp, filepath.Join(root, "style.css")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testutil.Eventually(t, 5*time.Second, "replaced file served", func() bool {
		_, body := get(t, c, "http://images.openfoodfacts.org/style.css")
		return body == "body{color:red}"
	})
	if d := time.Since(start); d > openFileTTL+time.Second {
		t.Fatalf("replaced file seen after %v; the cache keeps entries %v", d, openFileTTL)
	}
	os.Remove(filepath.Join(root, "style.css"))
	testutil.Eventually(t, 5*time.Second, "removed file gone", func() bool {
		resp, _ := get(t, c, "http://images.openfoodfacts.org/style.css")
		return resp.StatusCode == 404
	})
}

// A small file is answered from the copy read when it was opened: one
// rewritten in place (same inode, new length) is answered whole, old or
// new, never the new bytes under the old length, and the new content
// within the cache's TTL.
func TestSmallFileRewrittenInPlace(t *testing.T) {
	addr, root, _ := staticSetup(t, newNode(t), "", "")
	path := writeFile(t, filepath.Join(root, "small.txt"), "old content")
	req := "GET /small.txt HTTP/1.1\r\nHost: images.openfoodfacts.org\r\n\r\n"
	if resp, b := raw(t, addr, req); resp.StatusCode != 200 || b != "old content" {
		t.Fatalf("first GET: %d %q", resp.StatusCode, b)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("the new, longer content"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	start := time.Now()
	testutil.Eventually(t, 5*time.Second, "rewritten file served", func() bool {
		resp, b := raw(t, addr, req)
		if resp.StatusCode != 200 || resp.ContentLength != int64(len(b)) || b != "old content" && b != "the new, longer content" {
			t.Fatalf("GET after the rewrite: %d, length %d, %q", resp.StatusCode, resp.ContentLength, b)
		}
		return b == "the new, longer content"
	})
	if d := time.Since(start); d > openFileTTL+time.Second {
		t.Fatalf("rewritten file seen after %v; the cache keeps entries %v", d, openFileTTL)
	}
}

// TestStaticPlainGetMatchesServeContent: the fast path for a GET with no
// Range or condition answers what http.ServeContent answers (the same
// request with an If-Modified-Since in the past goes through it), with the
// file's fields serialised once per open file (presetFields) or, where the
// route's policy rewrites or reads one of them, through the header map.
func TestStaticPlainGetMatchesServeContent(t *testing.T) {
	root := t.TempDir()
	for name, body := range map[string]string{"f.css": strings.Repeat("a{}", 100), "f.jpg": "JPEG" + strings.Repeat("x", 300)} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	css := &Compress{Gzip: true, Types: []string{"text/css"}, GzipLevel: 1}
	tests := []struct {
		name   string
		route  Route
		file   string
		accept string // Accept-Encoding
		preset bool   // the fields go serialised, not through the map
	}{
		{"plain", Route{}, "f.css", "", true},
		{"added fields and expires", Route{Headers: map[string]string{"X-A": "a"}, Expires: &Expires{Mode: "access", Seconds: 60}}, "f.css", "", true},
		{"added Content-Type", Route{Headers: map[string]string{"Content-Type": "text/plain"}}, "f.css", "", false},
		{"added Etag", Route{HeadersAlways: map[string]string{"ETag": `"mine"`}}, "f.css", "", false},
		{"expires from Last-Modified", Route{Expires: &Expires{Mode: "modified", Seconds: 3600}}, "f.css", "", false},
		{"type compressed", Route{Compress: css}, "f.css", "gzip", false},
		{"type compressed, client without gzip", Route{Compress: css}, "f.css", "", false},
		{"type not compressed", Route{Compress: css}, "f.jpg", "gzip", true},
	}
	clock := newClock()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := tt.route
			rt.Path, rt.Static = "/", &Static{Root: root}
			srv, addr := newNode(t).start(Config{Listener: "t", Sites: []Site{{
				Name: "s", Hosts: []string{"example.org"}, Headers: map[string]string{"Link": "<http://example.org/l>; rel=license"},
				Routes: []Route{rt},
			}}}, Options{Now: clock.Now})
			get := func(method string, hdr map[string]string) (http.Header, string) {
				req, _ := http.NewRequest(method, "http://example.org/"+tt.file, nil)
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				if tt.accept != "" {
					req.Header.Set("Accept-Encoding", tt.accept)
				}
				resp, err := client(addr).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("%s %v: status %d", method, hdr, resp.StatusCode)
				}
				resp.Header.Del("Date")
				return resp.Header, string(b)
			}
			past := map[string]string{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
			for _, m := range []string{"GET", "HEAD"} {
				fastH, fastB := get(m, nil)
				fullH, fullB := get(m, past)
				if !reflect.DeepEqual(fastH, fullH) || fastB != fullB {
					t.Errorf("%s: fast path\n %v %q\nhttp.ServeContent\n %v %q", m, fastH, fastB, fullH, fullB)
				}
			}
			// The path taken, seen from a writer that takes preset fields.
			pw := &presetWriter{h: http.Header{}}
			req := httptest.NewRequest("GET", "http://example.org/"+tt.file, nil)
			if tt.accept != "" {
				req.Header.Set("Accept-Encoding", tt.accept)
			}
			srv.ServeHTTP(pw, req)
			if got := pw.fields != nil; got != tt.preset || pw.status != 200 {
				t.Fatalf("status %d, fields preset: %v, want %v", pw.status, got, tt.preset)
			}
			if tt.preset && (pw.n != int64(pw.body.Len()) || len(pw.h["Content-Type"]) != 0 || !strings.Contains(string(pw.fields), "\r\nContent-Type: ")) {
				t.Fatalf("preset %q for %d bytes, %d sent, map %v", pw.fields, pw.n, pw.body.Len(), pw.h)
			}
		})
	}
}

// presetWriter is a ResponseWriter that takes preset fields, as
// edge/http/h1's does.
type presetWriter struct {
	h      http.Header
	fields []byte
	n      int64
	status int
	body   strings.Builder
}

func (w *presetWriter) Header() http.Header { return w.h }
func (w *presetWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *presetWriter) Write(p []byte) (int, error) {
	w.WriteHeader(200)
	return w.body.Write(p)
}
func (w *presetWriter) PresetFields(fields []byte, n int64) { w.fields, w.n = fields, n }
