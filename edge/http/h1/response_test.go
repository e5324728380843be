package h1

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
