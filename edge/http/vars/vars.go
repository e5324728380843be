// Package vars is the HTTP edge's one variable engine: nginx's request
// variables ($host, $uri, $args, $arg_NAME, $http_NAME, $cookie_NAME, ...),
// regex captures ($1..$9), map results and set variables, parsed once into
// templates and evaluated on the normalised request.
//
// Everything an attacker controls is bounded: a template's output is at
// most MaxValueBytes, a request keeps at most 9 captures, and a regex is at
// most MaxRegexBytes long and MaxRegexInsts instructions once compiled.
// nginx's PCRE features that RE2 lacks (backreferences, lookaround, atomic
// groups, possessive quantifiers, recursion) are refused by name.
package vars

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// MaxValueBytes bounds what one template evaluates to (a rewritten URI, a
// header value, a map source): beyond it evaluation fails with
// ErrTooLong and the request is answered 500, as nginx answers a broken
// rewrite.
const MaxValueBytes = 16 << 10

// MaxCaptures is how many positional captures ($1..$9) a match keeps, as nginx.
const MaxCaptures = 9

// ErrTooLong is returned when a template's value would exceed MaxValueBytes.
var ErrTooLong = errors.New("value longer than 16 KiB")

// Request is the request variables are evaluated on, with what the edge
// knows about it. One per request, built by the edge only when a site uses
// variables; not safe for concurrent use.
type Request struct {
	R *http.Request
	// Host is the normalised host ($host): the Host header without port,
	// lower-cased; ServerName the site's first name ($server_name).
	Host       string
	ServerName string
	// Scheme is "http" or "https"; ServerPort the listener's port.
	Scheme     string
	ServerPort string
	// URI is the current URI ($uri): the normalised, decoded path, as a
	// rewrite leaves it. Args is the current query ($args).
	URI  string
	Args string

	subject string
	caps    [2 * (MaxCaptures + 1)]int
	ncaps   int // pairs in caps (group 0 included); 0: no match yet

	scope *Scope
	sets  []string
	isSet []bool
	maps  []mapMemo
	ext   []string
}

type mapMemo struct {
	done bool
	v    string
}

// Reset prepares q for a request of a site whose names scope resolves.
func (q *Request) Reset(r *http.Request, scope *Scope) {
	sets, isSet, maps, ext := q.sets[:0], q.isSet[:0], q.maps[:0], q.ext[:0]
	*q = Request{R: r, scope: scope, sets: sets, isSet: isSet, maps: maps, ext: ext}
	if scope != nil {
		for range scope.externs {
			q.ext = append(q.ext, "")
		}
		for range scope.sets {
			q.sets = append(q.sets, "")
			q.isSet = append(q.isSet, false)
		}
		for range scope.maps {
			q.maps = append(q.maps, mapMemo{})
		}
	}
	if r != nil && r.URL != nil {
		q.URI, q.Args = r.URL.Path, r.URL.RawQuery
	}
}

// SetCaptures records a successful match of re-compiled idx (as returned
// by regexp's FindStringSubmatchIndex) on subject: $1..$9 now name its
// groups, until the next successful match.
func (q *Request) SetCaptures(subject string, idx []int) {
	q.subject = subject
	n := min(len(idx), len(q.caps))
	copy(q.caps[:n], idx[:n])
	q.ncaps = n / 2
}

// Capture returns $n ("" when the last match had no such group).
func (q *Request) Capture(n int) string {
	if n >= q.ncaps {
		return ""
	}
	a, b := q.caps[2*n], q.caps[2*n+1]
	if a < 0 || b < a {
		return ""
	}
	return q.subject[a:b]
}

// Set gives the set variable slot (from Scope.SetSlot) its value.
func (q *Request) Set(slot int, v string) {
	q.sets[slot], q.isSet[slot] = v, true
}

// SetExtern gives the external variable slot (from Scope.ExternSlot) its
// value: what the edge learns while serving ($upstream_addr, $status).
func (q *Request) SetExtern(slot int, v string) {
	if slot >= 0 && slot < len(q.ext) {
		q.ext[slot] = v
	}
}

// clientAddr is $remote_addr: the client's address without port.
func (q *Request) clientAddr() string {
	host, _, err := net.SplitHostPort(q.R.RemoteAddr)
	if err != nil {
		return q.R.RemoteAddr
	}
	return host
}

// binaryAddr is $binary_remote_addr: the client's address in 4 or 16 bytes.
func (q *Request) binaryAddr() string {
	ap, err := netip.ParseAddrPort(q.R.RemoteAddr)
	if err != nil {
		return ""
	}
	b := ap.Addr().Unmap().AsSlice()
	return string(b)
}

func (q *Request) clientPort() string {
	_, port, err := net.SplitHostPort(q.R.RemoteAddr)
	if err != nil {
		return ""
	}
	return port
}

// requestURI is $request_uri: the target as the client sent it (path and
// query, before normalisation), whatever its form.
func (q *Request) requestURI() string {
	u := q.R.RequestURI
	if u == "" && q.R.URL != nil {
		u = q.R.URL.RequestURI()
	}
	if !strings.HasPrefix(u, "/") {
		// absolute-form: http://host/path?query
		if i := strings.Index(u, "://"); i >= 0 {
			rest := u[i+3:]
			if j := strings.IndexAny(rest, "/?"); j >= 0 {
				u = rest[j:]
				if u[0] == '?' {
					u = "/" + u
				}
			} else {
				u = "/"
			}
		}
	}
	return u
}

// header is $http_NAME: the field's values joined by ", " ("; " for Cookie), as nginx.
func (q *Request) header(key string) string {
	vv := q.R.Header[key]
	switch len(vv) {
	case 0:
		return ""
	case 1:
		return vv[0]
	}
	sep := ", "
	if key == "Cookie" {
		sep = "; "
	}
	return strings.Join(vv, sep)
}

// arg is $arg_NAME: the raw (still encoded) value of the first argument
// named name, compared ignoring case as nginx does.
func (q *Request) arg(name string) string {
	for kv := range strings.SplitSeq(q.Args, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// cookie is $cookie_NAME: the value of the first cookie named name.
func (q *Request) cookie(name string) string {
	for _, line := range q.R.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && strings.EqualFold(k, name) {
				return v
			}
		}
	}
	return ""
}
