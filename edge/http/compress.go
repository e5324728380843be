package httpedge

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compress is a route's compression of its answers (nginx gzip, and zstd
// for clients that accept it). Every field is resolved by the plan.
type Compress struct {
	Gzip bool `json:"gzip"`
	Zstd bool `json:"zstd"`
	// Types are the media types compressed: "text/html", "text/*" or
	// "*"; text/html always is (as nginx's gzip_types). Types that are
	// compressed already (images but SVG, video, audio, archives, woff2)
	// never are, whatever this list says.
	Types []string `json:"types"`
	// MinLength: an answer whose Content-Length is below it is sent as it
	// is (an answer of unknown length is compressed).
	MinLength int64 `json:"min_length"`
	// GzipLevel is 1 (fastest) to 9 (smallest).
	GzipLevel int `json:"gzip_level"`
	// Static serves FILE.gz beside a static FILE to a client accepting gzip
	// (nginx gzip_static), instead of compressing FILE on every answer.
	Static bool `json:"static,omitempty"`
}

// compressPolicy is a Compress compiled once with the chain.
type compressPolicy struct {
	gzip, zstd bool
	exact      map[string]bool // "text/html"
	prefixes   []string        // "text/" from "text/*"
	all        bool            // "*"
	minLength  int64
	gzipLevel  int
	static     bool
}

func compileCompress(c *Compress) (*compressPolicy, error) {
	if !c.Gzip && !c.Zstd {
		return nil, errors.New("compress: neither gzip nor zstd")
	}
	if c.GzipLevel < gzip.BestSpeed || c.GzipLevel > gzip.BestCompression {
		return nil, fmt.Errorf("compress: gzip level %d: use 1 to 9", c.GzipLevel)
	}
	if c.MinLength < 0 {
		return nil, fmt.Errorf("compress: negative min_length %d", c.MinLength)
	}
	if len(c.Types) == 0 {
		return nil, errors.New("compress: no types")
	}
	p := &compressPolicy{gzip: c.Gzip, zstd: c.Zstd, exact: map[string]bool{"text/html": true}, minLength: c.MinLength, gzipLevel: c.GzipLevel, static: c.Static}
	for _, t := range c.Types {
		t = strings.ToLower(strings.TrimSpace(t))
		switch {
		case t == "*":
			p.all = true
		case strings.HasSuffix(t, "/*") && strings.Count(t, "/") == 1 && len(t) > 2:
			p.prefixes = append(p.prefixes, t[:len(t)-1])
		case strings.Count(t, "/") == 1 && !strings.ContainsAny(t, " ;*") && t[0] != '/' && t[len(t)-1] != '/':
			p.exact[t] = true
		default:
			return nil, fmt.Errorf("compress: type %q: use a media type (text/html) or a family (text/*)", t)
		}
	}
	return p, nil
}

// encoding is a content coding the edge produces.
type encoding uint8

const (
	encIdentity encoding = iota
	encGzip
	encZstd
)

func (e encoding) token() string {
	switch e {
	case encGzip:
		return "gzip"
	case encZstd:
		return "zstd"
	}
	return ""
}

// maxAcceptEncoding bounds the Accept-Encoding the edge parses: a longer
// field (real browsers send under 50 bytes) is answered uncompressed.
const maxAcceptEncoding = 1024

// negotiate picks the coding for a request's Accept-Encoding fields (RFC
// 9110 12.5.3): the acceptable coding with the highest q among those
// allowed, zstd before gzip on a tie; "*" stands for any coding not named;
// q=0 refuses; no field, or nothing acceptable, is identity.
func negotiate(fields []string, gz, zs bool) encoding {
	qGzip, qZstd, qAny := -1, -1, -1 // thousandths; -1: not named
	n := 0
	for _, f := range fields {
		n += len(f)
		if n > maxAcceptEncoding {
			return encIdentity
		}
		for f != "" {
			var item string
			item, f, _ = strings.Cut(f, ",")
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			q, ok := parseQ(params)
			if !ok {
				continue // a malformed q: the item is ignored
			}
			switch {
			case strings.EqualFold(name, "gzip"), strings.EqualFold(name, "x-gzip"):
				qGzip = max(qGzip, q)
			case strings.EqualFold(name, "zstd"):
				qZstd = max(qZstd, q)
			case name == "*":
				qAny = max(qAny, q)
			}
		}
	}
	if qGzip < 0 {
		qGzip = qAny
	}
	if qZstd < 0 {
		qZstd = qAny
	}
	if !gz {
		qGzip = -1
	}
	if !zs {
		qZstd = -1
	}
	switch {
	case qZstd > 0 && qZstd >= qGzip:
		return encZstd
	case qGzip > 0:
		return encGzip
	}
	return encIdentity
}

// parseQ reads the q parameter of an Accept-Encoding item in thousandths
// (1000 when absent); ok is false when it is malformed.
func parseQ(params string) (int, bool) {
	q := 1000
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
		if v == "" || len(v) > 5 || (v[0] != '0' && v[0] != '1') {
			return 0, false
		}
		whole := int(v[0]-'0') * 1000
		frac := 0
		if len(v) > 1 {
			if v[1] != '.' {
				return 0, false
			}
			scale := 100
			for _, c := range v[2:] {
				if c < '0' || c > '9' {
					return 0, false
				}
				frac += int(c-'0') * scale
				scale /= 10
			}
		}
		if whole+frac > 1000 {
			return 0, false
		}
		q = whole + frac
	}
	return q, true
}

// compressible reports whether an answer with header h and status code
// is one the policy compresses (or would, for another client: the answers
// that carry Vary: Accept-Encoding).
func (p *compressPolicy) compressible(h http.Header, code int) bool {
	// nginx compresses 200, 403 and 404 only: never a 206 (its range is
	// of the identity body), 204 or 304 (no body), nor a redirect.
	if code != http.StatusOK && code != http.StatusForbidden && code != http.StatusNotFound {
		return false
	}
	if ce := h["Content-Encoding"]; len(ce) > 0 && ce[0] != "" && !strings.EqualFold(ce[0], "identity") {
		return false
	}
	if len(h["Content-Range"]) > 0 {
		return false
	}
	if cl := h["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n < p.minLength {
			return false
		}
	}
	for _, cc := range h["Cache-Control"] {
		if headerListContains(cc, "no-transform") {
			return false
		}
	}
	ct := h["Content-Type"]
	return len(ct) > 0 && p.compressesType(ct[0])
}

// compressesType reports whether the policy compresses answers of type
// ct (a Content-Type value), the other fields allowing.
func (p *compressPolicy) compressesType(ct string) bool {
	mt := mediaType(ct)
	if mt == "" || precompressed(mt) {
		return false
	}
	if p.all || p.exact[mt] {
		return true
	}
	for _, pre := range p.prefixes {
		if strings.HasPrefix(mt, pre) {
			return true
		}
	}
	return false
}

// mediaType is the lower-case type/subtype of a Content-Type value.
func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	t = strings.TrimSpace(t)
	for i := 0; i < len(t); i++ {
		if c := t[i]; c >= 'A' && c <= 'Z' {
			if mt, _, err := mime.ParseMediaType(ct); err == nil {
				return mt
			}
			return strings.ToLower(t)
		}
	}
	return t
}

// precompressed reports whether a media type is compressed already, so
// that compressing it again costs CPU for nothing (or makes it larger).
func precompressed(mt string) bool {
	switch {
	case strings.HasPrefix(mt, "image/"):
		// SVG is XML text; the other images are compressed formats (BMP
		// and TIFF aside, which no one serves).
		return mt != "image/svg+xml" && mt != "image/x-icon" && mt != "image/vnd.microsoft.icon" && mt != "image/bmp"
	case strings.HasPrefix(mt, "video/"), strings.HasPrefix(mt, "audio/"):
		return true
	}
	switch mt {
	case "application/zip", "application/gzip", "application/x-gzip", "application/zstd", "application/x-bzip2",
		"application/x-xz", "application/x-7z-compressed", "application/vnd.rar", "application/x-rar-compressed",
		"application/x-brotli", "application/pdf", "application/ogg", "font/woff", "font/woff2", "application/font-woff",
		"application/octet-stream", "application/x-protobuf", "application/vnd.apache.parquet":
		return true
	}
	return false
}

// encoder is a pooled compressor; one is held per answer being
// compressed and returned when the answer ends.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

// encoderPools hold reusable encoders: gzip by level, zstd at one
// setting. An encoder's memory (gzip ~1 MiB of tables at any level, zstd
// its window) is allocated once per concurrent answer, never per answer.
type encoderPools struct {
	gzip [gzip.BestCompression + 1]sync.Pool
	zstd sync.Pool
}

// zstdWindow bounds what a zstd answer refers back to, and so the
// encoder's memory and what a client must hold to decode: 512 KiB (Go's
// and browsers' decoders accept up to 8 MiB; RFC 8878 asks clients for at
// least 8 MiB).
const zstdWindow = 512 << 10

func (ep *encoderPools) get(e encoding, level int, w io.Writer) encoder {
	switch e {
	case encGzip:
		if z, ok := ep.gzip[level].Get().(*gzip.Writer); ok {
			z.Reset(w)
			return z
		}
		z, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			return nil // levels are checked when the chain is built
		}
		return z
	case encZstd:
		if z, ok := ep.zstd.Get().(*zstd.Encoder); ok {
			z.Reset(w)
			return z
		}
		z, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true), zstd.WithZeroFrames(true))
		if err != nil {
			return nil
		}
		return z
	}
	return nil
}

func (ep *encoderPools) put(e encoding, level int, enc encoder) {
	enc.Reset(io.Discard) // drop the reference to the connection
	switch e {
	case encGzip:
		ep.gzip[level].Put(enc)
	case encZstd:
		ep.zstd.Put(enc)
	}
}

// weakETag is an ETag made weak (RFC 9110 8.8.1): a compressed body is
// not byte-for-byte the identity one the strong tag named.
func weakETag(v string) string {
	if strings.HasPrefix(v, "W/") || v == "" {
		return v
	}
	return "W/" + v
}

var varyAcceptEncoding = "Accept-Encoding"

// addVary adds Accept-Encoding to the answer's Vary unless it is there.
func addVary(h http.Header) {
	for _, v := range h["Vary"] {
		if v == "*" || headerListContains(v, varyAcceptEncoding) {
			return
		}
	}
	h["Vary"] = append(h["Vary"], varyAcceptEncoding)
}
