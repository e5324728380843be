package httpedge

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestRangesCappedAndCoalesced: many small or overlapping ranges cannot
// make a file into a much larger answer (issue 9 finding 8: 4,000 ranges of
// 0-0 turned 100 KB into 568 KB).
func TestRangesCappedAndCoalesced(t *testing.T) {
	nd := newNode(t)
	root := t.TempDir()
	file := bytes.Repeat([]byte("0123456789"), 10_000) // 100 KB
	writeFile(t, filepath.Join(root, "f.bin"), string(file))
	site := Site{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Static: &Static{Root: root}}}}
	_, addr := nd.start(Config{Sites: []Site{site}}, Options{})
	disjoint := func(n int) string {
		var parts []string
		for i := range n {
			parts = append(parts, itoa(int64(3*i))+"-"+itoa(int64(3*i)))
		}
		return strings.Join(parts, ",")
	}
	tests := []struct {
		name   string
		ranges string
		status int
		parts  int // multipart parts; 0: not multipart
		max    int // body bytes at most
	}{
		{"4000 times 0-0", strings.TrimSuffix(strings.Repeat("0-0,", 4000), ","), 206, 0, 1},
		{"overlapping", "0-99,50-199,100-299", 206, 0, 300},
		{"three disjoint", "0-0,10-10,20-20", 206, 3, 1000},
		{"16 disjoint", disjoint(16), 206, 16, 5000},
		{"17 disjoint: whole file", disjoint(17), 200, 0, len(file)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := raw(t, addr, "GET /f.bin HTTP/1.1\r\nHost: s\r\nRange: bytes="+tt.ranges+"\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != tt.status || len(body) > tt.max {
				t.Fatalf("%d with %d bytes; want %d with at most %d", resp.StatusCode, len(body), tt.status, tt.max)
			}
			mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if tt.parts == 0 {
				if mt == "multipart/byteranges" {
					t.Fatalf("multipart answer, want one range")
				}
				return
			}
			mr := multipart.NewReader(strings.NewReader(body), params["boundary"])
			n := 0
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(p)
				if len(b) != 1 {
					t.Fatalf("part %d: %q", n, b)
				}
				n++
			}
			if n != tt.parts {
				t.Fatalf("%d parts, want %d", n, tt.parts)
			}
		})
	}
}

// TestRedirectAbsoluteFormTarget: a request in absolute form
// ("GET http://host/path") is redirected to the path and query, not to
// the whole target glued to the redirect prefix.
func TestRedirectAbsoluteFormTarget(t *testing.T) {
	n := newNode(t)
	// Default: the origin-form request below says Host: x.
	site := Site{Name: "s", Hosts: []string{"s"}, Default: true, Routes: []Route{{Path: "/", Redirect: "https://example.org"}}}
	_, addr := n.start(Config{Sites: []Site{site}}, Options{})
	https := Site{Name: "h", Hosts: []string{"h"}, Routes: []Route{{Path: "/", Redirect: "https://example.org"}}}
	_, haddr := n.start(Config{RedirectHTTPS: true, Sites: []Site{https}}, Options{})
	tests := []struct{ addr, target, want string }{
		{addr, "http://s/a/b?c=d", "https://example.org/a/b?c=d"},
		{addr, "http://s", "https://example.org/"},
		{addr, "/a//./b?x", "https://example.org/a/b?x"},
		{haddr, "http://h/a?b", "https://h/a?b"},
		{haddr, "http://h:80//x/../y", "https://h/y"},
	}
	for _, tt := range tests {
		resp, _ := raw(t, tt.addr, "GET "+tt.target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if got := resp.Header.Get("Location"); got != tt.want {
			t.Errorf("GET %s: Location %q, want %q", tt.target, got, tt.want)
		}
	}
}

// logRecords collects the server's log records.
type logRecords struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecords) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logRecords) with(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestRefusalWarningsRateLimited: a client repeating a refused request
// causes at most one warning a second, and the next says how many were
// suppressed (issue 9 finding 8).
func TestRefusalWarningsRateLimited(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	writeFile(t, filepath.Join(dir, "secret"), "S")
	os.Symlink(filepath.Join(dir, "secret"), filepath.Join(root, "escape"))
	logs := &logRecords{}
	clk := newClock()
	site := Site{Name: "s", Hosts: []string{"s"}, Routes: []Route{{Path: "/", Static: &Static{Root: root}}}}
	_, addr := n.start(Config{Sites: []Site{site}}, Options{Now: clk.Now, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	for range 50 {
		if resp, _ := raw(t, addr, "GET /escape HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"); resp.StatusCode != 403 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if got := logs.with("static file refused"); len(got) != 1 {
		t.Fatalf("%d warnings for 50 refusals within a second, want 1", len(got))
	}
	clk.Add(1001 * 1e6)
	raw(t, addr, "GET /escape HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
	got := logs.with("static file refused")
	if len(got) != 2 || got[1]["suppressed"] != float64(49) {
		t.Fatalf("records %v, want a second one with suppressed=49", got)
	}
}
