package h1

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/offedge/offedge/edge/http/guard"
)

// ResponseHead is a parsed response head: what the edge's upstream client
// reads from a server, parsed in one pass by the request parser's field
// code with the decisions of net/http's ReadResponse (status line,
// textproto's fields, readTransfer's framing), and the edge's framing rule
// on top: a head whose body length two readers could disagree on is
// refused. FuzzResponseDifferential holds the two to that; the deliberate
// differences are listed there (respIntended).
//
// The strings are substrings of the head passed to Parse; Header is a
// fresh map per response (callers keep it past the response's body).
type ResponseHead struct {
	Proto        string // "HTTP/1.1"
	Major, Minor int
	Status       string // "200 OK", as net/http's Response.Status
	StatusCode   int
	Header       http.Header
	// ContentLength is the body's length; -1 when the body is chunked or
	// delimited by the connection's close (a HEAD answer: the length the
	// field announced, or -1).
	ContentLength int64
	Chunked       bool // Transfer-Encoding: chunked (the field is removed from Header)
	// Close: the connection ends after this response (HTTP/1.0 without
	// keep-alive, Connection: close, or a body delimited by the close).
	Close bool
	// Trailer holds the names a chunked response's Trailer field declares
	// (values nil); the field is then removed from Header.
	Trailer http.Header
	// NoBody: the response has no body whatever its fields say (HEAD, 1xx,
	// 204, 304), or a zero Content-Length.
	NoBody bool

	f fields
	// store backs the fields' values: a ResponseHead is made per
	// response, so its fields may point into it.
	store [12]string
}

// Errors of [ResponseHead.Parse].
var (
	ErrMalformedResponse = errors.New("malformed HTTP response")
	ErrMalformedStatus   = errors.New("malformed HTTP status code")
	ErrMalformedVersion  = errors.New("malformed HTTP version")
	ErrMalformedField    = errors.New("malformed MIME header line")
	ErrUnsupportedTE     = errors.New("unsupported transfer encoding")
	ErrTwoLengths        = errors.New("message cannot contain multiple Content-Length headers")
	ErrBadLength         = errors.New("bad Content-Length")
	ErrBadTrailerKey     = errors.New("bad trailer key")
)

// FindHeadEnd reports the length of the head at the start of b (through
// the empty line that ends it), scanning from offset from (a line start
// already known not to end the head). It returns -1 and the offset to
// resume from when the head is not complete yet, and an error when its
// first line is empty.
func FindHeadEnd(b []byte, from int) (end, resume int, err error) {
	end, resume, err = findHeadEnd(b, from)
	if err != nil {
		err = ErrMalformedResponse
	}
	return end, resume, err
}

// Parse fills r from a complete response head s (as FindHeadEnd finds
// it) answering a request with the given method.
func (r *ResponseHead) Parse(s, method string) error {
	// A fresh map, and values in r's own store: a response's fields
	// outlive the next response on the connection (trailers are written
	// after the body), so r is made per response, not reused.
	*r = ResponseHead{}
	r.f = fields{header: make(http.Header, 8), vals: r.store[:0]}
	line, rest := nextLine(s)
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return ErrMalformedResponse
	}
	r.Proto = proto
	r.Status = strings.TrimLeft(status, " ")
	code, _, _ := strings.Cut(r.Status, " ")
	// Three digits (net/http's Atoi also takes "+20").
	if len(code) != 3 || !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) {
		return ErrMalformedStatus
	}
	r.StatusCode = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if r.Major, r.Minor, ok = parseVersion(proto); !ok {
		return ErrMalformedVersion
	}
	f := &r.f
	if err := f.parseFields(rest); err != nil || f.badName {
		// A name with a space before the colon: RFC 9112 5.1 has a proxy
		// remove it or refuse; nginx refuses (upstream sent invalid
		// header), and so does the edge (net/http keeps it as is).
		return ErrMalformedField
	}
	hdr := f.header
	r.Header = hdr
	if pr, ok := hdr["Pragma"]; ok && len(pr) > 0 && pr[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	conn := hdr["Connection"]
	hasClose := valuesContainToken(conn, "close")
	switch {
	case r.Major < 1:
		r.Close = true
	case r.Major == 1 && r.Minor == 0:
		r.Close = hasClose || !valuesContainToken(conn, "keep-alive")
	default:
		r.Close = hasClose
		if hasClose {
			delete(hdr, "Connection")
		}
	}
	return r.parseFraming(method)
}

// parseFraming decides the body's framing as net/http's readTransfer for a
// response, refusing a length together with a transfer coding, and a
// transfer coding on HTTP/1.0 (guard.CheckFraming: the same rule as for
// requests; net/http drops the length, or the coding).
func (r *ResponseHead) parseFraming(method string) error {
	hdr := r.Header
	te, hasTE := hdr["Transfer-Encoding"]
	cls, hasCL := hdr["Content-Length"]
	http11 := r.Major > 1 || r.Major == 1 && r.Minor >= 1 || r.Major == 0 && r.Minor == 0
	if err := guard.CheckFraming(hasCL, hasTE, http11); err != nil {
		return err
	}
	if hasTE {
		delete(hdr, "Transfer-Encoding")
		if len(te) != 1 || !equalFold(te[0], "chunked") {
			return ErrUnsupportedTE
		}
		r.Chunked = true
	}
	if len(cls) > 1 {
		first := trimSpace(cls[0])
		for _, c := range cls[1:] {
			if trimSpace(c) != first {
				return ErrTwoLengths
			}
		}
		cls = []string{first}
		hdr["Content-Length"] = cls
	}
	length := int64(-1)
	if len(cls) > 0 {
		c := trimSpace(cls[0])
		v, err := strconv.ParseUint(c, 10, 63)
		if c == "" || err != nil {
			return ErrBadLength
		}
		length = int64(v)
	}
	switch {
	case method == http.MethodHead:
		r.ContentLength, r.NoBody = length, true
	case r.StatusCode/100 == 1 || r.StatusCode == 204 || r.StatusCode == 304:
		r.ContentLength, r.NoBody = 0, true
	case r.Chunked:
		r.ContentLength = -1
	case length >= 0:
		r.ContentLength, r.NoBody = length, length == 0
	default:
		r.ContentLength = -1
		r.Close = true // delimited by the close (RFC 9112 6.3)
	}
	if tr, ok := hdr["Trailer"]; ok && r.Chunked {
		delete(hdr, "Trailer")
		if r.Trailer, ok = declaredTrailer(tr); !ok {
			return ErrBadTrailerKey
		}
	}
	return nil
}

// ParseTrailer parses a chunked body's trailer section s (field lines
// through the empty line, as FindHeadEnd finds it) with the fields' rules
// of a head.
func ParseTrailer(s string) (http.Header, error) {
	f := fields{header: make(http.Header, 2)}
	if err := f.parseFields(s); err != nil || f.badName {
		return nil, ErrMalformedField
	}
	return f.header, nil
}
