package h1

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Fields a handler serialised itself (a static file's) are written after
// the header map's, once, with the Content-Length given; the next request
// on the connection starts without them.
func TestPresetFields(t *testing.T) {
	s := newServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Map", "m")
		if r.URL.Path == "/preset" {
			w.(interface{ PresetFields([]byte, int64) }).PresetFields([]byte("Etag: \"e\"\r\nContent-Type: text/css\r\n"), 5)
		}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			io.WriteString(w, "hello")
		}
	})})
	c, br := dial(t, serve(t, s))
	for _, tc := range []struct{ method, path string }{{"GET", "/preset"}, {"HEAD", "/preset"}, {"GET", "/plain"}} {
		if _, err := io.WriteString(c, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, body := readResp(t, br, tc.method)
		h := resp.Header
		if tc.path == "/plain" {
			if len(h["Etag"]) != 0 || h.Get("Content-Type") != "text/plain; charset=utf-8" || body != "hello" {
				t.Fatalf("%s %s after a preset answer: %v %q", tc.method, tc.path, h, body)
			}
			continue
		}
		if resp.StatusCode != 200 || resp.ContentLength != 5 || strings.Join(h["Etag"], ",") != `"e"` ||
			strings.Join(h["Content-Type"], ",") != "text/css" || h.Get("X-Map") != "m" {
			t.Fatalf("%s %s: %d, length %d, %v", tc.method, tc.path, resp.StatusCode, resp.ContentLength, h)
		}
		if want := map[string]string{"GET": "hello", "HEAD": ""}[tc.method]; body != want {
			t.Fatalf("%s %s: body %q, want %q", tc.method, tc.path, body, want)
		}
	}
}

// headBodyConn is a connection that writes head and body together
// (HeadBodyWriter), counting the calls.
type headBodyConn struct {
	*net.TCPConn
	calls *atomic.Int32
}

func (c headBodyConn) WriteHeadBody(head, body []byte) (int, error) {
	c.calls.Add(1)
	if _, err := c.Write(append(append([]byte(nil), head...), body...)); err != nil {
		return 0, err
	}
	return len(body), nil
}

type headBodyListener struct {
	net.Listener
	calls atomic.Int32
}

func (l *headBodyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return headBodyConn{c.(*net.TCPConn), &l.calls}, nil
}

// A body written whole in one Write with its length declared goes with
// the head in one call of the connection's WriteHeadBody, unless an
// answer before it still sits in the write buffer (pipelined requests:
// the answers stay in order), the request is HEAD or the length is
// unknown.
func TestWholeBodyWithHead(t *testing.T) {
	s := newServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := "body of " + r.URL.Path
		if r.URL.Path != "/unknown" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	})})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl := &headBodyListener{Listener: ln}
	done := make(chan error, 1)
	go func() { done <- s.Serve(hl) }()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	c, br := dial(t, ln.Addr().String())
	send := func(reqs ...string) {
		var b strings.Builder
		for _, r := range reqs {
			b.WriteString(r + " HTTP/1.1\r\nHost: x\r\n\r\n")
		}
		if _, err := io.WriteString(c, b.String()); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(method, path string, calls int32) {
		t.Helper()
		resp, body := readResp(t, br, method)
		want := "body of " + path
		if method == "HEAD" {
			want = ""
		}
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("%s %s: %d %q, want %q", method, path, resp.StatusCode, body, want)
		}
		if n := hl.calls.Load(); n != calls {
			t.Fatalf("after %s %s: %d WriteHeadBody calls, want %d", method, path, n, calls)
		}
	}
	send("GET /a")
	expect("GET", "/a", 1)
	send("HEAD /b")
	expect("HEAD", "/b", 1)
	// The first answer (unknown length, staged) waits in the buffer while
	// the second request is read: the second goes through the buffer too.
	send("GET /unknown", "GET /c")
	expect("GET", "/unknown", 1)
	expect("GET", "/c", 1)
	send("GET /d")
	expect("GET", "/d", 2)
}

// countRelease counts its releases; vals backs a header field's values,
// and a release overwrites them, as the proxy's recycling of an upstream
// head does.
type countRelease struct {
	n    atomic.Int32
	vals []string
}

func (r *countRelease) Release() {
	r.n.Add(1)
	for i := range r.vals {
		r.vals[i] = "released"
	}
}

// ReleaseAfter runs each release once, when the response is complete: a
// head the handler left uncommitted is written before it (the proxy's
// recycled upstream head backs such a head's fields), and a handler that
// panicked or hijacked still gets its releases; beyond the few a response
// holds, ReleaseAfter says no.
func TestReleaseAfter(t *testing.T) {
	var normal, panicked, hijacked countRelease
	var extra [5]countRelease
	normal.vals = []string{"yes"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rr, ok := w.(ResponseReleaser)
		if !ok {
			t.Error("the response writer is no ResponseReleaser")
			return
		}
		switch r.URL.Path {
		case "/normal":
			w.Header()["X-Late"] = normal.vals // committed after the handler returns
			rr.ReleaseAfter(&normal)
		case "/panic":
			rr.ReleaseAfter(&panicked)
			panic(http.ErrAbortHandler)
		case "/hijack":
			rr.ReleaseAfter(&hijacked)
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
		case "/many":
			for i := range extra {
				if got := rr.ReleaseAfter(&extra[i]); got != (i < maxAfter) {
					t.Errorf("ReleaseAfter #%d: %v", i+1, got)
				}
			}
		}
	})
	addr := serve(t, newServer(t, Config{Handler: h}))
	for _, path := range []string{"/normal", "/panic", "/hijack", "/many"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if path == "/normal" {
			if err != nil {
				t.Fatal(err)
			}
			if v := resp.Header.Get("X-Late"); v != "yes" {
				t.Fatalf("/normal: X-Late %q: released before the head was written", v)
			}
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (normal.n.Load() == 0 || panicked.n.Load() == 0 || hijacked.n.Load() == 0 || extra[maxAfter-1].n.Load() == 0) {
		time.Sleep(5 * time.Millisecond)
	}
	for name, r := range map[string]*countRelease{"normal": &normal, "panic": &panicked, "hijack": &hijacked} {
		if got := r.n.Load(); got != 1 {
			t.Errorf("%s: %d releases, want 1", name, got)
		}
	}
	for i := range extra {
		want := int32(0)
		if i < maxAfter {
			want = 1
		}
		if got := extra[i].n.Load(); got != want {
			t.Errorf("release #%d of /many: %d, want %d", i+1, got, want)
		}
	}
}
