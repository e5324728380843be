package httpedge

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// The fallback cache's max_bytes bounds its memory, bookkeeping included:
// 50,000 unique keys for a 56-byte image (each with a long query string,
// as an attacker would send) keep the accounted size within the bound and
// the heap within the bound plus a small margin. A URI longer than
// MaxCacheKeyBytes is proxied uncached.
func TestCacheBoundsMemory(t *testing.T) {
	n := newNode(t)
	const maxBytes = 4 << 20
	img := strings.Repeat("i", 56)
	fb := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "image/jpeg")
		h.Set("Cache-Control", "public, max-age=31536000")
		h.Set("Etag", `"65f0a1b2-38"`)
		h.Set("Last-Modified", "Tue, 12 Mar 2024 10:00:00 GMT")
		io.WriteString(w, img)
	})
	root := t.TempDir()
	site := Site{Name: "img", Hosts: []string{"img"}, Routes: []Route{{Path: "/", Static: &Static{
		Root:     root,
		Fallback: n.up(Upstream{Name: "off", Servers: []UpstreamServer{{Addr: fb.addr()}}}),
		Cache:    n.cache(Cache{MaxBytes: maxBytes, TTL: map[int]time.Duration{200: 24 * time.Hour}}),
	}}}}
	srv, err := n.newServer(Config{Sites: []Site{site}}, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	c := n.built.Caches["cache0"].c
	serve := func(uri string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "http://img"+uri, nil)
		req.RemoteAddr = "192.0.2.1:40000"
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve("/warm.jpg"); rec.Code != 200 || rec.Body.String() != img {
		t.Fatalf("warm-up: %d %q", rec.Code, rec.Body.String())
	}
	before := heapInUse()
	pad := strings.Repeat("p", MaxCacheKeyBytes-60)
	const keys = 50_000
	for i := range keys {
		uri := fmt.Sprintf("/images/products/%d.jpg?v=%d&pad=%s", i, i, pad)
		if rec := serve(uri[:min(len(uri), MaxCacheKeyBytes)]); rec.Code != 200 {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
		if _, size := c.stats(); size > maxBytes {
			t.Fatalf("after %d keys the cache accounts %d bytes, over its bound %d", i+1, size, maxBytes)
		}
	}
	kept, size := c.stats()
	grown := heapInUse() - before
	t.Logf("%d entries, %d bytes accounted, heap grew %d bytes (%d per entry)", kept, size, grown, grown/int64(max(kept, 1)))
	if margin := int64(maxBytes / 4); grown > maxBytes+margin {
		t.Fatalf("heap grew %d bytes for a cache bounded at %d (margin %d)", grown, maxBytes, margin)
	}
	if kept < 1000 {
		t.Fatalf("only %d entries kept: the accounting overcharges", kept)
	}
	long := "/images/long.jpg?q=" + strings.Repeat("x", 7<<10)
	rec := serve(long)
	if rec.Code != 200 || rec.Header().Get("X-Cache-Status") != "BYPASS" {
		t.Fatalf("7 KiB URI: %d %q, want 200 BYPASS", rec.Code, rec.Header().Get("X-Cache-Status"))
	}
	if c.get(cacheKey(long)) != nil {
		t.Fatal("a URI over MaxCacheKeyBytes was cached")
	}
}
