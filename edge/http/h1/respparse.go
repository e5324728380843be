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
// The fields are kept as a list (Fields), not a map: a proxy copies them
// to its client's answer once, and a map per response (its allocation,
// an insert and a lookup per field) cost more than the rest of the
// parse. [ResponseHead.Parse] also fills Header, for callers that look
// fields up by name.
//
// The strings are substrings of the head passed to Parse; a ResponseHead
// is made per response (callers keep it past the response's body).
type ResponseHead struct {
	Proto        string // "HTTP/1.1"
	Major, Minor int
	Status       string // "200 OK", as net/http's Response.Status
	StatusCode   int
	// Fields are the header fields in the order their names first came,
	// with the values of repeated lines merged (as a map holds them), and
	// what Header would lack removed (framing fields).
	Fields []Field
	// Header holds Fields as a map: filled by Parse, nil after
	// ParseFields (then [ResponseHead.BuildHeader] fills it).
	Header http.Header
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

	// index finds a name's field once there are too many to search
	// (a long head: hostile or not, no quadratic scan).
	index map[string]int
	// fstore and store back Fields and their values.
	fstore [12]Field
	store  [12]string
}

// Field is a header field: its canonical name and values.
type Field struct {
	Name   string
	Values []string
}

// scanFields is how many fields are searched one by one for a name.
const scanFields = 16

// find returns the index of the field named k, -1 when there is none.
func (r *ResponseHead) find(k string) int {
	if r.index != nil {
		if i, ok := r.index[k]; ok {
			return i
		}
		return -1
	}
	for i := range r.Fields {
		if r.Fields[i].Name == k {
			return i
		}
	}
	return -1
}

// get returns the values of the field named k (nil when absent).
func (r *ResponseHead) get(k string) ([]string, bool) {
	if i := r.find(k); i >= 0 {
		return r.Fields[i].Values, true
	}
	return nil, false
}

// add appends v to the field named k, or a field for it.
func (r *ResponseHead) add(k, v string, vals *[]string) {
	if i := r.find(k); i >= 0 {
		f := &r.Fields[i]
		f.Values = append(f.Values, v)
		return
	}
	n := len(*vals)
	*vals = append(*vals, v)
	r.Fields = append(r.Fields, Field{Name: k, Values: (*vals)[n : n+1 : n+1]})
	if r.index != nil {
		r.index[k] = len(r.Fields) - 1
	} else if len(r.Fields) > scanFields {
		r.index = make(map[string]int, 2*len(r.Fields))
		for i, f := range r.Fields {
			r.index[f.Name] = i
		}
	}
}

// set replaces the values of the field named k, or adds one.
func (r *ResponseHead) set(k string, vv []string) {
	if i := r.find(k); i >= 0 {
		r.Fields[i].Values = vv
		return
	}
	r.Fields = append(r.Fields, Field{Name: k, Values: vv})
	if r.index != nil {
		r.index[k] = len(r.Fields) - 1
	}
}

// del removes the field named k.
func (r *ResponseHead) del(k string) {
	i := r.find(k)
	if i < 0 {
		return
	}
	r.Fields = append(r.Fields[:i], r.Fields[i+1:]...)
	if r.index != nil {
		delete(r.index, k)
		for j := i; j < len(r.Fields); j++ {
			r.index[r.Fields[j].Name] = j
		}
	}
}

// BuildHeader fills Header from Fields.
func (r *ResponseHead) BuildHeader() {
	h := make(http.Header, len(r.Fields))
	for _, f := range r.Fields {
		h[f.Name] = f.Values
	}
	r.Header = h
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
// it) answering a request with the given method, Header included.
func (r *ResponseHead) Parse(s, method string) error {
	if err := r.ParseFields(s, method); err != nil {
		return err
	}
	r.BuildHeader()
	return nil
}

// ParseFields is Parse without the Header map: the fields are in Fields.
func (r *ResponseHead) ParseFields(s, method string) error {
	// Values in r's own store: a response's fields outlive the next
	// response on the connection (trailers are written after the body),
	// so r is made per response, not reused.
	*r = ResponseHead{}
	r.Fields = r.fstore[:0]
	vals := r.store[:0]
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
	if len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		return ErrMalformedField
	}
	for {
		k, v, next, spaced, err := nextField(rest)
		if err != nil || spaced {
			// A name with a space before the colon: RFC 9112 5.1 has a
			// proxy remove it or refuse; nginx refuses (upstream sent
			// invalid header), and so does the edge (net/http keeps it
			// as is).
			return ErrMalformedField
		}
		if k == "" {
			break
		}
		rest = next
		r.add(k, v, &vals)
	}
	if pr, ok := r.get("Pragma"); ok && len(pr) > 0 && pr[0] == "no-cache" {
		if _, ok := r.get("Cache-Control"); !ok {
			r.set("Cache-Control", []string{"no-cache"})
		}
	}
	conn, _ := r.get("Connection")
	hasClose := valuesContainToken(conn, "close")
	switch {
	case r.Major < 1:
		r.Close = true
	case r.Major == 1 && r.Minor == 0:
		r.Close = hasClose || !valuesContainToken(conn, "keep-alive")
	default:
		r.Close = hasClose
		if hasClose {
			r.del("Connection")
		}
	}
	return r.parseFraming(method)
}

// parseFraming decides the body's framing as net/http's readTransfer for a
// response, refusing a length together with a transfer coding, and a
// transfer coding on HTTP/1.0 (guard.CheckFraming: the same rule as for
// requests; net/http drops the length, or the coding).
func (r *ResponseHead) parseFraming(method string) error {
	te, hasTE := r.get("Transfer-Encoding")
	cls, hasCL := r.get("Content-Length")
	http11 := r.Major > 1 || r.Major == 1 && r.Minor >= 1 || r.Major == 0 && r.Minor == 0
	if err := guard.CheckFraming(hasCL, hasTE, http11); err != nil {
		return err
	}
	if hasTE {
		r.del("Transfer-Encoding")
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
		r.set("Content-Length", cls)
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
	if tr, ok := r.get("Trailer"); ok && r.Chunked {
		r.del("Trailer")
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
