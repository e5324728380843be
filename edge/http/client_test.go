package httpedge

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// headBackend records the head of every request it gets and counts its
// connections; tls makes it an HTTPS server.
type headBackend struct {
	srv   *httptest.Server
	conns atomic.Int64
	mu    sync.Mutex
	heads []string // "path|field=value|..." for the fields the test looks at
}

var headFields = []string{"User-Agent", "X-Real-Ip", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Hop", "Te", "Connection"}

func newHeadBackend(t *testing.T, withTLS bool) *headBackend {
	t.Helper()
	b := &headBackend{}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := []string{r.URL.RequestURI(), "host=" + r.Host}
		for _, k := range headFields {
			if v, ok := r.Header[k]; ok {
				parts = append(parts, k+"="+strings.Join(v, ","))
			}
		}
		b.mu.Lock()
		b.heads = append(b.heads, strings.Join(parts, "|"))
		b.mu.Unlock()
		w.Header().Set("Server", "Apache/2.4.62 (Debian)")
		fmt.Fprint(w, "ok")
	}))
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	if withTLS {
		b.srv.StartTLS()
	} else {
		b.srv.Start()
	}
	t.Cleanup(b.srv.Close)
	return b
}

func (b *headBackend) addr() string {
	return strings.TrimPrefix(strings.TrimPrefix(b.srv.URL, "https://"), "http://")
}

func (b *headBackend) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.heads...)
}

// A plain and a TLS upstream get the same request head (one header
// policy), and health probes go over the connections traffic uses (one
// client): after a probe and three requests, each server saw one
// connection.
func TestOneClientForPlainAndTLSUpstreams(t *testing.T) {
	nd := newNode(t)
	for _, withTLS := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "tls"}[withTLS]
		t.Run(name, func(t *testing.T) {
			be := newHeadBackend(t, withTLS)
			var opts Options
			if withTLS {
				roots := x509.NewCertPool()
				roots.AddCert(be.srv.Certificate())
				opts.RootCAs = roots
			}
			up := nd.up(Upstream{Name: "p", Host: "example.com", Servers: []UpstreamServer{{Addr: be.addr(), TLS: withTLS, ServerName: "example.com"}},
				HealthCheck: &HealthCheck{Path: "/health?deep=1", Interval: time.Hour, Timeout: 5 * time.Second, Rise: 1, Fall: 1}})
			_, addr := nd.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, opts)
			// The probe's connection is back in the pool before the first
			// request (the backend records the probe before it answers).
			testutil.Eventually(t, 5*time.Second, "first health probe, its connection idle", func() bool {
				if len(be.received()) < 1 {
					return false
				}
				c := nd.built.Pools[up].p.backends[0].client
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.idle) == 1
			})
			c := client(addr)
			for range 3 {
				resp, body := get(t, c, "http://s/p?q=1", "X-Forwarded-For", "198.51.100.7", "Connection", "X-Hop", "X-Hop", "secret",
					"User-Agent", "curl/8", "Te", "trailers, deflate")
				if resp.StatusCode != 200 || body != "ok" {
					t.Fatalf("%d %q", resp.StatusCode, body)
				}
			}
			got := be.received()
			wantProbe := "/health?deep=1|host=example.com|User-Agent=offedge-health-check"
			wantReq := "/p?q=1|host=example.com|User-Agent=curl/8|X-Real-Ip=127.0.0.1|X-Forwarded-For=198.51.100.7, 127.0.0.1|X-Forwarded-Proto=http|X-Forwarded-Host=s|Te=trailers"
			if got[0] != wantProbe {
				t.Errorf("probe head\n got  %s\n want %s", got[0], wantProbe)
			}
			for _, h := range got[1:] {
				if h != wantReq {
					t.Errorf("request head\n got  %s\n want %s", h, wantReq)
				}
			}
			if n := be.conns.Load(); n != 1 {
				t.Errorf("%d connections to the server for one probe and three requests, want 1 (probes use the traffic pool)", n)
			}
		})
	}
}

// logRecorder is a slog handler keeping every record's level and message.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Level.String()+" "+r.Message)
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) at(level slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if strings.HasPrefix(r, level.String()+" ") {
			out = append(out, r)
		}
	}
	return out
}

// A client that hangs up mid-response is its own doing: no ERROR blaming
// the upstream, no upstream failure counted, and the access log says 499
// (client closed) with the bytes that were sent, not 200.
func TestClientHangupMidResponse(t *testing.T) {
	n := newNode(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.WriteHeader(200)
		io.WriteString(w, strings.Repeat("a", 1000))
		w.(http.Flusher).Flush()
		select { // the rest never comes while the client is there
		case <-release:
		case <-r.Context().Done():
		}
	})
	dir := t.TempDir()
	st := n.proxySite("s", []string{"s"}, be.addr())
	st.AccessLog = n.log(AccessLog{Path: filepath.Join(dir, "a.log"), FlushInterval: 10 * time.Millisecond}, "json")
	logs := &logRecorder{}
	srv, addr := n.start(Config{Sites: []Site{st}}, Options{Logger: slog.New(logs)})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: s\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	var rec map[string]any
	testutil.Eventually(t, 5*time.Second, "access log line", func() bool {
		b, _ := os.ReadFile(st.AccessLog.File)
		return json.Unmarshal(b, &rec) == nil
	})
	if rec["status"] != float64(499) || rec["status_sent"] != float64(200) || rec["body_bytes_sent"] != float64(1000) {
		t.Errorf("access log %v; want status 499, status_sent 200, body_bytes_sent 1000", rec)
	}
	if e := logs.at(slog.LevelError); len(e) > 0 {
		t.Errorf("errors logged for a client hang-up: %q", e)
	}
	stats := settled(srv)
	if stats.UpstreamErrors != 0 || stats.Upstreams[0].Fails != 0 || !stats.Upstreams[0].Up {
		t.Errorf("the upstream was blamed: %+v", stats)
	}
	if stats.Status2xx != 0 || stats.Status4xx != 1 {
		t.Errorf("status counters 2xx=%d 4xx=%d, want the aborted response counted as 4xx (499)", stats.Status2xx, stats.Status4xx)
	}
}

// The upstream's Server banner (and nginx's internal X-Accel-* fields)
// are not passed to clients, as nginx's proxy_hide_header defaults.
func TestUpstreamServerBannerHidden(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Apache/2.4.62 (Debian)")
		w.Header().Set("X-Accel-Redirect", "/internal/secret")
		w.Header().Set("X-Powered-By", "Product Opener")
		io.WriteString(w, "ok")
	})
	_, addr := n.start(Config{Sites: []Site{n.proxySite("s", []string{"s"}, be.addr())}}, Options{})
	resp, body := get(t, client(addr), "http://s/")
	if body != "ok" {
		t.Fatalf("%q", body)
	}
	if v := resp.Header.Get("Server"); v != "" {
		t.Errorf("Server %q passed to the client", v)
	}
	if v := resp.Header.Get("X-Accel-Redirect"); v != "" {
		t.Errorf("X-Accel-Redirect %q passed to the client", v)
	}
	if v := resp.Header.Get("X-Powered-By"); v != "Product Opener" {
		t.Errorf("X-Powered-By %q: other fields must pass", v)
	}
}
