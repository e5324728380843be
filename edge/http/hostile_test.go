package httpedge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

func TestHostileRequests(t *testing.T) { testHostileRequests(t, Options{}) }

// TestHostileRequestsNetHTTP1: the same on net/http's HTTP/1 loop (Options.NetHTTP1),
// where the connection's head scanner enforces the framing rules.
func TestHostileRequestsNetHTTP1(t *testing.T) { testHostileRequests(t, Options{NetHTTP1: true}) }

func testHostileRequests(t *testing.T, opts Options) {
	nd := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "ok %d", n)
	})
	// Marked default: HTTP/1.0 without Host goes to the default site.
	def := nd.proxySite("s", []string{"s"}, be.addr())
	def.Default = true
	_, addr := nd.start(Config{Sites: []Site{def}}, opts)
	long := strings.Repeat("a", 9000)
	tests := []struct {
		name   string
		req    string
		status int
	}{
		{"normal", "GET / HTTP/1.1\r\nHost: s\r\n\r\n", 200},
		{"request line over 8KiB", "GET /" + long + " HTTP/1.1\r\nHost: s\r\n\r\n", 414},
		{"headers over 16KiB", "GET / HTTP/1.1\r\nHost: s\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("b", 1000)+"\r\n", 20) + "\r\n", 431},
		{"huge request line", "GET /" + strings.Repeat("a", 40000) + " HTTP/1.1\r\nHost: s\r\n\r\n", 431},
		{"CL and TE together", "POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE and CL together", "POST / HTTP/1.1\r\nHost: s\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n", 400},
		{"CL and TE in HTTP/1.0", "POST / HTTP/1.0\r\nHost: s\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"CL in HTTP/1.0", "POST / HTTP/1.0\r\nHost: s\r\nContent-Length: 4\r\n\r\nabcd", 200},
		{"chunked alone", "POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200},
		{"two different CL", "POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd", 400},
		{"TE not chunked", "POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"invalid Host chars", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"invalid Host label", "GET / HTTP/1.1\r\nHost: a..b\r\n\r\n", 400},
		{"Host port out of range", "GET / HTTP/1.1\r\nHost: s:99999\r\n\r\n", 400},
		{"Host IPv6 port out of range", "GET / HTTP/1.1\r\nHost: [::1]:65536\r\n\r\n", 400},
		{"no Host in 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
		{"no Host in 1.0", "GET / HTTP/1.0\r\n\r\n", 200},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: s\r\nHost: t\r\n\r\n", 400},
		{"CONNECT", "CONNECT 192.0.2.1:443 HTTP/1.1\r\nHost: 192.0.2.1:443\r\n\r\n", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := raw(t, addr, tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tt.status)
			}
		})
	}
}

// TestSmugglingPipelined sends a request with Content-Length and
// Transfer-Encoding pipelined, in the same write, behind requests of every
// framing: each smuggling attempt must be refused, the requests before it
// answered.
func TestSmugglingPipelined(t *testing.T) { testSmugglingPipelined(t, Options{}) }

// TestSmugglingPipelinedNetHTTP1: the same on net/http's HTTP/1 loop (Options.NetHTTP1),
// where the connection's head scanner enforces the framing rules.
func TestSmugglingPipelinedNetHTTP1(t *testing.T) { testSmugglingPipelined(t, Options{NetHTTP1: true}) }

func testSmugglingPipelined(t *testing.T, opts Options) {
	nd := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "ok %d", n)
	})
	_, addr := nd.start(Config{Sites: []Site{nd.proxySite("s", []string{"s"}, be.addr())}}, opts)
	smuggle := "POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: s\r\n\r\n"
	tests := []struct {
		name   string
		before []string // requests pipelined ahead, each answered 200
	}{
		{"behind a GET", []string{"GET / HTTP/1.1\r\nHost: s\r\n\r\n"}},
		{"behind two GETs", []string{"GET / HTTP/1.1\r\nHost: s\r\n\r\n", "HEAD / HTTP/1.1\r\nHost: s\r\n\r\n"}},
		{"behind a Content-Length body", []string{"POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 30\r\n\r\nTransfer-Encoding: chunked\r\n\r\n"}},
		{"behind a chunked body", []string{"POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nab\r\nc\r\n0\r\nX-Trailer: 1\r\n\r\n"}},
		{"behind HTTP/1.0 keep-alive", []string{"GET / HTTP/1.0\r\nHost: s\r\nConnection: keep-alive\r\n\r\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, strings.Join(tt.before, "")+smuggle)
			br := bufio.NewReader(c)
			for i, req := range tt.before {
				resp, err := http.ReadResponse(br, &http.Request{Method: strings.Fields(req)[0]})
				if err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 {
					t.Fatalf("answer %d: %d %q", i, resp.StatusCode, b)
				}
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("answer to the smuggling request: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 400 {
				t.Fatalf("smuggling request pipelined %s: %d %q, want 400", tt.name, resp.StatusCode, b)
			}
		})
	}
}

// TestContentLengthScanKeepAlive checks that the head scanner re-arms per
// request on a keep-alive connection: a legit chunked request after a
// request with Content-Length is not refused.
func TestContentLengthScanKeepAlive(t *testing.T) {
	nd := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	})
	_, addr := nd.start(Config{Sites: []Site{nd.proxySite("s", []string{"s"}, be.addr())}}, Options{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, req := range []string{
		"POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 1\r\n\r\nz",
	} {
		io.WriteString(c, req)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
}

func TestHeadScanner(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", true},
		{"GET / HTTP/1.1\r\ncontent-LENGTH:1\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nX-Content-Length: 1\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nContent-Length: 1\r\n", false}, // body
		{"GET /Content-Length: HTTP/1.1\r\n\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			// Byte by byte and in one piece.
			var h1, h2 headScanner
			got1 := false
			for i := range len(tt.in) {
				got1 = h1.feed([]byte{tt.in[i]}) || got1
			}
			got2 := h2.feed([]byte(tt.in))
			if got1 != tt.want || got2 != tt.want {
				t.Fatalf("byte-wise %v, whole %v, want %v", got1, got2, tt.want)
			}
		})
	}
}

func TestSlowClientsTimedOut(t *testing.T) {
	n := newNode(t)
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			w.WriteHeader(400)
		}
	})
	cfg := Config{
		Sites:  []Site{n.proxySite("s", []string{"s"}, be.addr())},
		Limits: Limits{ReadHeaderTimeout: 300 * time.Millisecond, ReadBodyTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond},
	}
	_, addr := n.start(cfg, Options{})
	tests := []struct {
		name, send string
	}{
		{"slow headers", "GET / HTTP/1.1\r\nHost: s\r\n"},
		{"slow body", "POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 100\r\n\r\nabc"},
		{"idle keep-alive", "GET / HTTP/1.1\r\nHost: s\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tt.send)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			// Read until the server closes the connection.
			_, err = io.Copy(io.Discard, c)
			if err != nil {
				t.Fatalf("server did not close the connection: %v", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("closed after %v", d)
			}
		})
	}
}

// TestSlowHTTPTest runs Debian's slowhttptest (slowloris headers, then slow
// body) against the server for a few seconds while a normal client keeps
// getting answers.
func TestSlowHTTPTest(t *testing.T) {
	n := newNode(t)
	bin := testutil.RequireBinary(t, "slowhttptest")
	be := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "fine")
	})
	cfg := Config{
		Sites:  []Site{n.proxySite("s", []string{"127.0.0.1"}, be.addr())},
		Limits: Limits{ReadHeaderTimeout: time.Second, ReadBodyTimeout: time.Second, IdleTimeout: 2 * time.Second},
	}
	srv, addr := n.start(cfg, Options{})
	_, port, _ := net.SplitHostPort(addr)
	for _, mode := range []struct{ name, flag string }{{"slowloris", "-H"}, {"slow body", "-B"}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			// 600 connections at 200/s, 1 s between follow-ups, 4 s test.
			cmd := exec.CommandContext(ctx, bin, mode.flag, "-c", "600", "-r", "200", "-i", "1", "-l", "4",
				"-u", "http://127.0.0.1:"+port+"/", "-t", "POST", "-x", "24", "-p", "2")
			out := &strings.Builder{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			c := &http.Client{Timeout: 2 * time.Second}
			var ok, failed atomic.Int64
			maxOpen := int64(0)
		loop:
			for {
				select {
				case <-done:
					break loop
				default:
				}
				resp, err := c.Get("http://" + addr + "/")
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if string(b) == "fine" {
						ok.Add(1)
					} else {
						failed.Add(1)
					}
				} else {
					failed.Add(1)
				}
				maxOpen = max(maxOpen, srv.Stats().OpenConnections)
				time.Sleep(20 * time.Millisecond) // pacing of the probe client, not synchronisation
			}
			t.Logf("%s: normal client %d ok, %d failed; server held at most %d connections", mode.name, ok.Load(), failed.Load(), maxOpen)
			if maxOpen < 50 {
				t.Fatalf("slowhttptest did not load the server (max %d open connections):\n%s", maxOpen, out.String())
			}
			if ok.Load() < 20 || failed.Load() > ok.Load()/10 {
				t.Fatalf("normal client starved: %d ok, %d failed", ok.Load(), failed.Load())
			}
		})
	}
}

// TestHeadScannerFraming: the scanner follows bodies (Content-Length,
// chunked with extensions and trailers) to find each pipelined head, fed
// byte by byte and in one piece.
func TestHeadScannerFraming(t *testing.T) {
	tests := []struct {
		name, in string
		want     []uint8
	}{
		{"two GETs", "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n", []uint8{0, 0}},
		{"CL body hiding a header", "POST / HTTP/1.1\r\nContent-Length: 22\r\n\r\nTransfer-Encoding: x\r\n\r\nGET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", []uint8{headCL, headTE}},
		{"chunked then CL+TE", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", []uint8{headTE, headCL | headTE}},
		{"bad chunk size loses", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\r\n\r\n", []uint8{headTE, headLost}},
		{"bad length loses", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\nGET / HTTP/1.1\r\n\r\n", []uint8{headLost, headLost}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, bytewise := range []bool{false, true} {
				var h headScanner
				h.reset()
				if bytewise {
					for i := range len(tt.in) {
						h.feed([]byte{tt.in[i]})
					}
				} else {
					h.feed([]byte(tt.in))
				}
				var got []uint8
				for range tt.want {
					got = append(got, h.take())
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("bytewise %v: heads %v, want %v", bytewise, got, tt.want)
				}
			}
		})
	}
}

// FuzzHeadScanner: the scanner never panics, keeps at most
// maxPendingHeads heads, and sees the same heads whatever the reads' sizes.
func FuzzHeadScanner(f *testing.F) {
	f.Add("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", 7)
	f.Add("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", 20)
	f.Fuzz(func(t *testing.T, in string, cut int) {
		if cut < 0 || cut > len(in) {
			cut = len(in) / 2
		}
		var a, b headScanner
		a.reset()
		b.reset()
		a.feed([]byte(in))
		b.feed([]byte(in[:cut]))
		b.feed([]byte(in[cut:]))
		if len(a.heads) > maxPendingHeads || fmt.Sprint(a.heads, a.state) != fmt.Sprint(b.heads, b.state) {
			t.Fatalf("one read: %v %d; two reads: %v %d", a.heads, a.state, b.heads, b.state)
		}
	})
}

// TestHTTP1ParksIdleConnections: plain HTTP/1 is served by edge/http/h1,
// whose idle keep-alive connections hold no goroutine and no buffer.
func TestHTTP1ParksIdleConnections(t *testing.T) {
	nd := newNode(t)
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, addr := nd.start(Config{Listener: "t", Sites: []Site{{
		Name: "s", Hosts: []string{"example.org"}, Default: true,
		Routes: []Route{{Path: "/", Static: &Static{Root: root}}},
	}}}, Options{})
	const n = 20
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /a.txt HTTP/1.1\r\nHost: example.org\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "hello" {
			t.Fatalf("body %q", b)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.h1.Stats().Parked.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections parked, want %d", s.h1.Stats().Parked.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
