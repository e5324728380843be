package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// serve runs a Server with h on 127.0.0.1:0 and returns its address.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
		}
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// newServer builds a Server for a test: the fields cfg leaves zero get
// the test's values (the plan's defaults in the product).
func newServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = cfg.ReadHeaderTimeout
	}
	if cfg.MaxHeadBytes == 0 {
		cfg.MaxHeadBytes = 1<<20 + 4096
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// New refuses what the plan always sets (plan/defaults.go is the one
// table): a zero or negative bound, and no handler.
func TestZeroValuesRefused(t *testing.T) {
	full := Config{Handler: http.HandlerFunc(hello), ReadHeaderTimeout: time.Second, IdleTimeout: time.Second, MaxHeadBytes: 4096}
	if _, err := New(full); err != nil {
		t.Fatalf("a full config refused: %v", err)
	}
	for field, mutate := range map[string]func(c *Config, v int){
		"read_header_timeout": func(c *Config, v int) { c.ReadHeaderTimeout = time.Duration(v) },
		"idle_timeout":        func(c *Config, v int) { c.IdleTimeout = time.Duration(v) },
		"max_header_bytes":    func(c *Config, v int) { c.MaxHeadBytes = v },
	} {
		for _, v := range []int{0, -1} {
			c := full
			mutate(&c, v)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), field) {
				t.Errorf("%s = %d: %v, want an error naming %s", field, v, err, field)
			}
		}
	}
	c := full
	c.Handler = nil
	if _, err := New(c); err == nil {
		t.Error("a server without a handler accepted")
	}
}

func dial(t testing.TB, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readResp(t testing.TB, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s %s host=%s", r.Method, r.URL.Path, r.URL.RawQuery, r.Host)
}

func TestKeepAliveAndPipelining(t *testing.T) {
	addr := serve(t, newServer(t, Config{Handler: http.HandlerFunc(hello)}))
	c, br := dial(t, addr)
	// Two requests in one write (pipelined), then a third after.
	io.WriteString(c, "GET /a?x=1 HTTP/1.1\r\nHost: example.org\r\n\r\nGET /b HTTP/1.1\r\nHost: example.org\r\n\r\n")
	for _, want := range []string{"GET /a x=1 host=example.org", "GET /b  host=example.org"} {
		resp, body := readResp(t, br, "GET")
		if resp.StatusCode != 200 || body != want || resp.ContentLength != int64(len(want)) {
			t.Fatalf("got %d %q (length %d), want 200 %q", resp.StatusCode, body, resp.ContentLength, want)
		}
	}
	io.WriteString(c, "HEAD /c HTTP/1.1\r\nHost: example.org\r\n\r\n")
	resp, body := readResp(t, br, "HEAD")
	if resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
	}
	io.WriteString(c, "GET /d HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n")
	resp, _ = readResp(t, br, "GET")
	if !resp.Close {
		t.Fatal("Connection: close request: the response does not close")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close: %v, want EOF", err)
	}
}

func TestNetHTTPClient(t *testing.T) {
	addr := serve(t, newServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", fmt.Sprint(len(b), " ", r.ContentLength, " ", r.TransferEncoding))
		if r.URL.Path == "/big" {
			w.Write([]byte(strings.Repeat("x", 10000)))
			return
		}
		w.Write(b)
	})}))
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer cl.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		resp, err := cl.Post("http://"+addr+"/echo", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello" || resp.Header.Get("X-Len") != "5 5 []" {
			t.Fatalf("echo: %q %q", b, resp.Header.Get("X-Len"))
		}
	}
	// Chunked request body, chunked response (larger than the stage).
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte("abc")); pw.Write([]byte("def")); pw.Close() }()
	resp, err := cl.Post("http://"+addr+"/big", "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(b) != 10000 || resp.Header.Get("X-Len") != "6 -1 [chunked]" || len(resp.TransferEncoding) != 1 {
		t.Fatalf("big: %d bytes, %q, TE %v", len(b), resp.Header.Get("X-Len"), resp.TransferEncoding)
	}
}

func TestRefusals(t *testing.T) {
	addr := serve(t, newServer(t, Config{Handler: http.HandlerFunc(hello), MaxHeadBytes: 2048}))
	for _, tt := range []struct {
		req  string
		code int
	}{
		{"GET / HTTP/1.1\r\n\r\n", 400}, // no Host
		{"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		{"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 3000) + "\r\n\r\n", 431},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 5000) + "\r\n\r\n", 431},
		{"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	} {
		c, br := dial(t, addr)
		io.WriteString(c, tt.req)
		resp, _ := readResp(t, br, "GET")
		if resp.StatusCode != tt.code {
			t.Errorf("%q: %d, want %d", tt.req, resp.StatusCode, tt.code)
		}
		c.Close()
	}
}

func TestExpectContinue(t *testing.T) {
	addr := serve(t, newServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})}))
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
	line, _ := br.ReadString('\n')
	if line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q, want 100 Continue", line)
	}
	br.ReadString('\n')
	io.WriteString(c, "ok")
	if _, body := readResp(t, br, "POST"); body != "ok" {
		t.Fatalf("body %q", body)
	}
}

func TestIdleConnectionsAreParked(t *testing.T) {
	s := newServer(t, Config{Handler: http.HandlerFunc(hello)})
	addr := serve(t, s)
	before := runtime.NumGoroutine()
	const n = 50
	for i := 0; i < n; i++ {
		c, br := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		readResp(t, br, "GET")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Parked.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d parked, want %d", s.Stats().Parked.Load(), n)
		}
		runtime.Gosched()
	}
	if g := runtime.NumGoroutine(); g > before+5 {
		t.Fatalf("%d goroutines with %d idle connections (%d before): idle connections hold goroutines", g, n, before)
	}
}

func TestIdleTimeoutClosesParked(t *testing.T) {
	s := newServer(t, Config{Handler: http.HandlerFunc(hello), IdleTimeout: 50 * time.Millisecond, ReadHeaderTimeout: time.Second})
	addr := serve(t, s)
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readResp(t, br, "GET")
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("closed after %v, the idle timeout is 50ms", d)
	}
}

func TestHeaderTimeout(t *testing.T) {
	s := newServer(t, Config{Handler: http.HandlerFunc(hello), ReadHeaderTimeout: 100 * time.Millisecond})
	addr := serve(t, s)
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost:") // never finished
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("slow head: %v, want EOF", err)
	}
	c2, br2 := dial(t, addr) // connects, sends nothing
	_ = c2
	if _, err := br2.ReadByte(); err != io.EOF {
		t.Fatalf("silent connection: %v, want EOF", err)
	}
}

func TestClientGoneCancelsContext(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{})
	addr := serve(t, newServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	})}))
	c, _ := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the request context was not cancelled when the client went away")
	}
}

// waitCancelled serves with a handler that (after reading the body, when
// readBody) waits for its request's context, and returns the channel
// closed when it is cancelled.
func waitCancelled(t *testing.T, readBody bool) (s *Server, addr string, started, cancelled chan struct{}) {
	started, cancelled = make(chan struct{}), make(chan struct{})
	s = newServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if readBody {
			io.Copy(io.Discard, r.Body)
		}
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	})})
	return s, serve(t, s), started, cancelled
}

// sendAndHangUp sends msg and the FIN in one segment (TCP_CORK holds the
// bytes until the close), so that the server's poller reports the data and
// the hang-up in one readiness edge.
func sendAndHangUp(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		if err := syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, 1); err != nil {
			t.Error(err)
		}
	})
	io.WriteString(c, msg)
	c.Close()
}

func expectCancelled(t *testing.T, cancelled chan struct{}, what string) {
	t.Helper()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the request context was not cancelled: " + what)
	}
}

// A request and its client's hang-up in one readiness edge, on a parked
// connection: the hang-up is reported before the request is in flight, and
// no edge comes after it (the defect: a streamed answer from an idle
// upstream waited for the upstream's 60 s read timeout).
func TestHangUpWithRequestCancelsContext(t *testing.T) {
	s, addr, _, cancelled := waitCancelled(t, false)
	c, _ := dial(t, addr)
	testutil.Eventually(t, 5*time.Second, "connection parked", func() bool { return s.Stats().Parked.Load() == 1 })
	sendAndHangUp(t, c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	expectCancelled(t, cancelled, "request and hang-up came together")
}

// A hang-up after a body the handler has not read yet: the request is not
// cancelled while its bytes are pending, and is once the body is read.
func TestHangUpAfterBodyCancelsOnceBodyRead(t *testing.T) {
	s, addr, started, cancelled := waitCancelled(t, true)
	c, _ := dial(t, addr)
	testutil.Eventually(t, 5*time.Second, "connection parked", func() bool { return s.Stats().Parked.Load() == 1 })
	sendAndHangUp(t, c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
	<-started
	expectCancelled(t, cancelled, "hang-up after a body")
}

// Close cancels the requests in flight, as net/http's does (its background
// read fails on the closed connection): a handler waiting on something
// else than the client must learn it.
func TestCloseCancelsInFlight(t *testing.T) {
	s, addr, started, cancelled := waitCancelled(t, false)
	c, _ := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	s.Close()
	expectCancelled(t, cancelled, "server closed")
}

// A client that hangs up while Shutdown drains: its request is cancelled
// and the drain ends, instead of waiting for its deadline (the poller once
// closed when Shutdown began).
func TestShutdownSeesHangUp(t *testing.T) {
	s, addr, started, cancelled := waitCancelled(t, false)
	c, _ := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	testutil.Eventually(t, 5*time.Second, "listener closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	c.Close()
	expectCancelled(t, cancelled, "client hung up during Shutdown")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestHijackAndFlush(t *testing.T) {
	addr := serve(t, newServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Write([]byte("first"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		conn.Write([]byte("echo " + line))
	})}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("streamed %q, %v", buf, err)
	}
	c.Close()

	c, br = dial(t, addr)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\n\r\nhi\n")
	if line, _ := br.ReadString('\n'); line != "HTTP/1.1 101 Switching Protocols\r\n" {
		t.Fatalf("got %q", line)
	}
	br.ReadString('\n')
	if line, _ := br.ReadString('\n'); line != "echo hi\n" {
		t.Fatalf("hijacked echo %q", line)
	}
}

func TestShutdownWaitsForRequests(t *testing.T) {
	release := make(chan struct{})
	var served atomic.Int32
	s := newServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		<-release
		w.Write([]byte("done"))
	})})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go s.Serve(ln)
	c, br := dial(t, ln.Addr().String())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for served.Load() == 0 {
		runtime.Gosched()
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	resp, body := readResp(t, br, "GET")
	if body != "done" || !resp.Close {
		t.Fatalf("in-flight request: %q close=%v", body, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPanicClosesConnection(t *testing.T) {
	addr := serve(t, newServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		w.Write([]byte("abc"))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})}))
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut body read: %v, want unexpected EOF", err)
	}
}

// BenchmarkGet measures one keep-alive GET through the whole loop; the
// allocations are the server's per-request cost (the client reads raw
// bytes). BenchmarkGetNetHTTP is the same through net/http's server.
func BenchmarkGet(b *testing.B) {
	s := newServer(b, Config{Handler: benchHandler})
	benchGet(b, serve(b, s))
}

func BenchmarkGetNetHTTP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: benchHandler}
	go srv.Serve(ln)
	defer srv.Close()
	benchGet(b, ln.Addr().String())
}

var benchBody = []byte(strings.Repeat("x", 1024))

var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = []string{"text/plain"}
	w.Write(benchBody)
})

func benchGet(b *testing.B, addr string) {
	body := benchBody
	c, br := dial(b, addr)
	req := []byte("GET /index.html?q=1 HTTP/1.1\r\nHost: example.org\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	// One response read with net/http gives its length; then the client
	// reads raw bytes, so that the allocations counted are the server's.
	c.Write(req)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	var head strings.Builder
	resp.Write(&head)
	_ = c.SetDeadline(time.Time{})
	buf := make([]byte, 64<<10)
	want := -1
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(req)
		got := 0
		for want < 0 || got < want {
			n, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
			if want < 0 {
				if i := strings.Index(string(buf[:got]), "\r\n\r\n"); i >= 0 {
					want = i + 4 + len(body)
				}
			}
		}
	}
}

// A head read whole from the buffer sets no deadline, so the loop must
// still clear one a handler left (http.ResponseController), or the next
// request on the connection would fail when it expires; and a head that
// comes in parts still has the header timeout.
func TestHandlerDeadlineDoesNotOutliveRequest(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/short" {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		}
		io.WriteString(w, "ok")
	})
	s := newServer(t, Config{Handler: h, ReadHeaderTimeout: 300 * time.Millisecond})
	addr := serve(t, s)
	c, br := dial(t, addr)
	io.WriteString(c, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("first: %d %q", resp.StatusCode, body)
	}
	time.Sleep(100 * time.Millisecond) // the handler's deadline has passed
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the handler's deadline: %d %q", resp.StatusCode, body)
	}
	// In two parts, the second within the header timeout: served.
	io.WriteString(c, "GET /parts HTTP/1.1\r\n")
	time.Sleep(50 * time.Millisecond)
	io.WriteString(c, "Host: x\r\n\r\n")
	if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("head in parts: %d %q", resp.StatusCode, body)
	}
	// A head left unfinished on a kept-alive connection: closed at the
	// header timeout.
	io.WriteString(c, "GET /never HTTP/1.1\r\nHost:")
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("unfinished head: %v, want EOF", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("unfinished head closed after %v", d)
	}
}

// A request read whole by a short read leaves the socket drained: the
// connection is parked without another read (nginx's rev->ready = 0), and
// the next request's readiness edge must still wake it, whether it comes
// at once, after a pause, or in pieces.
func TestDrainedConnectionParksAndWakes(t *testing.T) {
	s := newServer(t, Config{Handler: http.HandlerFunc(hello)})
	addr := serve(t, s)
	c, br := dial(t, addr)
	for i, pause := range []time.Duration{0, 0, 20 * time.Millisecond, 0, 50 * time.Millisecond} {
		time.Sleep(pause)
		path := fmt.Sprintf("/r%d", i)
		if i == 3 { // the head in two writes: the first read is short and incomplete
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHo")
			time.Sleep(20 * time.Millisecond)
			io.WriteString(c, "st: a\r\n\r\n")
		} else {
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		}
		resp, body := readResp(t, br, "GET")
		if want := "GET " + path + "  host=a"; resp.StatusCode != 200 || body != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
		}
		testutil.Eventually(t, 5*time.Second, "connection parked after a response", func() bool { return s.Stats().Parked.Load() == 1 })
	}
}

// A request and the client's FIN in one segment: the hang-up edge came
// before the request was read, and none comes after it, so the drained
// connection must not be parked on readiness that will never be reported;
// the server closes it at once, not after the idle timeout.
func TestHangUpWithDrainedRequestCloses(t *testing.T) {
	s := newServer(t, Config{Handler: http.HandlerFunc(hello), IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute})
	addr := serve(t, s)
	c, br := dial(t, addr)
	testutil.Eventually(t, 5*time.Second, "connection parked", func() bool { return s.Stats().Parked.Load() == 1 })
	tc := c.(*net.TCPConn)
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		if err := syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, 1); err != nil {
			t.Error(err)
		}
	})
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("the server did not close a half-closed connection after its request: %v", err)
	}
}
