package httpedge

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// queued is the number of requests waiting in the pool named name.
func queued(s *Server, name string) int {
	for _, p := range s.chain.Load().pools {
		if p.name == name {
			p.mu.Lock()
			n := len(p.queue)
			p.mu.Unlock()
			return n
		}
	}
	return -1
}

func upstreamStats(s *Server, addr string) UpstreamStats {
	for _, u := range settled(s).Upstreams {
		if u.Addr == addr {
			return u
		}
	}
	return UpstreamStats{}
}

// gateBackend answers once released, and records the most requests it
// ever had in flight at once.
type gateBackend struct {
	*testBackend
	gate     chan struct{}
	inflight atomic.Int64
	peak     atomic.Int64
}

func newGateBackend(t *testing.T) *gateBackend {
	g := &gateBackend{gate: make(chan struct{})}
	g.testBackend = newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n := g.inflight.Add(1)
		for {
			p := g.peak.Load()
			if n <= p || g.peak.CompareAndSwap(p, n) {
				break
			}
		}
		if r.URL.Path != "/health" {
			<-g.gate
		}
		g.inflight.Add(-1)
		io.WriteString(w, "ok")
	})
	return g
}

// With buffering (the default), a client sending its body slowly holds no
// upstream connection: twenty clients stuck halfway through their bodies,
// then a quick request, and the upstream has seen one connection. When
// the bodies complete, each reaches the upstream whole.
func TestSlowBodiesHoldNoUpstreamConnection(t *testing.T) {
	nd := newNode(t)
	var bodies sync.Map
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies.Store(r.URL.Path, string(b))
		fmt.Fprintf(w, "got %d", len(b))
	})
	srv, addr := nd.start(Config{Sites: []Site{nd.proxySite("s", []string{"s"}, be.addr())}}, Options{})
	const slow = 20
	var conns []net.Conn
	for i := range slow {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "POST /slow/%d HTTP/1.1\r\nHost: s\r\nContent-Length: 10\r\nConnection: close\r\n\r\nhello", i)
		conns = append(conns, c)
	}
	testutil.Eventually(t, 10*time.Second, "all slow requests being handled", func() bool { return srv.Stats().Requests >= slow })
	if resp, body := get(t, client(addr), "http://s/quick"); resp.StatusCode != 200 {
		t.Fatalf("quick request: %d %q", resp.StatusCode, body)
	}
	if n := be.conns.Load(); n != 1 {
		t.Fatalf("the upstream saw %d connections while %d bodies were incomplete, want 1 (the quick request's)", n, slow)
	}
	for _, c := range conns {
		io.WriteString(c, "world")
	}
	for i, c := range conns {
		b, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(b), "HTTP/1.1 200") || !strings.HasSuffix(string(b), "got 10") {
			t.Fatalf("slow request %d: %q", i, b)
		}
		if got, _ := bodies.Load(fmt.Sprintf("/slow/%d", i)); got != "helloworld" {
			t.Fatalf("slow request %d: upstream got body %q", i, got)
		}
	}
}

// Buffered bodies: a chunked body goes upstream with its length, a body
// larger than BodyBufferBytes goes through a temporary file that is never
// visible in the directory, and a PUT whose first server dropped it is
// sent again, whole, to the next.
func TestRequestBodyBuffering(t *testing.T) {
	n := newNode(t)
	type seen struct{ te, cl, body string }
	got := make(chan seen, 4)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{strings.Join(r.TransferEncoding, ","), r.Header.Get("Content-Length"), string(b)}
	})
	tmp := t.TempDir()
	site := n.proxySite("s", []string{"s"}, be.addr())
	site.Routes[0].MaxBodyBytes = 4 << 20
	_, addr := n.start(Config{Sites: []Site{site}}, Options{BodyTempDir: tmp})
	resp, _ := raw(t, addr, "POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("chunked POST: %d", resp.StatusCode)
	}
	if s := <-got; s.te != "" || s.cl != "5" || s.body != "abcde" {
		t.Fatalf("buffered chunked body upstream: %+v, want Content-Length 5", s)
	}
	big := strings.Repeat("0123456789abcdef", 3*BodyBufferBytes/16+7)
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < len(big); i += 8192 {
			pw.Write([]byte(big[i:min(i+8192, len(big))]))
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, "http://s/big", pr)
	req.ContentLength = int64(len(big))
	r2, err := client(addr).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if s := <-got; r2.StatusCode != 200 || s.cl != fmt.Sprint(len(big)) || s.body != big {
		t.Fatalf("big body: status %d, upstream got %s bytes (Content-Length %s), intact %v", r2.StatusCode, fmt.Sprint(len(s.body)), s.cl, s.body == big)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Fatalf("temporary body files left in %s: %v", tmp, ents)
	}

	// A server that takes the request and drops it: the buffered PUT is
	// sent again to the next server, whole.
	ln, _ := droppingServer(t, 64)
	up := n.up(Upstream{Name: "p", Servers: []UpstreamServer{{Addr: ln.Addr().String(), Weight: 1000}, {Addr: be.addr()}}})
	_, addr3 := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{})
	req, _ = http.NewRequest(http.MethodPut, "http://s/doc", strings.NewReader("document body"))
	r3, err := client(addr3).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if s := <-got; r3.StatusCode != 200 || s.body != "document body" {
		t.Fatalf("PUT retried: %d, next server got %q", r3.StatusCode, s.body)
	}
}

// max_conns is never exceeded under concurrency: 30 requests to a server
// capped at 3 wait in the queue and are all served, the server never has
// more than 3 in flight (health probes included) nor more than 3
// connections.
func TestMaxConnsNeverExceeded(t *testing.T) {
	n := newNode(t)
	g := newGateBackend(t)
	up := n.up(Upstream{Name: "capped", Queue: 100, QueueTimeout: 20 * time.Second, Servers: []UpstreamServer{{Addr: g.addr(), MaxConns: 3}},
		// Probes run all along: they must not exceed the cap either, nor
		// mark the busy server down.
		HealthCheck: &HealthCheck{Path: "/health", Interval: 5 * time.Millisecond, Timeout: 5 * time.Second, Rise: 1, Fall: 1}})
	srv, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{})
	c := client(addr)
	c.Timeout = 30 * time.Second
	const total = 30
	codes := make(chan int, total)
	for range total {
		go func() {
			resp, err := c.Get("http://s/")
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	testutil.Eventually(t, 10*time.Second, "3 in flight and 27 queued", func() bool {
		return g.inflight.Load() == 3 && queued(srv, "capped") == total-3
	})
	if st := upstreamStats(srv, g.addr()); st.Active != 3 || st.MaxConns != 3 || !st.Up {
		t.Fatalf("stats %+v, want 3 active of max 3, up", st)
	}
	close(g.gate)
	for range total {
		if code := <-codes; code != 200 {
			t.Fatalf("a queued request got %d, want 200", code)
		}
	}
	if p := g.peak.Load(); p > 3 {
		t.Fatalf("%d requests in flight at once to a server with max_conns 3", p)
	}
	if k := g.conns.Load(); k > 3 {
		t.Fatalf("%d connections opened to a server with max_conns 3", k)
	}
	testutil.Eventually(t, 5*time.Second, "slots given back", func() bool { return upstreamStats(srv, g.addr()).Active == 0 })
}

// What a client gets when every server is at max_conns: a place in the
// queue while there is one; 503 with Retry-After at once when the queue is
// full, or when its wait exceeds queue_timeout.
func TestQueueFullAndTimeout(t *testing.T) {
	n := newNode(t)
	g := newGateBackend(t)
	up := n.up(Upstream{Name: "one", Queue: 1, QueueTimeout: 300 * time.Millisecond, Servers: []UpstreamServer{{Addr: g.addr(), MaxConns: 1}}})
	srv, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{})
	c := client(addr)
	type result struct {
		code  int
		retry string
	}
	do := func() chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := c.Get("http://s/")
			if err != nil {
				ch <- result{}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ch <- result{resp.StatusCode, resp.Header.Get("Retry-After")}
		}()
		return ch
	}
	first := do()
	testutil.Eventually(t, 5*time.Second, "first request in flight", func() bool { return g.inflight.Load() == 1 })
	second := do()
	testutil.Eventually(t, 5*time.Second, "second request queued", func() bool { return queued(srv, "one") == 1 })
	if r := <-do(); r.code != 503 || r.retry == "" {
		t.Fatalf("queue full: %+v, want 503 with Retry-After", r)
	}
	if r := <-second; r.code != 503 {
		t.Fatalf("queue timeout: %+v, want 503", r)
	}
	close(g.gate)
	if r := <-first; r.code != 200 {
		t.Fatalf("first: %+v", r)
	}
	st := settled(srv)
	if st.QueueRejected != 1 || st.QueueTimeouts != 1 || st.Upstreams[0].Fails != 0 {
		t.Fatalf("stats: rejected %d, timeouts %d, fails %d; want 1, 1, 0 (busy is not failed)", st.QueueRejected, st.QueueTimeouts, st.Upstreams[0].Fails)
	}
}

// The queue is served in order: each freed slot goes to the oldest waiter.
func TestQueueServedInOrder(t *testing.T) {
	n := newNode(t)
	gate := make(chan struct{})
	var mu sync.Mutex
	var order []string
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		order = append(order, r.URL.Path)
		mu.Unlock()
		<-gate
	})
	up := n.up(Upstream{Name: "one", Queue: 10, QueueTimeout: 20 * time.Second, Servers: []UpstreamServer{{Addr: be.addr(), MaxConns: 1}}})
	srv, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{})
	c := client(addr)
	c.Timeout = 30 * time.Second
	done := make(chan error, 4)
	send := func(path string) {
		go func() {
			resp, err := c.Get("http://s" + path)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
	}
	send("/a")
	testutil.Eventually(t, 5*time.Second, "a in flight", func() bool { return be.requests.Load() == 1 })
	for i, p := range []string{"/b", "/c", "/d"} {
		send(p)
		testutil.Eventually(t, 5*time.Second, p+" queued", func() bool { return queued(srv, "one") == i+1 })
	}
	for range 4 {
		gate <- struct{}{}
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(order, " "); got != "/a /b /c /d" {
		t.Fatalf("served in order %s, want /a /b /c /d", got)
	}
}
