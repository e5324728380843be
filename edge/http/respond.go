package httpedge

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/offedge/offedge/edge/http/vars"
)

// Expires is nginx's expires directive: what Expires and Cache-Control
// fields a route sets on its successful answers (200, 201, 204, 206, 301,
// 302, 303, 304, 307, 308), replacing the ones the answer had.
type Expires struct {
	// Mode is "epoch" (Expires in 1970, Cache-Control: no-cache), "max"
	// (Expires in 2037, max-age ten years), "access" (Seconds from now) or
	// "modified" (Seconds from the answer's Last-Modified; from now when it
	// has none). A route without expires has a nil *Expires.
	Mode string `json:"mode"`
	// Seconds is the offset of access and modified; a negative result
	// sends Cache-Control: no-cache.
	Seconds int64 `json:"seconds,omitempty"`
}

// respPolicy is what a site or route adds to its answers as they are sent:
// expires, then the added header fields (nginx's headers filter order).
// It is built once with the chain; the recorder applies it in WriteHeader.
type respPolicy struct {
	headers []addHeader
	expires *Expires
	// vars: some value is a template, evaluated on the request's
	// variables (the recorder's vq) when the answer is written.
	vars bool
}

// addHeader is one add_header. v is shared by every answer that carries
// it (nothing appends to a header's value slice after it is set); a
// value with variables is tmpl instead.
type addHeader struct {
	k      string
	v      []string
	tmpl   *vars.Template
	always bool
}

func hasTemplates(hs []addHeader) bool {
	for _, h := range hs {
		if h.tmpl != nil {
			return true
		}
	}
	return false
}

// nginxAddStatus reports whether nginx's add_header (without always) and
// expires act on an answer with this status.
func nginxAddStatus(code int) bool {
	switch code {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		return true
	}
	return false
}

// apply adds the policy's fields to h for an answer with status code;
// q holds the request's variables when the policy has templates (nil:
// those fields are left out). A field whose value is empty is not sent
// (nginx's add_header).
func (p *respPolicy) apply(h http.Header, code int, now func() time.Time, q *vars.Request) {
	ok := nginxAddStatus(code)
	if ok && p.expires != nil {
		p.expires.apply(h, now())
	}
	for i := range p.headers {
		a := &p.headers[i]
		if !ok && !a.always {
			continue
		}
		if a.tmpl == nil {
			h[a.k] = a.v
			continue
		}
		if q == nil {
			continue
		}
		if v, err := a.tmpl.Eval(q); err == nil && v != "" && httpguts.ValidHeaderFieldValue(v) {
			h[a.k] = []string{v}
		}
	}
}

// touchesFileFields reports whether the policy replaces or reads a field
// a static file's answer sets (presetFields): then the answer is built in
// the header map.
func (p *respPolicy) touchesFileFields() bool {
	if p.expires != nil && p.expires.Mode == "modified" {
		return true
	}
	for i := range p.headers {
		switch p.headers[i].k {
		case "Etag", "Content-Type", "Last-Modified", "Accept-Ranges", "Content-Length":
			return true
		}
	}
	return false
}

var (
	expiresEpoch   = []string{"Thu, 01 Jan 1970 00:00:01 GMT"}
	expiresMax     = []string{"Thu, 31 Dec 2037 23:55:55 GMT"}
	cacheNoCache   = []string{"no-cache"}
	cacheMaxAgeMax = []string{"max-age=315360000"}
)

// apply sets Expires and Cache-Control as nginx's ngx_http_set_expires does.
func (e *Expires) apply(h http.Header, now time.Time) {
	switch e.Mode {
	case "epoch":
		h["Expires"], h["Cache-Control"] = expiresEpoch, cacheNoCache
		return
	case "max":
		h["Expires"], h["Cache-Control"] = expiresMax, cacheMaxAgeMax
		return
	}
	now = now.Truncate(time.Second)
	at, maxAge := now.Add(time.Duration(e.Seconds)*time.Second), e.Seconds
	if e.Mode == "modified" {
		if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
			at = lm.Add(time.Duration(e.Seconds) * time.Second)
			maxAge = int64(at.Sub(now) / time.Second)
		}
	}
	h["Expires"] = []string{at.UTC().Format(http.TimeFormat)}
	if maxAge < 0 {
		h["Cache-Control"] = cacheNoCache
		return
	}
	h["Cache-Control"] = []string{"max-age=" + strconv.FormatInt(maxAge, 10)}
}

func (e *Expires) check() error {
	switch e.Mode {
	case "epoch", "max":
		if e.Seconds != 0 {
			return fmt.Errorf("expires %s takes no seconds", e.Mode)
		}
	case "access", "modified":
	default:
		return fmt.Errorf("expires mode %q: use epoch, max, access or modified", e.Mode)
	}
	return nil
}

// headerSet compiles a header map into addHeaders, sorted by name (the
// order fields are listed in the plan), refusing invalid names; values
// are templates of the site's scope (nginx variables). An empty literal
// value sends nothing, as nginx.
func headerSet(m map[string]string, always bool, scope *vars.Scope) ([]addHeader, error) {
	var out []addHeader
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !validHeaderName(k) {
			return nil, fmt.Errorf("header %q: not a valid header name", k)
		}
		if !httpguts.ValidHeaderFieldValue(m[k]) {
			return nil, fmt.Errorf("header %q: the value holds a control character", k)
		}
		t, err := vars.Parse(m[k], scope)
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", k, err)
		}
		a := addHeader{k: http.CanonicalHeaderKey(k), always: always}
		if t.IsLiteral() {
			if m[k] == "" {
				continue
			}
			a.v = []string{m[k]}
		} else {
			a.tmpl = t
		}
		out = append(out, a)
	}
	return out, nil
}

// headerList is a site's or route's fields: headers, then headers_always.
func headerList(headers, always map[string]string, scope *vars.Scope) ([]addHeader, error) {
	for k := range always {
		if _, ok := headers[k]; ok {
			return nil, fmt.Errorf("header %q is in both headers and headers_always", k)
		}
	}
	a, err := headerSet(headers, false, scope)
	if err != nil {
		return nil, err
	}
	b, err := headerSet(always, true, scope)
	if err != nil {
		return nil, err
	}
	return append(a, b...), nil
}

// mergeHeaders is a route's fields on top of its site's (the route's field
// wins by name), sorted by name.
func mergeHeaders(site, route []addHeader) []addHeader {
	out := slices.Clone(site)
	for _, r := range route {
		i := slices.IndexFunc(out, func(a addHeader) bool { return a.k == r.k })
		if i >= 0 {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b addHeader) int { return strings.Compare(a.k, b.k) })
	return out
}
