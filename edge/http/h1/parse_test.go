package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// parsed is what both parsers are compared on: the decision (the status
// of a refusal, 0 when the handler got the request, -1 when the server
// closed without a word) and the fields the handler sees.
type parsed struct {
	Status        int
	Method        string
	RequestURI    string
	URL           string
	Path, RawPath string
	RawQuery      string
	Host          string
	Proto         string
	Major, Minor  int
	Header        string
	ContentLength int64
	TE            []string
	Close         bool
	Trailer       string
}

func headerString(h http.Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%q=%q;", k, h[k])
	}
	return b.String()
}

func fromRequest(r *http.Request) parsed {
	return parsed{
		Method: r.Method, RequestURI: r.RequestURI, URL: r.URL.String(),
		Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery,
		Host: r.Host, Proto: r.Proto, Major: r.ProtoMajor, Minor: r.ProtoMinor,
		Header: headerString(r.Header), ContentLength: r.ContentLength,
		TE: r.TransferEncoding, Close: r.Close, Trailer: headerString(r.Trailer),
	}
}

// ours parses the first request of in as the server does.
func ours(in []byte) parsed {
	end, _, err := findHeadEnd(in, 0)
	if err != nil {
		return parsed{Status: 400}
	}
	if end < 0 {
		if len(in) == 0 {
			return parsed{Status: -1}
		}
		return parsed{Status: 400} // EOF inside the head
	}
	var h head
	h.reset()
	if err := h.parse(string(in[:end])); err != nil {
		var se *statusError
		if !errors.As(err, &se) {
			return parsed{Status: 999}
		}
		return parsed{Status: se.code}
	}
	if h.method == "OPTIONS" && h.target == "*" {
		return parsed{Status: 200} // answered by the server itself
	}
	r := &http.Request{
		Method: h.method, RequestURI: h.target, URL: &h.url, Host: h.host, Proto: h.proto,
		ProtoMajor: h.major, ProtoMinor: h.minor, Header: h.header, ContentLength: h.contentLength,
		Close: h.close, Trailer: h.trailer,
	}
	if h.chunked {
		r.TransferEncoding = []string{"chunked"}
	}
	return fromRequest(r)
}

// reference runs net/http's server on one in-memory connection carrying
// in, and reports what it decided about the first request.
func reference(in []byte) parsed {
	conn := &memConn{r: bytes.NewReader(in), closed: make(chan struct{})}
	got := make(chan parsed, 1)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case got <- fromRequest(r):
			default:
			}
			w.Header().Set("Connection", "close")
		}),
		ErrorLog: nil,
	}
	srv.SetKeepAlivesEnabled(false)
	ln := &oneConnListener{c: conn, done: make(chan struct{})}
	go srv.Serve(ln)
	<-conn.closed
	close(ln.done)
	select {
	case p := <-got:
		return p
	default:
	}
	out := conn.w.String()
	if out == "" {
		return parsed{Status: -1}
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		return parsed{Status: 998}
	}
	return parsed{Status: resp.StatusCode}
}

type memConn struct {
	r      *bytes.Reader
	mu     sync.Mutex
	w      bytes.Buffer
	once   sync.Once
	closed chan struct{}
}

func (c *memConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Write(p)
}
func (c *memConn) Close() error                     { c.once.Do(func() { close(c.closed) }); return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

type oneConnListener struct {
	c    net.Conn
	once sync.Once
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.c })
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, io.EOF
}
func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

// intended reports the inputs where the edge decides differently from
// net/http on purpose.
func intended(in []byte, o, ref parsed) bool {
	// Content-Length with Transfer-Encoding, or Transfer-Encoding on
	// HTTP/1.0: net/http drops the length or ignores the coding, the edge
	// refuses (request smuggling, guard.CheckFraming).
	if o.Status == 400 && ref.Status == 0 {
		var h head
		h.reset()
		end, _, _ := findHeadEnd(in, 0)
		err := h.parse(string(in[:end]))
		var se *statusError
		return errors.As(err, &se) && h.hasTE && (h.hasCL || ref.Minor == 0)
	}
	// "PRI * HTTP/2.0": net/http hands the HTTP/2 preface to the handler;
	// the edge speaks HTTP/2 only after ALPN.
	if o.Status == 505 && ref.Status == 0 && ref.Major == 2 {
		return true
	}
	return false
}

var parseSeeds = []string{
	"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n",
	"GET /a/b?c=d&e HTTP/1.1\r\nHost: example.org\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n",
	"GET /caf%C3%A9?q HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a%2fb HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET //x/y HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /x? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /x?? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /(x)*!' HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://other.example/p?q HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n",
	"CONNECT example.org:443 HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nConnection: close\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nConnection: Keep-Alive, Close\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: \r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n",
	"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  2\r\n\t3\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n \r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nx-lower: 1\r\nCONTENT-type: t\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: \x80\xff\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nTrailer: X-T\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx",
	"GET / HTTP/1.1\r\nHost: a\r\nExpect: other\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET / HTTP/0.9\r\n\r\n",
	"GET / HTTP/1.12\r\nHost: a\r\n\r\n",
	"GET / http/1.1\r\nHost: a\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /?\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n",
	"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"",
	"GET",
}

func TestParseDifferential(t *testing.T) {
	for _, s := range parseSeeds {
		checkDifferential(t, []byte(s))
	}
}

func checkDifferential(t *testing.T, in []byte) {
	t.Helper()
	o, ref := ours(in), reference(in)
	if reflect.DeepEqual(o, ref) || intended(in, o, ref) {
		return
	}
	t.Errorf("%q:\n ours      %+v\n net/http  %+v", in, o, ref)
}

// FuzzParseDifferential holds the parser to net/http's decisions and
// fields (run: go test -fuzz FuzzParseDifferential ./edge/http/h1).
func FuzzParseDifferential(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 8<<10 {
			return
		}
		checkDifferential(t, in)
	})
}

// TestValidValueWords holds validValue's word-at-a-time test to the byte
// rule for every byte at every place of a word and of the tail.
func TestValidValueWords(t *testing.T) {
	for n := 1; n <= 19; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("a", n))
				b[pos] = byte(c)
				if got, want := validValue(string(b)), validValueByte(byte(c)); got != want {
					t.Fatalf("validValue(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}

// TestCanonicalKeyCases holds canonicalKey to http.CanonicalHeaderKey on
// names in every case pattern, with the refusals of non-token bytes.
func TestCanonicalKeyCases(t *testing.T) {
	for _, k := range []string{"host", "Host", "HOST", "hOST", "content-length", "Content-length", "CONTENT-LENGTH",
		"x-forwarded-for", "X-Forwarded-For", "x--y", "-x", "x-", "a1-b2", "Sec-Ch-Ua", "sec-ch-ua", "te", "TE", "Te",
		"x_y", "X_Y", "accept-encoding", strings.Repeat("ab-", 30)} {
		key, ok, spaced := canonicalKey(k)
		if !ok || spaced || key != http.CanonicalHeaderKey(k) {
			t.Errorf("canonicalKey(%q) = %q %v %v, want %q", k, key, ok, spaced, http.CanonicalHeaderKey(k))
		}
	}
	for _, k := range []string{"", "a:b", "a\x00", "é", "a\tb", "a(b"} {
		if _, ok, _ := canonicalKey(k); ok {
			t.Errorf("canonicalKey(%q) accepted", k)
		}
	}
	if key, ok, spaced := canonicalKey("bad name"); !ok || !spaced || key != "bad name" {
		t.Errorf("canonicalKey(bad name) = %q %v %v", key, ok, spaced)
	}
}
