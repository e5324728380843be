package httpedge

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// settled returns s's counters once no request is in flight: a request
// is counted when its handler ends, which may be just after the client
// has the whole answer (a small body leaves with its head in one writev
// while the handler runs).
func settled(s *Server) Stats {
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.Stats()
		if st.RequestsInFlight == 0 || time.Now().After(deadline) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
}

func routeStat(s *Server, site, route string) RouteStats {
	for _, rs := range settled(s).Routes {
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

// RequestsInFlight counts a request from its handler's start to the end
// of its counting: 1 while the upstream holds the answer back, 0 once the
// answer is sent and counted.
func TestRequestsInFlight(t *testing.T) {
	n := newNode(t)
	hold := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		<-hold
		io.WriteString(w, "late")
	})
	s, addr := n.start(Config{Listener: "test", Sites: []Site{n.proxySite("www", []string{"www.example.org"}, b.addr())}}, Options{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, client(addr), "http://www.example.org/")
	}()
	testutil.Eventually(t, 5*time.Second, "the held request in flight", func() bool { return s.Stats().RequestsInFlight == 1 })
	close(hold)
	<-done
	if st := settled(s); st.RequestsInFlight != 0 || st.Status2xx != 1 {
		t.Fatalf("after the answer: %d in flight, %d 2xx; want 0 and 1", st.RequestsInFlight, st.Status2xx)
	}
}
