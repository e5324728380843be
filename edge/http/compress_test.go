package httpedge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestNegotiate(t *testing.T) {
	for _, tt := range []struct {
		ae     string
		gz, zs bool
		want   encoding
	}{
		{"", true, true, encIdentity},
		{"gzip", true, true, encGzip},
		{"gzip, deflate, br, zstd", true, true, encZstd}, // Chrome: zstd wins the tie
		{"gzip, deflate, br, zstd", true, false, encGzip},
		{"zstd", false, true, encZstd},
		{"zstd", true, false, encIdentity},
		{"gzip;q=1.0, zstd;q=0.5", true, true, encGzip},
		{"gzip;q=0.5, zstd;q=0.501", true, true, encZstd},
		{"gzip;q=0", true, true, encIdentity},
		{"GZIP;Q=0.3", true, true, encGzip},
		{"x-gzip", true, true, encGzip},
		{"*", true, true, encZstd},
		{"*;q=0.5, zstd;q=0", true, true, encGzip},
		{"*;q=0", true, true, encIdentity},
		{"identity", true, true, encIdentity},
		{"br", true, true, encIdentity},
		{"gzip;q=2", true, true, encIdentity},      // malformed q: ignored
		{"gzip;q=0.1234", true, true, encIdentity}, // too many digits
		{"gzip;q=1.001", true, true, encIdentity},
		{"gzip;q=1.000", true, true, encGzip},
		{"gzip;q=", true, true, encIdentity},
		{"gzip ; q=0.8 , zstd ; q=0.7", true, true, encGzip},
		{"gzip;level=9", true, true, encGzip},
		{",,, ,gzip,", true, true, encGzip},
		{"gzip;q=0, gzip", true, true, encGzip}, // the highest q of a repeated name
		{"gzipx, zstdy", true, true, encIdentity},
		{"gzip" + strings.Repeat(" ", maxAcceptEncoding), true, true, encIdentity}, // bounded
	} {
		if got := negotiate([]string{tt.ae}, tt.gz, tt.zs); got != tt.want {
			t.Errorf("negotiate(%q, gzip %v, zstd %v) = %q, want %q", tt.ae, tt.gz, tt.zs, got.token(), tt.want.token())
		}
	}
	if got := negotiate([]string{"br", "gzip;q=0.2"}, true, true); got != encGzip {
		t.Errorf("two fields: %q", got.token())
	}
	if got := negotiate(nil, true, true); got != encIdentity {
		t.Errorf("no field: %q", got.token())
	}
}

// FuzzNegotiate: any Accept-Encoding gives a coding the route allows (or
// identity), never a panic, and a coding only when the field names it or
// "*".
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"gzip", "gzip, deflate, br, zstd", "*;q=0.5, zstd;q=0", "gzip;q=0.001", "zstd;q=1.", ";;;,=,q=", "gzip;q=0.5;q=1"} {
		f.Add(s, true, true)
	}
	f.Fuzz(func(t *testing.T, ae string, gz, zs bool) {
		got := negotiate([]string{ae}, gz, zs)
		switch got {
		case encIdentity:
		case encGzip:
			if !gz {
				t.Fatalf("%q: gzip not allowed", ae)
			}
		case encZstd:
			if !zs {
				t.Fatalf("%q: zstd not allowed", ae)
			}
		default:
			t.Fatalf("%q: coding %d", ae, got)
		}
		low := strings.ToLower(ae)
		if got != encIdentity && !strings.Contains(low, got.token()) && !strings.Contains(low, "*") {
			t.Fatalf("%q: %s without naming it", ae, got.token())
		}
		if got != negotiate([]string{ae}, gz, zs) {
			t.Fatalf("%q: not deterministic", ae)
		}
	})
}

func TestCompressible(t *testing.T) {
	p, err := compileCompress(&Compress{Gzip: true, Zstd: true, Types: []string{"text/*", "application/json", "image/svg+xml", "image/png"}, MinLength: 100, GzipLevel: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		h    http.Header
		code int
		want bool
	}{
		{http.Header{"Content-Type": {"text/html; charset=utf-8"}}, 200, true},
		{http.Header{"Content-Type": {"Text/HTML"}}, 200, true},
		{http.Header{"Content-Type": {"application/json"}}, 404, true},
		{http.Header{"Content-Type": {"application/json"}}, 403, true},
		{http.Header{"Content-Type": {"application/json"}}, 500, false},
		{http.Header{"Content-Type": {"application/json"}}, 201, false},
		{http.Header{"Content-Type": {"application/json"}}, 206, false},
		{http.Header{"Content-Type": {"application/json"}}, 304, false},
		{http.Header{"Content-Type": {"application/xml"}}, 200, false},
		{http.Header{"Content-Type": {"image/svg+xml"}}, 200, true},
		{http.Header{"Content-Type": {"image/png"}}, 200, false}, // listed, but compressed already
		{http.Header{}, 200, false},
		{http.Header{"Content-Type": {"text/plain"}, "Content-Encoding": {"gzip"}}, 200, false},
		{http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"99"}}, 200, false},
		{http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"100"}}, 200, true},
		{http.Header{"Content-Type": {"text/plain"}, "Cache-Control": {"public, no-transform"}}, 200, false},
	} {
		if got := p.compressible(tt.h, tt.code); got != tt.want {
			t.Errorf("%d %v: %v, want %v", tt.code, tt.h, got, tt.want)
		}
	}
	for _, bad := range []*Compress{
		{Types: []string{"text/html"}, GzipLevel: 5},
		{Gzip: true, Types: []string{"text/html"}, GzipLevel: 10},
		{Gzip: true, Types: []string{"text/html"}, GzipLevel: 5, MinLength: -1},
		{Gzip: true, GzipLevel: 5},
		{Gzip: true, Types: []string{"html"}, GzipLevel: 5},
		{Gzip: true, Types: []string{"text/*/x"}, GzipLevel: 5},
	} {
		if _, err := compileCompress(bad); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}

// decoded reads a response body in the coding it says it has.
func decoded(t *testing.T, resp *http.Response) string {
	t.Helper()
	var r io.Reader = resp.Body
	switch resp.Header.Get("Content-Encoding") {
	case "gzip":
		z, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = z
	case "zstd":
		z, err := zstd.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer z.Close()
		r = z
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading the %q body: %v", resp.Header.Get("Content-Encoding"), err)
	}
	return string(b)
}

// rawClient is a client that neither asks for gzip nor decodes it.
func rawClient(addr string) *http.Client {
	c := client(addr)
	c.Transport.(*http.Transport).DisableCompression = true
	return c
}

func do(t *testing.T, c *http.Client, method, url string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var testCompress = &Compress{Gzip: true, Zstd: true, Types: []string{"text/*", "application/json"}, MinLength: 64, GzipLevel: 5}

// TestCompressProxied: proxied answers through a real edge, in each
// coding, and the answers that must stay as they are.
func TestCompressProxied(t *testing.T) {
	page := strings.Repeat("<p>Open Food Facts</p>\n", 200)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/page", "/404":
			h.Set("Content-Type", "text/html")
			h.Set("Etag", `"abc"`)
			h.Set("Content-Length", fmt.Sprint(len(page)))
		case "/jpeg":
			h.Set("Content-Type", "image/jpeg")
		case "/small":
			h.Set("Content-Type", "text/plain")
			io.WriteString(w, "tiny")
			return
		case "/gzipped":
			h.Set("Content-Type", "text/html")
			h.Set("Content-Encoding", "gzip")
			z := gzip.NewWriter(w)
			io.WriteString(z, page)
			z.Close()
			return
		case "/204":
			w.WriteHeader(204)
			return
		case "/vary":
			h.Set("Content-Type", "text/html")
			h.Set("Vary", "Cookie")
		}
		if r.URL.Path == "/404" {
			w.WriteHeader(404)
		}
		if r.Method != http.MethodHead {
			io.WriteString(w, page)
		}
	})
	n := newNode(t)
	site := n.proxySite("s", []string{"s"}, be.addr())
	site.Routes[0].Compress = testCompress
	site.Routes = append(site.Routes, Route{Path: "/plain/", Upstream: site.Routes[0].Upstream})
	_, addr := n.start(Config{Sites: []Site{site}}, Options{})
	c := rawClient(addr)
	for _, tt := range []struct {
		method, path, ae string
		coding           string
	}{
		{"GET", "/page", "gzip", "gzip"},
		{"GET", "/page", "gzip, deflate, br, zstd", "zstd"},
		{"GET", "/404", "gzip", "gzip"},
		{"GET", "/vary", "gzip", "gzip"},
		{"GET", "/page", "", ""},
		{"GET", "/page", "br", ""},
		{"GET", "/jpeg", "gzip", ""},
		{"GET", "/small", "gzip", ""},
		{"GET", "/gzipped", "zstd, gzip", "gzip"}, // the upstream's own coding, passed on
		{"GET", "/204", "gzip", ""},
		{"HEAD", "/page", "gzip", "gzip"},  // the head a GET gets, as nginx
		{"GET", "/plain/page", "gzip", ""}, // a route without compress
	} {
		resp := do(t, c, tt.method, "http://s"+tt.path, "Accept-Encoding", tt.ae)
		if got := resp.Header.Get("Content-Encoding"); got != tt.coding {
			t.Errorf("%s %s (%q): Content-Encoding %q, want %q", tt.method, tt.path, tt.ae, got, tt.coding)
			continue
		}
		if tt.method == "HEAD" {
			if b, _ := io.ReadAll(resp.Body); len(b) != 0 {
				t.Errorf("HEAD: a body of %d bytes", len(b))
			}
		}
		body := ""
		if tt.method == "GET" {
			body = decoded(t, resp)
		}
		if tt.method == "GET" && tt.path != "/small" && tt.path != "/204" && body != page {
			t.Errorf("%s %s (%q): body of %d bytes, want the page", tt.method, tt.path, tt.ae, len(body))
		}
		if tt.coding != "" && tt.path != "/gzipped" {
			// The upstream's length is gone; the server loop may send
			// the compressed length of a short answer it holds whole.
			if resp.ContentLength == int64(len(page)) {
				t.Errorf("%s: a compressed answer with the identity Content-Length", tt.path)
			}
			if tt.path == "/page" && resp.Header.Get("Etag") != `W/"abc"` {
				t.Errorf("%s: ETag %q, want it weakened", tt.path, resp.Header.Get("Etag"))
			}
		}
		vary := strings.Join(resp.Header.Values("Vary"), ", ")
		wantVary := tt.path == "/page" || tt.path == "/404" || tt.path == "/vary"
		if got := strings.Contains(vary, "Accept-Encoding"); got != wantVary {
			t.Errorf("%s %s (%q): Vary %q (Accept-Encoding wanted: %v)", tt.method, tt.path, tt.ae, vary, wantVary)
		}
		if tt.path == "/vary" && !strings.Contains(vary, "Cookie") {
			t.Errorf("the upstream's Vary lost: %q", vary)
		}
		if tt.method == "HEAD" && (resp.Header.Get("Content-Length") != "" || resp.Header.Get("Etag") != `W/"abc"`) {
			t.Errorf("HEAD: Content-Length %q, ETag %q: want a GET's head", resp.Header.Get("Content-Length"), resp.Header.Get("Etag"))
		}
	}
}

// TestCompressStreamsAndFlushes: a streamed answer (server-sent events)
// reaches the client event by event, each decodable before the next is
// produced.
func TestCompressStreamsAndFlushes(t *testing.T) {
	next := make(chan struct{})
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	n := newNode(t)
	site := n.proxySite("s", []string{"s"}, be.addr())
	site.Routes[0].Compress = &Compress{Gzip: true, Types: []string{"text/event-stream"}, MinLength: 20, GzipLevel: 1}
	_, addr := n.start(Config{Sites: []Site{site}}, Options{})
	resp := do(t, rawClient(addr), "GET", "http://s/events", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	z, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(z)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
		br.ReadString('\n')
		if i < 2 {
			next <- struct{}{}
		}
	}
}

// TestCompressStatic: static files are compressed on the fast path and
// on http.ServeContent's, never for a Range request, and gzip_static
// serves the .gz beside a file.
func TestCompressStatic(t *testing.T) {
	root := t.TempDir()
	page := strings.Repeat("body { color: #333; }\n", 500)
	writeFile(t, filepath.Join(root, "site.css"), page)
	os.MkdirAll(filepath.Join(root, "pre"), 0o755)
	writeFile(t, filepath.Join(root, "pre", "app.js"), "never read: the .gz is served")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, page)
	zw.Close()
	writeFile(t, filepath.Join(root, "pre", "app.js.gz"), gz.String())
	n := newNode(t)
	cp := *testCompress
	cp.Static = true
	cp.Types = []string{"text/css", "text/javascript"}
	_, addr := n.start(Config{Sites: []Site{{Name: "s", Hosts: []string{"s"}, Routes: []Route{
		{Path: "/", Static: &Static{Root: root}, Compress: &cp}}}}}, Options{})
	c := rawClient(addr)

	resp := do(t, c, "GET", "http://s/site.css", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || decoded(t, resp) != page || !strings.HasPrefix(resp.Header.Get("Etag"), "W/") {
		t.Fatalf("fast path: %v", resp.Header)
	}
	// A conditional request goes through http.ServeContent.
	resp = do(t, c, "GET", "http://s/site.css", "Accept-Encoding", "zstd", "If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "zstd" || decoded(t, resp) != page {
		t.Fatalf("ServeContent path: %d %v", resp.StatusCode, resp.Header)
	}
	etag := resp.Header.Get("Etag")
	resp = do(t, c, "GET", "http://s/site.css", "Accept-Encoding", "gzip", "If-None-Match", etag)
	if resp.StatusCode != 304 || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("If-None-Match with the weak tag: %d %v", resp.StatusCode, resp.Header)
	}
	resp = do(t, c, "GET", "http://s/site.css", "Accept-Encoding", "gzip", "Range", "bytes=0-9")
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 206 || resp.Header.Get("Content-Encoding") != "" || string(b) != page[:10] {
		t.Fatalf("Range: %d %v %q", resp.StatusCode, resp.Header, b)
	}
	resp = do(t, c, "GET", "http://s/site.css")
	if b, _ := io.ReadAll(resp.Body); resp.Header.Get("Content-Encoding") != "" || string(b) != page || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("identity: %v", resp.Header)
	}
	// gzip_static
	resp = do(t, c, "GET", "http://s/pre/app.js", "Accept-Encoding", "gzip, zstd")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || decoded(t, resp) != page {
		t.Fatalf("gzip_static: %v", resp.Header)
	}
	if resp.Header.Get("Content-Length") != fmt.Sprint(gz.Len()) || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip_static: %v", resp.Header)
	}
	resp = do(t, c, "GET", "http://s/pre/app.js")
	if b, _ := io.ReadAll(resp.Body); string(b) != "never read: the .gz is served" {
		t.Fatalf("gzip_static without gzip: %q", b)
	}
}

// BenchmarkCompressedAnswer measures what compressing one 20 KiB answer
// allocates once the encoders are pooled (per answer, not per encoder).
func BenchmarkCompressedAnswer(b *testing.B) {
	page := []byte(strings.Repeat("<p>Open Food Facts</p>\n", 900))
	for _, e := range []encoding{encGzip, encZstd} {
		b.Run(e.token(), func(b *testing.B) {
			var ep encoderPools
			b.ReportAllocs()
			b.SetBytes(int64(len(page)))
			for b.Loop() {
				enc := ep.get(e, 5, io.Discard)
				enc.Write(page)
				enc.Close()
				ep.put(e, 5, enc)
			}
		})
	}
}

// TestCompressedAnswerCutStaysBroken: an upstream that cuts its answer
// must not look, compressed, like a whole body (no gzip trailer written).
func TestCompressedAnswerCutStaysBroken(t *testing.T) {
	// Text that compresses little, so that compressed bytes (and the
	// head) reach the client before the cut.
	var sb strings.Builder
	x := uint32(1)
	for sb.Len() < 256<<10 {
		x = x*1664525 + 1013904223
		fmt.Fprintf(&sb, "%08x\n", x)
	}
	page := sb.String()
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", fmt.Sprint(2*len(page)))
		io.WriteString(w, page)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	n := newNode(t)
	site := n.proxySite("s", []string{"s"}, be.addr())
	site.Routes[0].Compress = testCompress
	_, addr := n.start(Config{Sites: []Site{site}}, Options{})
	req, _ := http.NewRequest("GET", "http://s/x", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := rawClient(addr).Do(req)
	if err != nil {
		return // cut before the head was sent: broken, as it must be
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	z, err := gzip.NewReader(resp.Body)
	if err != nil {
		return // cut before the gzip header: broken, as it must be
	}
	if _, err := io.ReadAll(z); err == nil {
		t.Fatal("a cut answer decoded as a whole gzip body")
	}
}

// TestCompressLikeNginx proxies one backend through a real nginx (gzip on,
// gzip_types, gzip_min_length, gzip_vary on) and through the edge, and
// compares which answers are compressed and which carry Vary, over
// statuses, types, lengths, methods and an upstream's own coding.
func TestCompressLikeNginx(t *testing.T) {
	body := strings.Repeat("compressible text\n", 100)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", q.Get("type"))
		if ce := q.Get("ce"); ce != "" {
			w.Header().Set("Content-Encoding", ce)
		}
		b := body
		if q.Get("short") != "" {
			b = "short"
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		code := 200
		fmt.Sscan(q.Get("status"), &code)
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			io.WriteString(w, b)
		}
	})
	ngx := startNginxServers(t, fmt.Sprintf(`server {
    LISTEN
    gzip on;
    gzip_types text/css application/json;
    gzip_min_length 64;
    gzip_vary on;
    location / { proxy_pass http://%s; }
}`, be.addr()))
	n := newNode(t)
	site := n.proxySite("s", []string{"s"}, be.addr())
	site.Routes[0].Compress = &Compress{Gzip: true, Types: []string{"text/css", "application/json"}, MinLength: 64, GzipLevel: 1}
	_, addr := n.start(Config{Sites: []Site{site}}, Options{})
	for _, typ := range []string{"text/html", "text/css", "application/json", "text/plain", "image/jpeg"} {
		for _, status := range []int{200, 201, 403, 404, 410, 500} {
			for _, extra := range []string{"", "&short=1", "&ce=br"} {
				for _, method := range []string{"GET", "HEAD"} {
					url := fmt.Sprintf("http://s/x?type=%s&status=%d%s", typ, status, extra)
					want := do(t, rawClient(ngx), method, url, "Accept-Encoding", "gzip")
					got := do(t, rawClient(addr), method, url, "Accept-Encoding", "gzip")
					if g, w := got.Header.Get("Content-Encoding"), want.Header.Get("Content-Encoding"); g != w {
						t.Errorf("%s %s: Content-Encoding %q, nginx %q", method, url, g, w)
					}
					gv := strings.Contains(strings.Join(got.Header.Values("Vary"), ","), "Accept-Encoding")
					wv := strings.Contains(strings.Join(want.Header.Values("Vary"), ","), "Accept-Encoding")
					if gv != wv {
						t.Errorf("%s %s: Vary: Accept-Encoding %v, nginx %v", method, url, gv, wv)
					}
				}
			}
		}
	}
}
