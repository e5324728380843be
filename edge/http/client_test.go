package httpedge

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
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
			up := &Upstream{Name: "p", Host: "example.com", Servers: []UpstreamServer{{Addr: be.addr(), TLS: withTLS, ServerName: "example.com"}},
				HealthCheck: &HealthCheck{Path: "/health?deep=1", Interval: time.Hour, Timeout: 5 * time.Second, Rise: 1, Fall: 1}}
			_, addr := start(t, Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Upstream: up}}}}}, opts)
			testutil.Eventually(t, 5*time.Second, "first health probe", func() bool { return len(be.received()) >= 1 })
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
