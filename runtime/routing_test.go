package runtime

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/offedge/offedge/plan"
)

// TestRoutingEndToEnd: the routing features of an inventory (a node class
// map in an if, a site map, server and route rewrites with the EAN-8
// migration, a regex route with captures, upstream_path, return) go
// through the plan into a running node and answer as nginx would.
func TestRoutingEndToEnd(t *testing.T) {
	appPort, httpPort := freePort(t, "127.0.0.22"), freePort(t, "127.0.0.21")
	ln, err := net.Listen("tcp", "127.0.0.22:"+appPort)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app "+r.RequestURI) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m := loadTestdata(t, "routing", t.TempDir(), strings.NewReplacer("PORT_APP", appPort, "PORT_HTTP", httpPort))
	p, err := plan.Compile(m, "edge", plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	c := httpClient("127.0.0.23")
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tt := range []struct{ target, ua, want string }{
		{"/images/products/1234/1.jpg", "", "200 app /images/products/000/000/000/1234/1.jpg"},
		{"/images/products/123456/1.jpg?x=1", "", "200 app /images/products/000/000/012/3456/1.jpg?x=1"},
		{"/images/products/000/000/012/3456/1.jpg", "", "200 app /images/products/000/000/012/3456/1.jpg"},
		{"/api/product/1.json?f=a", "", "200 app /v2/product/1.json?f=a"},
		{"/size/front.FULL.jpg", "", "200 front.FULL.jpg big"},
		{"/size/front.jpg", "", "200 front.jpg small"},
		{"/size/x", "Googlebot/2.1", "403 "},
		{"/old/a.jpg?z=1", "", "301 http://images.example.org:" + httpPort + "/images/a.jpg?z=1"},
		{"/", "", "301 https://images.example.org/images/"},
		{"/nowhere", "", "404 "},
	} {
		req, _ := http.NewRequest("GET", "http://127.0.0.21:"+httpPort+tt.target, nil)
		req.Host = "images.example.org"
		if tt.ua != "" {
			req.Header.Set("User-Agent", tt.ua)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.target, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := resp.Status[:3] + " "
		switch {
		case resp.StatusCode == 200:
			got += string(body)
		case resp.StatusCode == 301:
			got += resp.Header.Get("Location")
		}
		if got != tt.want {
			t.Errorf("GET %s (%s): %q; want %q", tt.target, tt.ua, got, tt.want)
		}
	}
}
