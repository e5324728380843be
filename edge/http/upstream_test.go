package httpedge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawUpstream is a scripted HTTP/1.1 server: serve is called for every
// request with the connection's number (from 1) and the request's number on
// that connection (from 1); it writes the raw answer and reports whether
// to keep the connection open.
type rawUpstream struct {
	ln    net.Listener
	conns atomic.Int64
	mu    sync.Mutex
	got   []string // "METHOD path" of every request received
}

func newRawUpstream(t *testing.T, serve func(conn, n int, req *http.Request, c net.Conn) bool) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			id := int(u.conns.Add(1))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for n := 1; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					u.mu.Lock()
					u.got = append(u.got, req.Method+" "+req.URL.Path)
					u.mu.Unlock()
					if !serve(id, n, req, c) {
						return
					}
				}
			}()
		}
	}()
	return u
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

func (u *rawUpstream) received() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.got...)
}

func rawProxy(t *testing.T, u *rawUpstream) string {
	n := newNode(t)
	t.Helper()
	_, addr := n.start(Config{Sites: []Site{n.proxySite("s", []string{"s"}, u.addr())}}, Options{})
	return addr
}

func TestUpstreamChunkedResponseKeepsConnection(t *testing.T) {
	u := newRawUpstream(t, func(_, n int, _ *http.Request, c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
			"5\r\nhello\r\n7\r\n world \r\n%x\r\n%d\r\n0\r\nX-Sum: 42\r\n\r\n", len(fmt.Sprint(n)), n)
		return true
	})
	c := client(rawProxy(t, u))
	for i := 1; i <= 3; i++ {
		resp, body := get(t, c, "http://s/c")
		if resp.StatusCode != 200 || body != fmt.Sprintf("hello world %d", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if resp.Trailer.Get("X-Sum") != "42" {
			t.Fatalf("request %d: trailer %v not forwarded", i, resp.Trailer)
		}
	}
	if n := u.conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections for 3 chunked answers, want 1 (kept alive)", n)
	}
}

func TestUpstreamCloseDelimitedBody(t *testing.T) {
	body := strings.Repeat("z", 100<<10)
	u := newRawUpstream(t, func(_, _ int, _ *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"+body)
		return false
	})
	c := client(rawProxy(t, u))
	for i := range 2 {
		resp, got := get(t, c, "http://s/eof")
		if resp.StatusCode != 200 || got != body {
			t.Fatalf("request %d: %d, %d bytes, want the whole close-delimited body", i, resp.StatusCode, len(got))
		}
	}
	if n := u.conns.Load(); n != 2 {
		t.Fatalf("%d upstream connections, want 2 (a close-delimited body ends its connection)", n)
	}
}

func TestUpstreamNoBodyAnswersKeepConnection(t *testing.T) {
	// HEAD, 204 and 304 carry no body whatever their head says; reading one
	// would hang or desynchronise the kept-alive connection.
	u := newRawUpstream(t, func(_, _ int, req *http.Request, c net.Conn) bool {
		switch {
		case req.Method == http.MethodHead:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nContent-Type: text/plain\r\n\r\n")
		case req.URL.Path == "/204":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		case req.URL.Path == "/304":
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 999\r\n\r\n")
		default:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		return true
	})
	addr := rawProxy(t, u)
	c := client(addr)
	req, _ := http.NewRequest(http.MethodHead, "http://s/file", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 12345 {
		t.Fatalf("HEAD: %d, length %d; want 200 with the upstream's Content-Length", resp.StatusCode, resp.ContentLength)
	}
	for _, tt := range []struct {
		path   string
		status int
	}{{"/204", 204}, {"/304", 304}, {"/after", 200}} {
		resp, body := get(t, c, "http://s"+tt.path)
		if resp.StatusCode != tt.status || (tt.status == 200 && body != "ok") || (tt.status != 200 && body != "") {
			t.Fatalf("%s: %d %q", tt.path, resp.StatusCode, body)
		}
	}
	if n := u.conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections, want 1: bodiless answers must leave the connection reusable", n)
	}
}

func TestUpstreamInformationalAnswersSkipped(t *testing.T) {
	u := newRawUpstream(t, func(_, _ int, _ *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
		return true
	})
	resp, body := get(t, client(rawProxy(t, u)), "http://s/")
	if resp.StatusCode != 200 || body != "final" {
		t.Fatalf("%d %q, want the final answer after 1xx", resp.StatusCode, body)
	}
}

func TestUpstreamCutBodyIsCutForClient(t *testing.T) {
	u := newRawUpstream(t, func(_, _ int, _ *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("a", 40000))
		return false
	})
	resp, err := client(rawProxy(t, u)).Get("http://s/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("read %d bytes without error; a cut upstream body must be cut for the client", len(b))
	}
}

// The upstream closes a kept-alive connection when the next request
// arrives, without answering: an idempotent request is sent again on a new
// connection; a POST is not (502), and the upstream saw it once.
func TestUpstreamStaleKeepAliveRetry(t *testing.T) {
	u := newRawUpstream(t, func(conn, n int, req *http.Request, c net.Conn) bool {
		if n == 2 {
			return false // close without answering the second request on a connection
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(req.Method), req.Method)
		return true
	})
	c := client(rawProxy(t, u))
	get(t, c, "http://s/1") // conn 1, now idle in the pool
	if resp, body := get(t, c, "http://s/2"); resp.StatusCode != 200 || body != "GET" {
		t.Fatalf("GET on a connection the upstream dropped: %d %q; want a transparent retry", resp.StatusCode, body)
	}
	if n := u.conns.Load(); n != 2 {
		t.Fatalf("%d upstream connections, want 2", n)
	}
	// Connection 2 served one request and is idle: the POST goes on it
	// and is dropped after it was sent.
	resp, err := c.Post("http://s/order", "text/plain", strings.NewReader("order=1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST: %d, want 502 (never sent twice)", resp.StatusCode)
	}
	posts := 0
	for _, r := range u.received() {
		if r == "POST /order" {
			posts++
		}
	}
	if posts != 1 {
		t.Fatalf("upstream received the POST %d times, want exactly 1 (%v)", posts, u.received())
	}
}

// The upstream closes an idle kept-alive connection before the next
// request: a POST is not lost, it goes on a new connection (the pooled one
// is checked before a non-idempotent request is sent on it).
func TestUpstreamIdleCloseBeforePost(t *testing.T) {
	u := newRawUpstream(t, func(_, _ int, req *http.Request, c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(req.Method), req.Method)
		return false // close right after answering (no Connection: close said)
	})
	c := client(rawProxy(t, u))
	get(t, c, "http://s/1")
	// Wait until the proxy's pooled connection has seen the close.
	time.Sleep(50 * time.Millisecond) // the upstream's FIN in flight on loopback; not synchronisation of the server under test
	resp, err := c.Post("http://s/order", "text/plain", strings.NewReader("order=1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "POST" {
		t.Fatalf("POST after the upstream closed the idle connection: %d %q", resp.StatusCode, b)
	}
	if got := u.received(); len(got) != 2 || got[1] != "POST /order" {
		t.Fatalf("upstream received %v", got)
	}
}

func TestUpstreamRequestFraming(t *testing.T) {
	n := newNode(t)
	// A chunked client body is re-framed (chunked upstream); a known
	// length is sent as Content-Length; Expect is answered by the edge.
	type seen struct {
		te, cl, expect, body string
	}
	got := make(chan seen, 4)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{strings.Join(r.TransferEncoding, ","), r.Header.Get("Content-Length"), r.Header.Get("Expect"), string(b)}
	})
	site := n.proxySite("s", []string{"s"}, be.addr())
	site.Routes[0].StreamRequestBody = true // re-framing is what streaming does; buffered bodies go with a length
	_, addr := n.start(Config{Sites: []Site{site}}, Options{})
	resp, _ := raw(t, addr, "POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("chunked POST: %d", resp.StatusCode)
	}
	if s := <-got; s.te != "chunked" || s.body != "abcde" {
		t.Fatalf("chunked body upstream: %+v", s)
	}
	// With Expect, the edge answers 100 itself before the final answer.
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhello")
	br := bufio.NewReader(conn)
	var codes []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after %v: %v", codes, err)
		}
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode >= 200 {
			break
		}
	}
	if codes[len(codes)-1] != 200 {
		t.Fatalf("POST with length and Expect: %v", codes)
	}
	if s := <-got; s.cl != "5" || s.te != "" || s.expect != "" || s.body != "hello" {
		t.Fatalf("sized body upstream: %+v", s)
	}
}

// A client that goes away between two reads of the upstream's body (the
// edge busy writing to it) aborts the exchange even when the next read
// refreshes the read timeout's deadline: the refresh once moved the
// deadline that the cancellation had set in the past back into the
// future, and the edge waited for the upstream's read timeout.
func TestUpstreamAbortSurvivesDeadlineRefresh(t *testing.T) {
	u := newRawUpstream(t, func(_, _ int, _ *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
		io.Copy(io.Discard, c) // idle until the edge closes the connection
		return false
	})
	const readTimeout = 3 * time.Second // deadlines refreshed every 300 ms
	cl := &h1Client{addr: u.addr(), dial: (&net.Dialer{}).DialContext, connectTimeout: 5 * time.Second, readTimeout: readTimeout, maxIdle: 1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr := &proxyRequest{ctx: ctx, r: httptest.NewRequest("GET", "http://s/stream", nil), method: "GET", host: "s"}
	resp, err := cl.roundTrip(pr, "s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("%q %v", buf, err)
	}
	cancel()
	// Time passes (not a synchronisation: the next read must refresh the
	// deadline, and if the cancellation's hook has not run yet the test
	// passes whatever the code).
	time.Sleep(readTimeout/10 + 100*time.Millisecond)
	start := time.Now()
	if _, err := resp.Body.Read(buf); err == nil {
		t.Fatal("read after the client went away succeeded")
	}
	if d := time.Since(start); d > readTimeout/2 {
		t.Fatalf("the aborted read returned after %v: the deadline refresh undid the cancellation", d)
	}
}

// An upstream answer whose body length two readers could disagree on (a
// length and a transfer coding, a coding on HTTP/1.0) is refused with 502,
// as nginx does: net/http's ReadResponse dropped one of the two, and the
// next answer on the connection could start inside this one's body.
func TestUpstreamAmbiguousFramingRefused(t *testing.T) {
	for _, head := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
	} {
		u := newRawUpstream(t, func(_, _ int, _ *http.Request, c net.Conn) bool {
			io.WriteString(c, head)
			return false
		})
		resp, body := get(t, client(rawProxy(t, u)), "http://s/x")
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%q: %d %q, want 502", head, resp.StatusCode, body)
		}
	}
}

// A response head longer than the client's read buffer, with its body in
// the same write, arrives whole; one over the bound (1 MiB) is refused.
func TestUpstreamLongResponseHead(t *testing.T) {
	big := strings.Repeat("v", 20<<10)
	u := newRawUpstream(t, func(_, n int, _ *http.Request, c net.Conn) bool {
		if n == 1 {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+big+"\r\nContent-Length: 5\r\n\r\nhello")
			return true
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Huge: "+strings.Repeat("h", 1<<20)+"\r\nContent-Length: 0\r\n\r\n")
		return false
	})
	c := client(rawProxy(t, u))
	resp, body := get(t, c, "http://s/big")
	if resp.StatusCode != 200 || body != "hello" || resp.Header.Get("X-Big") != big {
		t.Fatalf("long head: %d %q, X-Big %d bytes", resp.StatusCode, body, len(resp.Header.Get("X-Big")))
	}
	if resp, _ := get(t, c, "http://s/huge"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("a head over 1 MiB: %d, want 502", resp.StatusCode)
	}
}
