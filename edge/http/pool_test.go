package httpedge

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

func TestSmoothWeightedRoundRobin(t *testing.T) {
	p := &pool{now: time.Now, cfg: Upstream{}}
	for _, w := range []struct {
		addr   string
		weight int
	}{{"a", 5}, {"b", 1}, {"c", 1}} {
		p.backends = append(p.backends, &backend{addr: w.addr, weight: w.weight})
	}
	var seq []string
	for range 7 {
		seq = append(seq, p.pick(0).addr)
	}
	// nginx's documented sequence for weights 5,1,1.
	if got := strings.Join(seq, ""); got != "aabacaa" {
		t.Fatalf("sequence %s, want aabacaa", got)
	}
}

func TestPoolWeightsAndBackup(t *testing.T) {
	n := newNode(t)
	var hits [3]atomic.Int64
	mk := func(i int) *testBackend {
		return newBackend(t, func(w http.ResponseWriter, r *http.Request) { hits[i].Add(1); fmt.Fprint(w, i) })
	}
	a, b, bk := mk(0), mk(1), mk(2)
	up := n.up(Upstream{Name: "off", Servers: []UpstreamServer{
		{Addr: a.addr(), Weight: 100}, {Addr: b.addr()}, {Addr: bk.addr(), Backup: true},
	}})
	_, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{})
	c := client(addr)
	for range 202 {
		get(t, c, "http://s/")
	}
	if hits[0].Load() != 200 || hits[1].Load() != 2 || hits[2].Load() != 0 {
		t.Fatalf("hits %d/%d/%d, want 200/2/0 (weights 100:1, backup unused)", hits[0].Load(), hits[1].Load(), hits[2].Load())
	}
	// Primaries down: the backup answers.
	a.Close()
	b.Close()
	for range 5 {
		resp, body := get(t, c, "http://s/")
		if resp.StatusCode != 200 || body != "2" {
			t.Fatalf("with primaries down: %d %q", resp.StatusCode, body)
		}
	}
}

func TestRetryAndPassiveHealth(t *testing.T) {
	n := newNode(t)
	live := newBackend(t, textHandler("live"))
	dead := deadAddr(t)
	clk := newClock()
	up := n.up(Upstream{Name: "p", MaxFails: 1, FailTimeout: 10 * time.Second, Servers: []UpstreamServer{{Addr: dead}, {Addr: live.addr()}}})
	srv, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{Now: clk.Now})
	c := client(addr)
	for i := range 6 {
		resp, body := get(t, c, "http://s/")
		if resp.StatusCode != 200 || body != "live" {
			t.Fatalf("request %d: %d %q (connect failure must be retried on the next server)", i, resp.StatusCode, body)
		}
	}
	st := settled(srv)
	var deadStats UpstreamStats
	for _, u := range st.Upstreams {
		if u.Addr == dead {
			deadStats = u
		}
	}
	if deadStats.Retried != 1 {
		t.Fatalf("dead server: %+v; want its one failed request counted as retried elsewhere", deadStats)
	}
	if deadStats.Up || deadStats.Requests != 1 {
		t.Fatalf("dead server: %+v; want marked down after one failure and not tried again within fail_timeout", deadStats)
	}
	clk.Add(11 * time.Second)
	get(t, c, "http://s/")
	get(t, c, "http://s/")
	for _, u := range settled(srv).Upstreams {
		if u.Addr == dead && u.Requests != 2 {
			t.Fatalf("after fail_timeout the server must be tried again: %+v", u)
		}
	}
}

func TestNoRetryOfNonIdempotentAfterSend(t *testing.T) {
	n := newNode(t)
	// A server that accepts and resets: the request was sent.
	ln, _ := droppingServer(t, 16)
	other := newBackend(t, textHandler("other"))
	up := n.up(Upstream{Name: "p", Servers: []UpstreamServer{{Addr: ln.Addr().String(), Weight: 1000}, {Addr: other.addr()}}})
	_, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{})
	c := client(addr)
	resp, err := c.Post("http://s/", "text/plain", strings.NewReader("order=1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 || other.requests.Load() != 0 {
		t.Fatalf("POST after send: %d, other got %d requests; want 502 and no retry", resp.StatusCode, other.requests.Load())
	}
	// A GET is retried.
	if resp, body := get(t, c, "http://s/x"); resp.StatusCode != 200 || body != "other" {
		t.Fatalf("GET: %d %q, want a retry on the next server", resp.StatusCode, body)
	}
}

func TestActiveHealthCheck(t *testing.T) {
	n := newNode(t)
	var healthy atomic.Bool
	healthy.Store(true)
	a := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			if !healthy.Load() {
				w.WriteHeader(503)
			}
			return
		}
		io.WriteString(w, "a")
	})
	b := newBackend(t, textHandler("b"))
	up := n.up(Upstream{Name: "p", Servers: []UpstreamServer{{Addr: a.addr()}, {Addr: b.addr()}},
		HealthCheck: &HealthCheck{Path: "/health", Interval: 20 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 2}})
	srv, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{})
	up0 := func() bool {
		for _, u := range srv.Stats().Upstreams {
			if u.Addr == a.addr() {
				return u.Up
			}
		}
		return false
	}
	healthy.Store(false)
	testutil.Eventually(t, 5*time.Second, "server a marked down by health checks", func() bool { return !up0() })
	c := client(addr)
	for range 6 {
		if _, body := get(t, c, "http://s/"); body != "b" {
			t.Fatalf("a down, got %q", body)
		}
	}
	healthy.Store(true)
	testutil.Eventually(t, 5*time.Second, "server a back up", up0)
	seen := map[string]bool{}
	for range 4 {
		_, body := get(t, c, "http://s/")
		seen[body] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("after recovery both should serve: %v", seen)
	}
}

func TestKeepaliveReuse(t *testing.T) {
	nd := newNode(t)
	be := newBackend(t, textHandler(strings.Repeat("x", 1024)))
	_, addr := nd.start(Config{Sites: []Site{nd.proxySite("s", []string{"s"}, be.addr())}}, Options{})
	c := client(addr)
	for range 50 {
		get(t, c, "http://s/")
	}
	if n := be.conns.Load(); n > 2 {
		t.Fatalf("50 sequential requests used %d upstream connections; keep-alive is not reused", n)
	}
}

func TestUpstreamTimeouts(t *testing.T) {
	n := newNode(t)
	release := make(chan struct{})
	slow := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	up := n.up(Upstream{Name: "slow", ReadTimeout: 200 * time.Millisecond, Servers: []UpstreamServer{{Addr: slow.addr()}}})
	_, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{})
	start := time.Now()
	resp, _ := get(t, client(addr), "http://s/")
	if resp.StatusCode != 504 {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("read timeout took %v", d)
	}
}

func TestStreamingIsFlushed(t *testing.T) {
	nd := newNode(t)
	next := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	_, addr := nd.start(Config{Sites: []Site{nd.proxySite("s", []string{"s"}, be.addr())}}, Options{})
	resp, err := client(addr).Get("http://s/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	for i := range 3 {
		n, err := resp.Body.Read(buf)
		if err != nil || string(buf[:n]) != fmt.Sprintf("data: %d\n\n", i) {
			t.Fatalf("event %d: %q %v (not flushed?)", i, buf[:n], err)
		}
		next <- struct{}{}
	}
}
