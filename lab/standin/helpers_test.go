package standin

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// start runs a stand-in on a fresh loopback listener and returns it with its
// address; the test's cleanup closes it and checks Serve returned nil.
func start(t *testing.T, protocol string, info Info, opts Options) (Server, string) {
	t.Helper()
	srv, err := New(protocol, info, opts)
	if err != nil {
		t.Fatalf("New(%q, %+v): %v", protocol, info, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after Close, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return srv, ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// lineConn is a text protocol client for tests.
type lineConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func newLineConn(t *testing.T, addr string) *lineConn {
	c := dial(t, addr)
	return &lineConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (l *lineConn) send(s string) {
	l.t.Helper()
	if _, err := l.c.Write([]byte(s)); err != nil {
		l.t.Fatalf("writing %q: %v", s, err)
	}
}

func (l *lineConn) line() string {
	l.t.Helper()
	s, err := l.br.ReadString('\n')
	if err != nil {
		l.t.Fatalf("reading a line (got %q): %v", s, err)
	}
	return strings.TrimRight(s, "\r\n")
}

// expectClosed reads until EOF (or a reset) and fails if the server keeps
// the connection open.
func (l *lineConn) expectClosed() {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := l.br.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			l.t.Fatal("connection still open")
		}
		return
	}
}

var testInfo = Info{Service: "svc", Node: "node1", Title: "Test service"}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
