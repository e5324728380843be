package httpedge

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// Every connection-level field, every hidden response field and every
// field the client's Connection names stays on its side of the proxy, in
// both directions, while the others pass (hopField, hiddenResponseField,
// outSkip are switches on the canonical name).
func TestHopAndHiddenFieldsStayOnTheirSide(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan http.Header, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		seen <- req.Header
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"+
			"Connection: X-Private-Up, keep-alive\r\nX-Private-Up: secret\r\nKeep-Alive: timeout=5\r\n"+
			"Proxy-Connection: keep-alive\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\n"+
			"Server: Apache/2.4.62\r\nX-Pad: avoid browser bug\r\nX-Accel-Expires: 60\r\nX-Accel-Redirect: /internal\r\n"+
			"X-Accel-Limit-Rate: 1\r\nX-Accel-Buffering: no\r\nX-Accel-Charset: utf-8\r\n"+
			"X-Kept: yes\r\nX-Accel: kept\r\nServers: kept\r\n\r\nok")
	}()
	n := newNode(t)
	_, addr := n.start(Config{Sites: []Site{n.proxySite("s", []string{"s"}, ln.Addr().String())}}, Options{})
	resp, body := raw(t, addr, "GET / HTTP/1.1\r\nHost: s\r\n"+
		"Connection: X-Private, keep-alive\r\nX-Private: secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\nUpgrade: h2c\r\nTe: gzip\r\nTrailer: X-T\r\n"+
		"X-Real-Ip: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: spoofed\r\n"+
		"X-Kept: yes\r\nTes: kept\r\nX-Forwarded: kept\r\n\r\n")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	up := <-seen
	for _, k := range []string{"X-Private", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Upgrade", "Te", "Trailer"} {
		if v, ok := up[k]; ok {
			t.Errorf("upstream got %s: %q", k, v)
		}
	}
	for k, want := range map[string]string{"X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "s",
		"X-Kept": "yes", "Tes": "kept", "X-Forwarded": "kept", "X-Forwarded-For": "127.0.0.1"} {
		if got := strings.Join(up[k], ","); got != want {
			t.Errorf("upstream %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"X-Private-Up", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Upgrade", "Server",
		"X-Pad", "X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate", "X-Accel-Buffering", "X-Accel-Charset"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("client got %s: %q", k, v)
		}
	}
	for _, k := range []string{"X-Kept", "X-Accel", "Servers"} {
		if resp.Header.Get(k) == "" {
			t.Errorf("client did not get %s", k)
		}
	}
}
