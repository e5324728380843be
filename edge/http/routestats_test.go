package httpedge

import (
	"net/http"
	"testing"
	"time"
)

func routeStat(s *Server, site, route string) RouteStats {
	for _, rs := range s.Stats().Routes {
		if rs.Site == site && rs.Route == route {
			return rs
		}
	}
	return RouteStats{Site: site, Route: route}
}

// TestRouteStats: requests are counted per site and route, by status class,
// with their bytes and a duration histogram, and the counts survive an
// update.
func TestRouteStats(t *testing.T) {
	n := newNode(t)
	b := newBackend(t, textHandler("hello"))
	cfg := Config{Listener: "test", Sites: []Site{n.proxySite("www", []string{"www.example.org"}, b.addr())}}
	s, addr := n.start(cfg, Options{})
	c := client(addr)
	for range 3 {
		get(t, c, "http://www.example.org/some/path")
	}
	if resp, _ := get(t, c, "http://nobody.example.org/"); resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("unknown host: %d", resp.StatusCode)
	}
	rs := routeStat(s, "www", "/")
	if rs.Status[2] != 3 || rs.Count != 3 || rs.Bytes < 15 || rs.Buckets[len(rs.Buckets)-1] != 3 || rs.SumSeconds <= 0 {
		t.Errorf("route / of www: %+v, want 3 2xx, 3 requests, at least 15 bytes", rs)
	}
	if no := routeStat(s, "", ""); no.Status[4] != 1 {
		t.Errorf("requests no site answered: %+v, want one 4xx", no)
	}
	if err := n.update(s, cfg); err != nil {
		t.Fatal(err)
	}
	get(t, c, "http://www.example.org/")
	if rs := routeStat(s, "www", "/"); rs.Count != 4 {
		t.Errorf("after an update, route / of www counts %d requests, want 4 (counters kept)", rs.Count)
	}
}

func TestRouteStatsBuckets(t *testing.T) {
	var rs routeStats
	for _, d := range []time.Duration{0, 5 * time.Millisecond, 6 * time.Millisecond, 20 * time.Second} {
		rs.observe(200, 10, d)
	}
	rs.observe(0, 0, time.Millisecond)
	got := rs.snapshot("s", "/")
	// <=5ms: 0, 5ms and the status-less one; <=10ms: +6ms; +Inf: +20s.
	if got.Buckets[0] != 3 || got.Buckets[1] != 4 || got.Buckets[len(got.Buckets)-1] != 4 || got.Count != 5 || got.Status[0] != 1 || got.Status[2] != 4 || got.Bytes != 40 {
		t.Errorf("snapshot %+v", got)
	}
}
