package h1

import (
	"bytes"
	"net/http"

	"github.com/offedge/offedge/edge/http/guard"
	"net/url"
	"strconv"
	"strings"
)

// statusError is a request refused before it reaches the handler: code and
// the short text net/http would send.
type statusError struct {
	code   int
	text   string
	detail bool // the text follows the status (net/http's badRequestError)
}

func (e *statusError) Error() string { return strconv.Itoa(e.code) + " " + e.text }

var (
	errMalformed     = &statusError{http.StatusBadRequest, "malformed request", false}
	errBadHeader     = &statusError{http.StatusBadRequest, "malformed header field", false}
	errBadName       = &statusError{http.StatusBadRequest, "invalid header name", true}
	errBadHost       = &statusError{http.StatusBadRequest, "malformed Host header", true}
	errNoHost        = &statusError{http.StatusBadRequest, "missing required Host header", true}
	errManyHosts     = &statusError{http.StatusBadRequest, "too many Host headers", false}
	errBadLength     = &statusError{http.StatusBadRequest, "bad Content-Length", false}
	errTwoLengths    = &statusError{http.StatusBadRequest, "differing Content-Length fields", false}
	errBadTrailer    = &statusError{http.StatusBadRequest, "bad trailer key", false}
	errTooLarge      = &statusError{http.StatusRequestHeaderFieldsTooLarge, "Request Header Fields Too Large", false}
	errUnsupportedTE = &statusError{http.StatusNotImplemented, "Unsupported transfer encoding", false}
	errVersion       = &statusError{http.StatusHTTPVersionNotSupported, "unsupported protocol version", true}
	errExpectation   = &statusError{http.StatusExpectationFailed, "Expectation Failed", false}
)

// head is a parsed request head. Its strings are substrings of one copy of
// the head's bytes; header and vals are reused from request to request.
type head struct {
	method, target, proto string
	major, minor          int
	url                   url.URL
	host                  string
	contentLength         int64 // -1 with chunked
	hasCL                 bool  // a Content-Length field was present (even with chunked)
	hasTE                 bool  // a Transfer-Encoding field was present (even on HTTP/1.0)
	chunked               bool
	close                 bool // the connection closes after this request
	keepAlive10           bool // HTTP/1.0 with Connection: keep-alive
	expectContinue        bool
	trailer               http.Header
	// hostN and host0 are the Host fields' count and first value: kept
	// out of the map, which net/http's request has without Host.
	hostN int
	host0 string
	// seen marks the fields the head's decisions look up (seenPragma...),
	// so that a request without them costs no lookup of each.
	seen uint8
	fields
}

// Bits of head.seen.
const (
	seenPragma uint8 = 1 << iota
	seenCacheControl
	seenConnection
	seenExpect
	seenTE
	seenCL
	seenTrailer
)

// lookup returns the values of field k, noted in h.seen as bit.
func (h *head) lookup(bit uint8, k string) ([]string, bool) {
	if h.seen&bit == 0 {
		return nil, false
	}
	vv, ok := h.header[k]
	return vv, ok
}

// fields are the header fields of a head, request or response.
type fields struct {
	header  http.Header
	badName bool     // a field name with a space (refused after the version and Host checks, as net/http)
	vals    []string // backing store for single-valued fields
}

// reset readies h for the next request, keeping its map and slices.
func (h *head) reset() {
	hdr, vals := h.header, h.vals
	clear(hdr)
	clear(vals)
	*h = head{fields: fields{header: hdr, vals: vals[:0]}}
	if h.header == nil {
		h.header = make(http.Header, 16)
	}
}

// findHeadEnd reports the length of the request head at the start of b
// (through the empty line that ends it), scanning lines from offset from
// (a line start already known not to end the head). It returns -1 and the
// offset to resume from when the head is not complete yet, and an error
// when the first line is empty.
func findHeadEnd(b []byte, from int) (end, resume int, err error) {
	for i := from; i < len(b); {
		j := indexByte(b[i:], '\n')
		if j < 0 {
			return -1, i, nil
		}
		line := b[i : i+j]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			if i == 0 {
				return -1, 0, errMalformed
			}
			return i + j + 1, 0, nil
		}
		i += j + 1
		from = i
	}
	return -1, from, nil
}

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }

// nextLine splits s at its first LF, dropping a CR before it, as
// bufio.Reader.ReadLine does.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// parse fills h from a complete request head s (as found by findHeadEnd),
// with net/http's decisions (readRequest, textproto.ReadMIMEHeader,
// readTransfer and the server's checks), plus the edge's refusal of
// Content-Length with Transfer-Encoding.
func (h *head) parse(s string) error {
	line, rest := nextLine(s)
	m, r, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(r, " ")
	if !ok1 || !ok2 {
		return errMalformed
	}
	if !isToken(m) {
		return errMalformed
	}
	h.method, h.target, h.proto = m, target, proto
	var ok bool
	if h.major, h.minor, ok = parseVersion(proto); !ok {
		return errMalformed
	}
	if err := h.parseURL(); err != nil {
		return err
	}
	if err := h.parseRequestFields(rest); err != nil {
		return err
	}
	hdr := h.header
	if h.hostN > 1 {
		return errManyHosts
	}
	h.host = h.url.Host
	if h.host == "" && h.hostN == 1 {
		h.host = h.host0
	}
	// Pragma: no-cache without Cache-Control means Cache-Control: no-cache
	// (RFC 7234), as net/http sets it.
	if pr, ok := h.lookup(seenPragma, "Pragma"); ok && len(pr) > 0 && pr[0] == "no-cache" {
		if _, ok := h.lookup(seenCacheControl, "Cache-Control"); !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	conn, _ := h.lookup(seenConnection, "Connection")
	hasClose := valuesContainToken(conn, "close")
	if h.major == 1 && h.minor == 0 || h.major == 0 {
		h.close = hasClose || !valuesContainToken(conn, "keep-alive") || h.major == 0
	} else {
		h.close = hasClose
	}
	if err := h.parseFraming(); err != nil {
		return err
	}
	// The server's checks, in net/http's order.
	if h.major != 1 {
		return errVersion
	}
	if h.minor >= 1 && h.hostN == 0 && h.method != "CONNECT" {
		return errNoHost
	}
	if h.hostN == 1 && !validHost(h.host0) {
		return errBadHost
	}
	if h.badName {
		return errBadName
	}
	if e, _ := h.lookup(seenExpect, "Expect"); len(e) > 0 && e[0] != "" {
		if !hasToken(e[0], "100-continue") {
			return errExpectation
		}
		h.expectContinue = h.minor >= 1 && h.contentLength != 0
	}
	// The edge's own rules, where its handler would refuse: a length and
	// a transfer coding together, or a transfer coding on HTTP/1.0, are
	// request smuggling (RFC 9112 6.1 and 6.3).
	if err := guard.CheckFraming(h.hasCL, h.hasTE, h.major == 1 && h.minor >= 1); err != nil {
		return &statusError{http.StatusBadRequest, err.Error(), true}
	}
	if h.major == 1 && h.minor == 0 && len(conn) > 0 {
		h.keepAlive10 = hasToken(conn[0], "keep-alive")
	}
	return nil
}

// parseURL parses the request target as url.ParseRequestURI does, without
// allocating for the common origin form ("/path?query" with no byte that
// the URL type would keep escaped).
func (h *head) parseURL() error {
	t := h.target
	if len(t) > 0 && t[0] == '/' && (len(t) < 2 || t[1] != '/') {
		q := len(t)
		simple := true
		for i := 0; i < len(t); i++ {
			c := t[i]
			if c == '?' {
				q = i
				break
			}
			if !plainPathByte[c] {
				simple = false
				break
			}
		}
		if simple {
			rawQuery := ""
			force := false
			if q < len(t) {
				rawQuery = t[q+1:]
				for i := 0; i < len(rawQuery); i++ {
					if c := rawQuery[i]; c < 0x20 || c == 0x7f {
						return errMalformed
					}
				}
				if rawQuery == "" {
					force = !strings.Contains(rawQuery, "?")
				}
			}
			h.url = url.URL{Path: t[:q], RawQuery: rawQuery, ForceQuery: force}
			return nil
		}
	}
	raw := t
	authority := h.method == "CONNECT" && !strings.HasPrefix(raw, "/")
	if authority {
		raw = "http://" + raw
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return errMalformed
	}
	if authority {
		u.Scheme = ""
	}
	h.url = *u
	return nil
}

// plainPathByte marks the bytes a path may hold that url.URL keeps as they
// are (Path equal to the raw path, no RawPath).
var plainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()

// parseFields reads the header fields of s (after the start line) into
// h.header, as textproto.ReadMIMEHeader followed by net/http's server
// checks of names and values.
func (h *fields) parseFields(s string) error {
	if len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		return errBadHeader
	}
	for {
		key, v, rest, spaced, err := nextField(s)
		if err != nil {
			return err
		}
		if key == "" {
			return nil
		}
		s = rest
		h.badName = h.badName || spaced
		if vv, ok := h.header[key]; ok {
			h.header[key] = append(vv, v)
			continue
		}
		n := len(h.vals)
		h.vals = append(h.vals, v)
		h.header[key] = h.vals[n : n+1 : n+1]
	}
}

// parseRequestFields is parseFields for a request head: Host is counted
// apart (h.hostN, h.host0), not put in the map, and the fields the head's
// decisions look up are noted in h.seen.
func (h *head) parseRequestFields(s string) error {
	if len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		return errBadHeader
	}
	for {
		key, v, rest, spaced, err := nextField(s)
		if err != nil {
			return err
		}
		if key == "" {
			return nil
		}
		s = rest
		h.badName = h.badName || spaced
		switch key {
		case "Host":
			if h.hostN++; h.hostN == 1 {
				h.host0 = v
			}
			continue
		case "Pragma":
			h.seen |= seenPragma
		case "Cache-Control":
			h.seen |= seenCacheControl
		case "Connection":
			h.seen |= seenConnection
		case "Expect":
			h.seen |= seenExpect
		case "Transfer-Encoding":
			h.seen |= seenTE
		case "Content-Length":
			h.seen |= seenCL
		case "Trailer":
			h.seen |= seenTrailer
		}
		if vv, ok := h.header[key]; ok {
			h.header[key] = append(vv, v)
			continue
		}
		n := len(h.vals)
		h.vals = append(h.vals, v)
		h.header[key] = h.vals[n : n+1 : n+1]
	}
}

// nextField reads the field line (with its obs-fold continuation lines)
// at the start of s: its canonical name, its value, and what follows it.
// The name is "" at the empty line that ends the fields. spaced reports
// a name with a space before the colon (kept as is, for the caller to
// refuse). s must not start with a space or a tab (parseFields checks the
// first line; a later one starting so is a continuation, taken here).
func nextField(s string) (key, v, rest string, spaced bool, err error) {
	line, rest := nextLine(s)
	if line == "" {
		return "", "", rest, false, nil
	}
	colon := strings.IndexByte(line, ':')
	if colon < 0 {
		return "", "", "", false, errBadHeader
	}
	k := line[:colon]
	v = trimSPHT(line[colon+1:])
	// obs-fold: continuation lines are joined with one space, as
	// textproto does (RFC 9112 5.2 allows replacing it with SP); the
	// joined value loses its leading blanks only, as there.
	if len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		var b strings.Builder
		b.WriteString(v)
		for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			rest = strings.TrimLeft(rest, " \t")
			var l string
			l, rest = nextLine(rest)
			b.WriteByte(' ')
			b.WriteString(trimSPHT(l))
		}
		v = strings.TrimLeft(b.String(), " \t")
	}
	key, ok, spaced := canonicalKey(k)
	if !ok {
		return "", "", "", false, errBadHeader
	}
	if !validValue(v) {
		return "", "", "", false, errBadHeader
	}
	return key, v, rest, spaced, nil
}

// parseFraming decides the body's framing as net/http's readTransfer.
func (h *head) parseFraming() error {
	hdr := h.header
	if te, ok := h.lookup(seenTE, "Transfer-Encoding"); ok {
		h.hasTE = true
		delete(hdr, "Transfer-Encoding")
		// Ignored on HTTP/1.0, as net/http (which takes HTTP/0.0 for 1.1).
		if h.major > 1 || h.major == 1 && h.minor >= 1 || h.major == 0 && h.minor == 0 {
			if len(te) != 1 || !equalFold(te[0], "chunked") {
				return errUnsupportedTE
			}
			h.chunked = true
		}
	}
	cls, _ := h.lookup(seenCL, "Content-Length")
	if len(cls) > 1 {
		first := trimSpace(cls[0])
		for _, c := range cls[1:] {
			if trimSpace(c) != first {
				return errTwoLengths
			}
		}
		hdr["Content-Length"] = cls[:1:1]
		cls[0] = first
		cls = cls[:1]
	}
	var n int64
	if len(cls) > 0 {
		h.hasCL = true
		c := trimSpace(cls[0])
		if c == "" {
			return errBadLength
		}
		v, err := strconv.ParseUint(c, 10, 63)
		if err != nil {
			return errBadLength
		}
		n = int64(v)
	}
	if h.chunked {
		delete(hdr, "Content-Length") // as net/http; parse refuses the pair
		h.contentLength = -1
	} else {
		h.contentLength = n
	}
	if tr, ok := h.lookup(seenTrailer, "Trailer"); ok && h.chunked {
		delete(hdr, "Trailer")
		var ok bool
		if h.trailer, ok = declaredTrailer(tr); !ok {
			return errBadTrailer
		}
	}
	return nil
}

// declaredTrailer returns the names a Trailer field declares (values nil,
// nil for none), as net/http's fixTrailer; false for a name that frames
// the message (Transfer-Encoding, Trailer, Content-Length).
func declaredTrailer(tr []string) (http.Header, bool) {
	var t http.Header
	for _, v := range tr {
		for f := range strings.SplitSeq(v, ",") {
			f = trimSpace(f)
			if f == "" {
				continue
			}
			f = http.CanonicalHeaderKey(f)
			switch f {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, false
			}
			if t == nil {
				t = make(http.Header)
			}
			t[f] = nil
		}
	}
	return t, true
}

func parseVersion(v string) (major, minor int, ok bool) {
	switch v {
	case "HTTP/1.1":
		return 1, 1, true
	case "HTTP/1.0":
		return 1, 0, true
	}
	if len(v) != len("HTTP/X.Y") || v[:5] != "HTTP/" || v[6] != '.' {
		return 0, 0, false
	}
	if !isDigit(v[5]) || !isDigit(v[7]) {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// canonicalKey checks a field name (a token) and returns its canonical
// form (Content-Length), without allocating when the name is already
// canonical or a common one.
func canonicalKey(k string) (key string, ok, spaced bool) {
	if k == "" {
		return "", false, false
	}
	// One table load per byte: is it a token byte, and of the case the
	// canonical form has not there (lower case first and after '-',
	// upper case elsewhere)?
	var off uint8
	wrong := uint8(kLower)
	for i := 0; i < len(k); i++ {
		c := k[i]
		f := keyClass[c]
		if f&kTok == 0 {
			if c == ' ' {
				spaced = true
				continue
			}
			return "", false, false
		}
		off |= f & wrong
		wrong = kUpper
		if c == '-' {
			wrong = kLower
		}
	}
	if spaced {
		return k, true, true // kept as is, refused later
	}
	if off == 0 {
		// A substring of the head, which the values point into too: no
		// lookup (a hash of the name) to intern it.
		return k, true, false
	}
	var buf [64]byte
	var b []byte
	if len(k) <= len(buf) {
		b = buf[:len(k)]
	} else {
		b = make([]byte, len(k))
	}
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if v, ok := commonKeys[string(b)]; ok {
		return v, true, false
	}
	return string(b), true, false
}

// commonKeys interns the canonical forms of names clients commonly send
// in another case (a lowercase name needs no allocation).
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Authorization", "Cache-Control", "Connection", "Content-Encoding", "Content-Length",
		"Content-Type", "Cookie", "Date", "Dnt", "Expect", "Forwarded", "From", "Host",
		"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
		"Keep-Alive", "Origin", "Pragma", "Priority", "Range", "Referer", "Sec-Ch-Ua",
		"Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Sec-Fetch-Dest", "Sec-Fetch-Mode",
		"Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Websocket-Extensions", "Sec-Websocket-Key",
		"Sec-Websocket-Protocol", "Sec-Websocket-Version", "Te", "Trailer", "Transfer-Encoding",
		"Upgrade", "Upgrade-Insecure-Requests", "User-Agent", "Via", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Requested-With",
	} {
		m[k] = k
	}
	return m
}()

// Classes of keyClass.
const (
	kTok   = 1 << iota // RFC 9110 tchar
	kLower             // a-z
	kUpper             // A-Z
)

// keyClass classifies a field name's bytes for canonicalKey.
var keyClass = func() (t [256]uint8) {
	for c := range t {
		if tokenByte[c] {
			t[c] |= kTok
		}
		switch {
		case 'a' <= c && c <= 'z':
			t[c] |= kLower
		case 'A' <= c && c <= 'Z':
			t[c] |= kUpper
		}
	}
	return t
}()

// tokenByte marks RFC 9110 tchar.
var tokenByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return true
}

// validValue reports whether v holds only field-value bytes, eight at a
// time: a word with no byte below 0x20 and none equal to 0x7f is valid
// whole (the two tests are the exact "has a byte less than" and "has a
// zero byte" word tricks); a word that may hold one, a tab included, and
// the tail are looked at byte by byte.
func validValue(v string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := uint64(v[i]) | uint64(v[i+1])<<8 | uint64(v[i+2])<<16 | uint64(v[i+3])<<24 |
			uint64(v[i+4])<<32 | uint64(v[i+5])<<40 | uint64(v[i+6])<<48 | uint64(v[i+7])<<56
		d := x ^ (ones * 0x7f)
		if (x-ones*0x20)&^x&highs != 0 || (d-ones)&^d&highs != 0 {
			break
		}
	}
	for ; i < len(v); i++ {
		if !validValueByte(v[i]) {
			return false
		}
	}
	return true
}

// validValueByte: field-value bytes (VCHAR, SP, HTAB, obs-text).
func validValueByte(c byte) bool { return c >= 0x20 && c != 0x7f || c == '\t' }

// hostByte marks the bytes net/http accepts in a Host field.
var hostByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!$%&()*+,-.:;=[']_~" {
		t[c] = true
	}
	return t
}()

func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if !hostByte[h[i]] {
			return false
		}
	}
	return true
}

func trimSPHT(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// trimSpace trims ASCII space as textproto.TrimString.
func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// valuesContainToken reports whether a comma-separated list in any of vv
// holds token (case-insensitive), as httpguts.HeaderValuesContainsToken.
func valuesContainToken(vv []string, token string) bool {
	for _, v := range vv {
		for {
			f, rest, more := strings.Cut(v, ",")
			if equalFold(trimSPHT(f), token) {
				return true
			}
			if !more {
				break
			}
			v = rest
		}
	}
	return false
}

// hasToken reports whether token appears in v on token boundaries (space,
// comma, tab), case-insensitively, as net/http's hasToken.
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if sp > 0 && !isBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isBoundary(v[end]) {
			continue
		}
		if equalFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func isBoundary(c byte) bool { return c == ' ' || c == ',' || c == '\t' }
