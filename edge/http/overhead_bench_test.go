package httpedge

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkServeHTTPRedirect is the cheapest request the edge answers (a
// redirect route, no upstream, no file): the one where per-request
// bookkeeping, metrics included, weighs most. Compare instruction counts
// (perf stat -e instructions) across changes, not wall-clock time.
func BenchmarkServeHTTPRedirect(b *testing.B) {
	n := newNode(b)
	s, err := n.newServer(Config{Listener: "bench", Sites: []Site{{Name: "www", Hosts: []string{"www.example.org"},
		Routes: []Route{{Path: "/", Redirect: "https://www.example.org"}}}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(b.Context())
	req := httptest.NewRequest("GET", "http://www.example.org/a/b?c=d", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkRouteStatsObserve is the metrics' own cost per request.
func BenchmarkRouteStatsObserve(b *testing.B) {
	var rs routeStats
	for b.Loop() {
		rs.observe(200, 1234, 3*time.Millisecond)
	}
}
