package httpedge

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

func dialFromAddr(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// served reports whether a GET on c is answered within wait.
func served(c net.Conn, wait time.Duration) bool {
	c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: s\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	io.ReadAll(resp.Body)
	return resp.StatusCode == 200
}

// TestHTTPConnectionCaps: an HTTP listener bounds its connections per
// client (over: reset) and in all (over: wait in the backlog until one
// closes), so that idle keep-alive connections cannot take every
// descriptor (issue 9 finding 4).
func TestHTTPConnectionCaps(t *testing.T) {
	be := newBackend(t, textHandler("ok"))
	nd := newNode(t)
	for _, netHTTP := range []bool{false, true} {
		name := "h1"
		if netHTTP {
			name = "net/http"
		}
		t.Run(name, func(t *testing.T) {
			cfg := Config{Sites: []Site{nd.proxySite("s", []string{"s"}, be.addr())}, Limits: Limits{MaxConns: 5, MaxConnsPerClient: 3}}
			srv, addr := nd.start(cfg, Options{NetHTTP1: netHTTP})
			// start's readiness probe holds a slot until the server sees it close.
			testutil.Eventually(t, 5*time.Second, "the probe connection released", func() bool {
				srv.gate.mu.Lock()
				defer srv.gate.mu.Unlock()
				return len(srv.gate.clients) == 0
			})
			var first []net.Conn
			for range 3 {
				c := dialFromAddr(t, "127.0.0.1", addr)
				if !served(c, 5*time.Second) {
					t.Fatal("a connection within the caps was not served")
				}
				first = append(first, c)
			}
			// The reset may come before the dial returns (loopback is quick).
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 5 * time.Second}
			if c, err := d.Dial("tcp", addr); err == nil {
				if served(c, 5*time.Second) {
					t.Fatal("a fourth connection of one client was served; want it reset")
				}
				c.Close()
			}
			if n := srv.gate.refused.Load(); n != 1 {
				t.Fatalf("%d refusals counted, want 1", n)
			}
			for _, src := range []string{"127.0.0.2", "127.0.0.3"} {
				if !served(dialFromAddr(t, src, addr), 5*time.Second) {
					t.Fatalf("client %s not served", src)
				}
			}
			waiting := dialFromAddr(t, "127.0.0.4", addr)
			if served(waiting, 300*time.Millisecond) {
				t.Fatal("a sixth connection was served over max_conns 5")
			}
			first[0].Close()
			// The waiting connection's request is already in its socket.
			waiting.SetDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(waiting), nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("the waiting connection after a slot freed: %v", err)
			}
		})
	}
}
