package standin

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func httpDo(t *testing.T, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestProductOpener(t *testing.T) {
	info := Info{Service: "po-off", Node: "off1", Flavor: "off"}
	_, addr := start(t, "http", info, Options{})
	base := "http://" + addr
	tests := []struct {
		method, path string
		status       int
		ctype        string
		contains     []string
	}{
		{"GET", "/", 200, "text/html", []string{"Open Food Facts", "offedge stand-in for po-off on off1",
			`href="/product/3017620422003/nutella"`, "Cruesli", `/product/7622210449283/prince-gout-chocolat`}},
		{"HEAD", "/", 200, "text/html", nil},
		{"GET", "/product/3017620422003", 200, "text/html", []string{"<h1>Nutella</h1>", "Ferrero", "400 g", "en:hazelnut-spreads",
			`<img src="https://images.openfoodfacts.org/images/products/301/762/042/2003/1.jpg"`}},
		{"GET", "/product/5449000000996/coca-cola", 200, "text/html", []string{"Coca-Cola", "330 ml"}},
		{"GET", "/product/0000000000000", 404, "text/html", []string{"Product not found"}},
		{"POST", "/product/3017620422003", 405, "text/plain", nil},
		{"GET", "/api/v2/product/3017620422003.json", 200, "application/json", []string{`"code":"3017620422003"`,
			`"product_name":"Nutella"`, `"status":1`, `"status_verbose":"product found"`,
			`"image_front_url":"https://images.openfoodfacts.org/images/products/301/762/042/2003/1.jpg"`,
			`"categories_tags":["en:spreads","en:sweet-spreads","en:hazelnut-spreads"]`}},
		{"GET", "/api/v2/product/3274080005003", 200, "application/json", []string{`"brands":"Cristaline"`, `"quantity":"1.5 L"`}},
		{"HEAD", "/api/v2/product/3274080005003", 200, "application/json", nil},
		{"GET", "/api/v2/product/1234567890123.json", 404, "application/json", []string{`"code":"1234567890123"`, `"status":0`, `"status_verbose":"product not found"`}},
		{"GET", "/api/v2/product/abc%3Cscript%3E", 404, "application/json", []string{`"status":0`, `\u003cscript\u003e`}},
		{"POST", "/api/v2/product/3017620422003.json", 405, "application/json", nil},
		{"DELETE", "/api/v2/product/3017620422003", 405, "application/json", nil},
		{"GET", "/images/products/301/762/042/2003/1.jpg", 200, "image/jpeg", nil},
		{"GET", "/images/products/301/762/042/2003/9.jpg", 404, "text/plain", nil},
		{"GET", "/health", 200, "application/json", []string{`"status":"ok"`, `"service":"po-off"`}},
		{"GET", "/nothing/here", 404, "text/html", []string{"/nothing/here"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := httpDo(t, tt.method, base+tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d; body %q", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get(HeaderStandin); got != "po-off@off1" {
				t.Errorf("%s = %q", HeaderStandin, got)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tt.ctype)
			}
			if tt.method == "HEAD" && body != "" {
				t.Errorf("HEAD has a body: %q", body)
			}
			if tt.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
		})
	}
	// The API answer decodes into Product Opener's shape.
	_, body := httpDo(t, "GET", base+"/api/v2/product/7622210449283.json", nil)
	var ans struct {
		Code    string `json:"code"`
		Status  int    `json:"status"`
		Product struct {
			ProductName    string   `json:"product_name"`
			Brands         string   `json:"brands"`
			CategoriesTags []string `json:"categories_tags"`
			ImageFrontURL  string   `json:"image_front_url"`
		} `json:"product"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Code != "7622210449283" || ans.Status != 1 || ans.Product.Brands != "LU, Mondelez" || len(ans.Product.CategoriesTags) != 3 {
		t.Errorf("API answer %+v", ans)
	}
	// The served image is the one WriteImages writes.
	_, img := httpDo(t, "GET", base+"/images/products/301/762/042/2003/2.jpg", nil)
	want, _ := ImageJPEG("3017620422003", 2)
	if img != string(want) {
		t.Error("served image differs from ImageJPEG")
	}
}

func TestProductOpenerFlavors(t *testing.T) {
	for _, fl := range []string{"obf", "opf", "opff", "off-pro"} {
		t.Run(fl, func(t *testing.T) {
			_, addr := start(t, "http", Info{Service: "po-" + fl, Node: "off2", Flavor: fl}, Options{})
			p := Products(fl)[0]
			resp, body := httpDo(t, "GET", "http://"+addr+"/api/v2/product/"+p.Code+".json", nil)
			if resp.StatusCode != 200 || !strings.Contains(body, p.Name) || !strings.Contains(body, "https://"+flavors[fl].ImageHost+ImagePath(p.Code, 1)) {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
			_, home := httpDo(t, "GET", "http://"+addr+"/", nil)
			if !strings.Contains(home, flavors[fl].Name) {
				t.Errorf("home page does not name %s", flavors[fl].Name)
			}
			// Another flavor's product is not here.
			resp, _ = httpDo(t, "GET", "http://"+addr+"/api/v2/product/"+Products("opff")[0].Code, nil)
			if fl != "opff" && resp.StatusCode != 404 {
				t.Errorf("opff product on %s: %d", fl, resp.StatusCode)
			}
		})
	}
}

func TestGenericHTTP(t *testing.T) {
	_, addr := start(t, "http", Info{Service: "wiki", Node: "ovh1", Title: "OFF wiki <&>"}, Options{})
	resp, body := httpDo(t, "GET", "http://"+addr+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<title>OFF wiki &lt;&amp;&gt; · offedge stand-in</title>") || !strings.Contains(body, "ovh1") {
		t.Errorf("home: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get(HeaderStandin) != "wiki@ovh1" {
		t.Errorf("header %q", resp.Header.Get(HeaderStandin))
	}
	resp, body = httpDo(t, "GET", "http://"+addr+"/health", nil)
	var h map[string]string
	if err := json.Unmarshal([]byte(body), &h); err != nil || resp.StatusCode != 200 || h["status"] != "ok" || h["service"] != "wiki" {
		t.Errorf("health: %d %s %v", resp.StatusCode, body, err)
	}
	resp, _ = httpDo(t, "GET", "http://"+addr+"/api/v2/product/3017620422003", nil)
	if resp.StatusCode != 404 || resp.Header.Get(HeaderStandin) != "wiki@ovh1" {
		t.Errorf("generic app answered the Product Opener API: %d", resp.StatusCode)
	}
}

func TestInfluxDB(t *testing.T) {
	_, addr := start(t, "influxdb", Info{Service: "influxdb", Node: "ovh2"}, Options{})
	resp, body := httpDo(t, "GET", "http://"+addr+"/ping", nil)
	if resp.StatusCode != 204 || resp.Header.Get("X-Influxdb-Version") != "offedge-standin" || body != "" {
		t.Errorf("ping: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, _ = httpDo(t, "HEAD", "http://"+addr+"/ping", nil)
	if resp.StatusCode != 204 {
		t.Errorf("HEAD ping: %d", resp.StatusCode)
	}
	resp, body = httpDo(t, "GET", "http://"+addr+"/health", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"status":"pass"`) || resp.Header.Get(HeaderStandin) != "influxdb@ovh2" {
		t.Errorf("health: %d %s", resp.StatusCode, body)
	}
}

func TestLabRequest(t *testing.T) {
	for _, flavor := range []string{"", "off"} {
		t.Run("flavor="+flavor, func(t *testing.T) {
			_, addr := start(t, "http", Info{Service: "s", Node: "n", Flavor: flavor}, Options{})
			h := http.Header{
				"X-Forwarded-For":   {"203.0.113.7", "10.0.0.1"},
				"X-Real-Ip":         {"203.0.113.7"},
				"X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host":  {"world.openfoodfacts.org"},
			}
			req, _ := http.NewRequestWithContext(testCtx(t), "PUT", "http://"+addr+"/lab/request/sub/path?x=1", strings.NewReader("hello"))
			req.Host = "world.openfoodfacts.org"
			for k, v := range h {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got RequestInfo
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			host, _, _ := net.SplitHostPort(got.RemoteAddr)
			if got.Method != "PUT" || got.Host != "world.openfoodfacts.org" || got.Path != "/lab/request/sub/path" || got.Query != "x=1" ||
				host != "127.0.0.1" || got.XForwardedFor != "203.0.113.7, 10.0.0.1" || got.XRealIP != "203.0.113.7" ||
				got.XForwardedProto != "https" || got.XForwardedHost != "world.openfoodfacts.org" || got.BodyBytes != 5 ||
				got.Standin != "s@n" || got.TLS || got.Headers["X-Forwarded-Proto"][0] != "https" {
				t.Errorf("RequestInfo = %+v", got)
			}
		})
	}
}

func TestLabSlow(t *testing.T) {
	_, addr := start(t, "http", testInfo, Options{})
	t.Run("stream", func(t *testing.T) {
		begin := time.Now()
		resp, body := httpDo(t, "GET", "http://"+addr+"/lab/slow?bytes=100000&interval=20ms&chunk=25000", nil)
		if resp.StatusCode != 200 || len(body) != 100000 || resp.ContentLength != 100000 {
			t.Fatalf("status %d, %d bytes (Content-Length %d)", resp.StatusCode, len(body), resp.ContentLength)
		}
		for i := range len(body) {
			if body[i] != slowByte(i) {
				t.Fatalf("byte %d is %q, want %q", i, body[i], slowByte(i))
			}
		}
		// Four chunks, three intervals between them.
		if d := time.Since(begin); d < 60*time.Millisecond {
			t.Errorf("download took %v, want at least 60ms", d)
		}
	})
	t.Run("chunks arrive spaced", func(t *testing.T) {
		c := dial(t, addr)
		fmt.Fprintf(c, "GET /lab/slow?bytes=20&chunk=10&interval=1s HTTP/1.1\r\nHost: x\r\n\r\n")
		buf := make([]byte, 4096)
		var got []byte
		begin := time.Now()
		for !strings.Contains(string(got), "\r\n\r\nabcdefghij") {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
		if strings.Contains(string(got), "klmnopqrst") {
			t.Fatal("second chunk arrived with the first")
		}
		first := time.Since(begin)
		for !strings.Contains(string(got), "klmnopqrst") {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
		if gap := time.Since(begin) - first; gap < 500*time.Millisecond {
			t.Errorf("second chunk after %v, want about 1s", gap)
		}
	})
	for _, q := range []string{"bytes=-1", "bytes=99999999", "bytes=x", "interval=2s", "interval=-1ms", "interval=zz",
		"chunk=0", "chunk=2000000", "bytes=10000000&chunk=1&interval=1s"} {
		t.Run(q, func(t *testing.T) {
			resp, body := httpDo(t, "GET", "http://"+addr+"/lab/slow?"+q, nil)
			if resp.StatusCode != 400 || !strings.Contains(body, "/lab/slow") {
				t.Errorf("%d %q", resp.StatusCode, body)
			}
		})
	}
	t.Run("milliseconds", func(t *testing.T) {
		resp, body := httpDo(t, "GET", "http://"+addr+"/lab/slow?bytes=3&interval=5", nil)
		if resp.StatusCode != 200 || body != "abc" {
			t.Errorf("%d %q", resp.StatusCode, body)
		}
	})
}

func TestHTTPGarbage(t *testing.T) {
	_, addr := start(t, "http", Info{Service: "po-off", Node: "off1", Flavor: "off"}, Options{})
	tests := []struct{ name, send, want string }{
		{"binary", "\x00\x01\x02\xff\xfe garbage\r\n\r\n", "400"},
		{"huge header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n", "431"},
		{"bad version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", "505"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLineConn(t, addr)
			go l.c.Write([]byte(tt.send))
			if got := l.line(); !strings.Contains(got, tt.want) {
				t.Errorf("status line %q, want %s", got, tt.want)
			}
		})
	}
}

// TestHTTPCloseWithBusyConnections closes a server while a slow download
// and a WebSocket are in progress: Close returns promptly and both end.
func TestHTTPCloseWithBusyConnections(t *testing.T) {
	srv, err := New("http", testInfo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	ws := dialWS(t, addr)
	ws.WriteMessage(WSText, []byte("ping"))
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	slow := newLineConn(t, addr)
	slow.send("GET /lab/slow?bytes=100&chunk=10&interval=1s HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := slow.line(); got != "HTTP/1.1 200 OK" {
		t.Fatalf("slow: %q", got)
	}
	begin := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Error("WebSocket still open after Close")
	}
	slow.expectClosed()
}
