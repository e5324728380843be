package httpedge

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/internal/testutil"
)

func writeCert(t *testing.T, dir string, names ...string) (string, string) {
	t.Helper()
	cf, kf, err := certs.WriteSelfSigned(dir, certs.SelfSignedOptions{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	return cf, kf
}

func tlsDial(t *testing.T, addr, sni string) (*tls.Conn, error) {
	t.Helper()
	return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
}

func TestTLSSitesBySNI(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	offCert, offKey := writeCert(t, filepath.Join(dir, "off"), "openfoodfacts.org", "*.openfoodfacts.org")
	imgCert, imgKey := writeCert(t, filepath.Join(dir, "img"), "images.openfoodfacts.org")
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Header.Get("X-Forwarded-Proto"), r.Host)
	})
	off := n.proxySite("off", []string{"openfoodfacts.org", "*.openfoodfacts.org"}, be.addr())
	off.Certificate = n.cert(offCert, offKey)
	img := n.proxySite("img", []string{"images.openfoodfacts.org"}, be.addr())
	img.Certificate = n.cert(imgCert, imgKey)
	_, addr := n.start(Config{TLS: true, Sites: []Site{off, img}}, Options{})

	tests := []struct{ sni, wantName string }{
		{"world.openfoodfacts.org", "openfoodfacts.org"},
		{"images.openfoodfacts.org", "images.openfoodfacts.org"},
		{"unknown.example.com", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run("sni "+tt.sni, func(t *testing.T) {
			c, err := tlsDial(t, addr, tt.sni)
			if tt.wantName == "" {
				if err == nil {
					names := c.ConnectionState().PeerCertificates[0].DNSNames
					c.Close()
					t.Fatalf("handshake for unknown SNI succeeded and showed %v", names)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			st := c.ConnectionState()
			if st.PeerCertificates[0].DNSNames[0] != tt.wantName || st.NegotiatedProtocol != "h2" || st.Version < tls.VersionTLS12 {
				t.Fatalf("cert %v proto %q version %x", st.PeerCertificates[0].DNSNames, st.NegotiatedProtocol, st.Version)
			}
		})
	}
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "images.openfoodfacts.org", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
		if err == nil {
			c.Close()
			t.Fatal("TLS 1.1 accepted")
		}
	})
	for _, proto := range []string{"h2", "http/1.1"} {
		t.Run("request over "+proto, func(t *testing.T) {
			tr := &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				},
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, NextProtos: []string{proto}},
				ForceAttemptHTTP2: proto == "h2",
			}
			defer tr.CloseIdleConnections()
			resp, body := get(t, &http.Client{Transport: tr}, "https://world.openfoodfacts.org/")
			if body != "https world.openfoodfacts.org" || (proto == "h2") != (resp.ProtoMajor == 2) {
				t.Fatalf("%s: %q", resp.Proto, body)
			}
		})
	}
	t.Run("CL+TE refused over TLS", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "images.openfoodfacts.org", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: images.openfoodfacts.org\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("%v %v", resp, err)
		}
	})
}

func TestTLSDefaultSiteCertificate(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	cf, kf := writeCert(t, filepath.Join(dir, "d"), "default.example.org")
	be := newBackend(t, textHandler("d"))
	d := n.proxySite("d", []string{"default.example.org"}, be.addr())
	d.Certificate, d.Default = n.cert(cf, kf), true
	_, addr := n.start(Config{TLS: true, Sites: []Site{d}}, Options{})
	c, err := tlsDial(t, addr, "unknown.example.com")
	if err != nil {
		t.Fatalf("explicit default site: handshake refused: %v", err)
	}
	defer c.Close()
	if got := c.ConnectionState().PeerCertificates[0].DNSNames[0]; got != "default.example.org" {
		t.Fatalf("cert %q", got)
	}
}

func TestTLSCertificateReload(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	cf, kf := writeCert(t, dir, "a.example.org")
	be := newBackend(t, textHandler("x"))
	s := n.proxySite("a", []string{"a.example.org", "b.example.org"}, be.addr())
	s.Certificate = n.cert(cf, kf)
	_, addr := n.start(Config{TLS: true, Sites: []Site{s}}, Options{})
	serial := func() string {
		c, err := tlsDial(t, addr, "a.example.org")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	writeCert(t, dir, "a.example.org", "b.example.org") // certbot renewal
	// The store stats the files at most every 5 s.
	testutil.Eventually(t, 15*time.Second, "renewed certificate served", func() bool { return serial() != first })
}

func TestTLSUpstream(t *testing.T) {
	n := newNode(t)
	be := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls upstream host=%s", r.Host)
	}))
	defer be.Close()
	pool := x509.NewCertPool()
	pool.AddCert(be.Certificate())
	up := n.up(Upstream{Name: "off1", Host: "cache.openfoodfacts.org", Servers: []UpstreamServer{{Addr: strings.TrimPrefix(be.URL, "https://"), TLS: true, ServerName: "example.com"}}})
	_, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, Options{RootCAs: pool})
	if _, body := get(t, client(addr), "http://s/"); body != "tls upstream host=cache.openfoodfacts.org" {
		t.Fatalf("%q", body)
	}
	// An upstream whose certificate we do not trust is a 502, not a leak.
	// (Another node: pools are built with their node's trust roots.)
	n2 := newNode(t)
	up2 := n2.up(n.ups[up])
	_, addr2 := n2.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up2}}}}}, Options{RootCAs: x509.NewCertPool()})
	if resp, _ := get(t, client(addr2), "http://s/"); resp.StatusCode != 502 {
		t.Fatalf("untrusted upstream: %d", resp.StatusCode)
	}
}

// echoUpgrade is a backend that switches protocols and echoes bytes.
func echoUpgrade(t *testing.T) *testBackend {
	return newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "no upgrade", 400)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(c, brw)
	})
}

func openWebSocket(t *testing.T, addr, host string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: "+host+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return c, br
}

func echo(t *testing.T, c net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, msg)
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo %q: got %q %v", msg, buf, err)
	}
}

func TestWebSocketAndStreamSurviveUpdate(t *testing.T) {
	n := newNode(t)
	ws := echoUpgrade(t)
	next := make(chan struct{})
	stream := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		for i := 0; ; i++ {
			fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	newer := newBackend(t, textHandler("new config"))
	site := func(streamAddr string) Site {
		return Site{Name: "app", Hosts: []string{"app"}, Routes: []Route{
			{Path: "/ws", WebSocket: true, Upstream: n.up(Upstream{Name: "ws", Servers: []UpstreamServer{{Addr: ws.addr()}}})},
			{Path: "/", Upstream: n.up(Upstream{Name: "main", Servers: []UpstreamServer{{Addr: streamAddr}}})},
		}}
	}
	srv, addr := n.start(Config{Sites: []Site{site(stream.addr())}}, Options{})
	wsc, wsr := openWebSocket(t, addr, "app")
	defer wsc.Close()
	echo(t, wsc, wsr, "before update")

	resp, err := client(addr).Get("http://app/download")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	if l, _ := lines.ReadString('\n'); l != "chunk 0\n" {
		t.Fatalf("%q", l)
	}

	// A broken config is refused and changes nothing.
	bad := Config{Sites: []Site{{Name: "app", Routes: []Route{{Path: "nope"}}}}}
	if err := n.update(srv, bad); err == nil {
		t.Fatal("bad update accepted")
	}
	if err := n.update(srv, Config{Sites: []Site{site(newer.addr())}}); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, client(addr), "http://app/other"); body != "new config" {
		t.Fatalf("new requests not on the new config: %q", body)
	}
	echo(t, wsc, wsr, "after update")
	for i := 1; i <= 3; i++ {
		next <- struct{}{}
		if l, err := lines.ReadString('\n'); l != fmt.Sprintf("chunk %d\n", i) {
			t.Fatalf("stream after update: %q %v", l, err)
		}
	}
	if srv.Stats().WebSockets != 1 {
		t.Fatalf("stats: %+v", srv.Stats())
	}
}

func TestUpdateKeepsPoolState(t *testing.T) {
	n := newNode(t)
	live := newBackend(t, textHandler("live"))
	dead := deadAddr(t)
	mk := func(extra string) Config {
		up := n.up(Upstream{Name: "p", Servers: []UpstreamServer{{Addr: dead}, {Addr: live.addr()}}})
		return Config{Sites: []Site{{Name: "s", Hosts: []string{"s", extra}, Routes: []Route{{Path: "/", Upstream: up}}}}}
	}
	srv, addr := n.start(mk("a"), Options{})
	get(t, client(addr), "http://s/")
	if err := n.update(srv, mk("b")); err != nil {
		t.Fatal(err)
	}
	for _, u := range srv.Stats().Upstreams {
		if u.Addr == dead && u.Up {
			t.Fatal("passive health state lost across Update of an unchanged pool")
		}
	}
}

func TestShutdownDrains(t *testing.T) {
	n := newNode(t)
	release := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "finished")
	})
	srv, err := n.newServer(Config{Sites: []Site{n.proxySite("s", []string{"s"}, be.addr())}}, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	testutil.WaitTCP(t, ln.Addr().String(), 5*time.Second)
	got := make(chan string, 1)
	go func() {
		resp, err := client(ln.Addr().String()).Get("http://s/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	testutil.Eventually(t, 5*time.Second, "request in flight", func() bool { return be.requests.Load() == 1 })
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	testutil.Eventually(t, 5*time.Second, "listener closed", func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if b := <-got; b != "finished" {
		t.Fatalf("in-flight request: %q", b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAccessLog(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	be := newBackend(t, textHandler("hello"))
	comb := n.proxySite("c", []string{"c"}, be.addr())
	comb.AccessLog = n.log(AccessLog{Path: filepath.Join(dir, "c.log"), FlushInterval: 10 * time.Millisecond}, "combined")
	js := n.proxySite("j", []string{"j"}, be.addr())
	js.AccessLog = n.log(AccessLog{Path: filepath.Join(dir, "j.log"), FlushInterval: 10 * time.Millisecond}, "json")
	_, addr := n.start(Config{Sites: []Site{comb, js}}, Options{})
	c := client(addr)
	get(t, c, "http://c/path?q=1", "User-Agent", "evil\"agent", "Referer", "http://r/")
	get(t, c, "http://j/x")
	var line string
	testutil.Eventually(t, 5*time.Second, "combined line flushed", func() bool {
		b, _ := os.ReadFile(comb.AccessLog.File)
		line = string(b)
		return line != ""
	})
	want := `"GET /path?q=1 HTTP/1.1" 200 5 "http://r/" "evil\x22agent"`
	if !strings.HasPrefix(line, "127.0.0.1 - - [") || !strings.Contains(line, want) {
		t.Fatalf("combined line %q\nwant it to contain %s", line, want)
	}
	testutil.Eventually(t, 5*time.Second, "json line flushed", func() bool {
		b, _ := os.ReadFile(js.AccessLog.File)
		var rec map[string]any
		return json.Unmarshal(b, &rec) == nil && rec["status"] == float64(200) && rec["site"] == "j" && rec["upstream"] == be.addr()
	})
}

// A client that leaves an HTTP/1.1-over-TLS request while the upstream is
// still answering: the upstream request is abandoned at once, as on a
// plain connection and as nginx does (the defect: the TLS connection's
// goroutine was blocked in the handler, nothing watched the socket, and
// the upstream exchange ran until its read timeout). A client that stays
// gets its slow answer, twice on one connection.
func TestTLSClientHangUpCancelsUpstream(t *testing.T) {
	n := newNode(t)
	cf, kf := writeCert(t, t.TempDir(), "slow.example.org")
	started := make(chan struct{}, 4)
	gone := make(chan struct{}, 4)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "slow answer")
			return
		}
		select {
		case <-r.Context().Done(): // the edge closed its upstream connection
			gone <- struct{}{}
		case <-time.After(30 * time.Second):
		}
	})
	site := n.proxySite("slow", []string{"slow.example.org"}, be.addr())
	site.Certificate = n.cert(cf, kf)
	_, addr := n.start(Config{TLS: true, Sites: []Site{site}}, Options{})
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "slow.example.org", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
			t.Fatalf("ALPN %q", p)
		}
		return c
	}

	t.Run("client stays", func(t *testing.T) {
		c := dial()
		defer c.Close()
		br := bufio.NewReader(c)
		for i := range 2 {
			io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: slow.example.org\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "slow answer" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
			}
			<-started
		}
	})

	t.Run("client leaves", func(t *testing.T) {
		c := dial()
		io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: slow.example.org\r\n\r\n")
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("the request did not reach the upstream")
		}
		c.Close()
		select {
		case <-gone:
		case <-time.After(5 * time.Second):
			t.Fatal("the upstream request ran on after its client left")
		}
	})
}
