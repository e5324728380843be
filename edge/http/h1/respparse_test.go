package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/offedge/offedge/edge/http/guard"
)

// respParsed is what the response parsers are compared on.
type respParsed struct {
	OK            bool
	Proto         string
	Major, Minor  int
	Status        string
	StatusCode    int
	Header        string
	ContentLength int64
	Chunked       bool
	Close         bool
	Trailer       string
	NoBody        bool
}

// respOurs parses in's response head as the upstream client does.
func respOurs(in []byte, method string) (respParsed, error) {
	end, _, err := FindHeadEnd(in, 0)
	if err != nil {
		return respParsed{}, err
	}
	if end < 0 {
		return respParsed{}, errors.New("incomplete head")
	}
	var r ResponseHead
	if err := r.Parse(string(in[:end]), method); err != nil {
		return respParsed{}, err
	}
	return respParsed{OK: true, Proto: r.Proto, Major: r.Major, Minor: r.Minor, Status: r.Status, StatusCode: r.StatusCode,
		Header: headerString(r.Header), ContentLength: r.ContentLength, Chunked: r.Chunked, Close: r.Close,
		Trailer: headerString(r.Trailer), NoBody: r.NoBody}, nil
}

// respReference is net/http's ReadResponse on in.
func respReference(in []byte, method string) respParsed {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), &http.Request{Method: method})
	if err != nil {
		return respParsed{}
	}
	return respParsed{OK: true, Proto: resp.Proto, Major: resp.ProtoMajor, Minor: resp.ProtoMinor, Status: resp.Status,
		StatusCode: resp.StatusCode, Header: headerString(resp.Header), ContentLength: resp.ContentLength,
		Chunked: len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked", Close: resp.Close,
		Trailer: headerString(resp.Trailer), NoBody: resp.Body == http.NoBody}
}

// respIntended reports the heads the edge refuses on purpose where
// net/http reads them.
func respIntended(in []byte, err error, o, ref respParsed) bool {
	if o.OK || !ref.OK {
		return false
	}
	switch {
	case errors.Is(err, guard.ErrCLAndTE) || errors.Is(err, guard.ErrTEOnHTTP10):
		// A length and a coding, or a coding on HTTP/1.0: net/http drops
		// one of them; the edge answers 502 (as nginx), rather than
		// guess where the next response starts.
		return true
	case errors.Is(err, ErrMalformedField):
		// A field name with a space before the colon: net/http keeps
		// it; nginx and the edge refuse (RFC 9112 5.1).
		return strings.Contains(headerString(respHeaderOf(ref, in)), " ")
	case errors.Is(err, ErrMalformedStatus):
		// A signed status ("+20"): net/http's Atoi takes it.
		return strings.ContainsAny(ref.Status[:min(3, len(ref.Status))], "+-")
	}
	return false
}

// respHeaderOf returns net/http's header of in (for respIntended).
func respHeaderOf(_ respParsed, in []byte) http.Header {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), &http.Request{Method: "GET"})
	if err != nil {
		return nil
	}
	return resp.Header
}

func checkRespDifferential(t *testing.T, in []byte, method string) {
	t.Helper()
	o, err := respOurs(in, method)
	ref := respReference(in, method)
	if reflect.DeepEqual(o, ref) || respIntended(in, err, o, ref) {
		return
	}
	t.Errorf("%s %q:\n ours      %+v (%v)\n net/http  %+v", method, in, o, err, ref)
}

var respSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, x-other\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
	"HTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1  200  OK\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 +20 OK\r\n\r\n",
	"HTTP/1.1 abc OK\r\n\r\n",
	"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/0.9 200 OK\r\n\r\n",
	"HTTP/1.1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	"HTTP/1.1 200 OK\r\nno-colon\r\n\r\n",
	"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nx-lower-case: v\r\nSET-COOKIE: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	"HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X-A\r\nContent-Length: 0\r\n\r\n",
	"\r\nHTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\n",
	"",
}

func TestResponseDifferential(t *testing.T) {
	for _, s := range respSeeds {
		for _, m := range []string{"GET", "HEAD"} {
			checkRespDifferential(t, []byte(s), m)
		}
	}
}

// FuzzResponseDifferential holds the response parser to net/http's
// ReadResponse (run: go test -fuzz FuzzResponseDifferential ./edge/http/h1).
func FuzzResponseDifferential(f *testing.F) {
	for _, s := range respSeeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		if len(in) > 8<<10 {
			return
		}
		m := "GET"
		if head {
			m = "HEAD"
		}
		checkRespDifferential(t, in, m)
	})
}

// TestResponseFieldsLongHead holds a head with more fields than are
// searched one by one (the name index) to net/http's reading, with
// repeated names, removals (Connection: close, Transfer-Encoding,
// Trailer, a second Content-Length) and the fields' order.
func TestResponseFieldsLongHead(t *testing.T) {
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\n")
	for i := range 40 {
		fmt.Fprintf(&b, "X-F%d: v%d\r\n", i, i)
		if i%7 == 0 {
			fmt.Fprintf(&b, "set-cookie: c%d=1\r\n", i)
		}
	}
	chunked := b.String() + "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-F3: again\r\n\r\n"
	lengths := b.String() + "Content-Length: 5\r\nContent-Length: 5\r\nPragma: no-cache\r\n\r\n"
	for _, s := range []string{chunked, lengths} {
		for _, m := range []string{"GET", "HEAD"} {
			checkRespDifferential(t, []byte(s), m)
		}
		var r ResponseHead
		if err := r.ParseFields(s, "GET"); err != nil {
			t.Fatal(err)
		}
		if r.Header != nil {
			t.Error("ParseFields filled Header")
		}
		var names []string
		for _, f := range r.Fields {
			names = append(names, f.Name)
		}
		if names[0] != "X-F0" || names[1] != "Set-Cookie" || names[2] != "X-F1" {
			t.Errorf("fields not in the order their names came: %v", names[:3])
		}
		if i := slices.Index(names, "X-F3"); i < 0 || (s == chunked) != (len(r.Fields[i].Values) == 2) {
			t.Errorf("X-F3 %v", r.Fields[i].Values)
		}
		for _, gone := range []string{"Connection", "Transfer-Encoding", "Trailer"} {
			if slices.Contains(names, gone) {
				t.Errorf("%s kept", gone)
			}
		}
	}
}
