package httpedge

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/offedge/offedge/edge/http/guard"
	"github.com/offedge/offedge/edge/http/vars"
)

// sendRedirect answers code with Location loc; a relative loc gets the
// request's scheme and host, as nginx's absolute_redirect.
func (s *Server) sendRedirect(w *recorder, r *http.Request, st *site, q *vars.Request, code int, loc string) {
	if strings.HasPrefix(loc, "/") {
		host := q.Host
		if host == "" {
			host = st.serverName
		}
		host = hostForURL(host)
		// nginx's port_in_redirect: the listener's port unless the scheme's own.
		if p := q.ServerPort; p != "" && !(p == "80" && q.Scheme == "http") && !(p == "443" && q.Scheme == "https") {
			host += ":" + p
		}
		loc = q.Scheme + "://" + host + loc
	}
	w.Header().Set("Location", escapeLocation(loc))
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n</body>\r\n</html>\r\n", code, http.StatusText(code), code, http.StatusText(code))
	}
}

// escapeLocation percent-encodes the bytes a Location field may not carry
// raw (controls, space, non-ASCII and the few ASCII characters RFC 3986
// never allows).
func escapeLocation(loc string) string {
	need := false
	for i := 0; i < len(loc); i++ {
		if c := loc[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0 {
			need = true
			break
		}
	}
	if !need {
		return loc
	}
	var b strings.Builder
	for i := 0; i < len(loc); i++ {
		c := loc[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// answer sends what a return or a redirecting rewrite decided.
func (s *Server) answer(w *recorder, r *http.Request, st *site, q *vars.Request, a vars.Answer) {
	switch {
	case a.Code == 444:
		panic(http.ErrAbortHandler) // nginx 444: close, no answer
	case vars.IsRedirectCode(a.Code):
		s.sendRedirect(w, r, st, q, a.Code, a.Location)
	case a.HasBody:
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", strconv.Itoa(len(a.Body)))
		w.WriteHeader(a.Code)
		if r.Method != http.MethodHead {
			w.Write([]byte(a.Body))
		}
	case a.Code >= 400:
		s.errorPage(w, r, st, a.Code, http.StatusText(a.Code))
	default:
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(a.Code)
	}
}

// runSteps runs a program and answers what it decided; it reports the
// outcome (vars.Answered once the request is answered, an error included).
func (s *Server) runSteps(w *recorder, r *http.Request, st *site, p *vars.Program, q *vars.Request, changed *bool) vars.Outcome {
	o, a, err := p.Run(q, changed)
	switch {
	case err != nil:
		st.log.Warn("rewrite phase failed", "listener", s.name(), "site", st.name, "uri", q.URI, "err", err)
		s.errorPage(w, r, st, http.StatusInternalServerError, "the request could not be rewritten")
		return vars.Answered
	case o == vars.Answered:
		s.answer(w, r, st, q, a)
	}
	return o
}

// chooseRoute runs the site's rewrite phase and chooses the route as nginx
// does: the site's steps once, then the route's steps; a URI they change
// ("last", or no flag) chooses the route again, at most
// vars.MaxURIChanges times (then 500, as nginx). It returns nil when it
// answered the request itself; brk reports a "break" rewrite in the route
// (its upstream_path no longer applies). On return, r.URL carries the
// rewritten path and query.
func (s *Server) chooseRoute(w *recorder, r *http.Request, st *site, q *vars.Request) (rt *route, brk bool) {
	changed := false
	if st.steps.Len() > 0 && s.runSteps(w, r, st, st.steps, q, &changed) == vars.Answered {
		return nil, false
	}
	for changes := 0; ; changes++ {
		rt = st.routes.match(q.URI, q)
		if rt == nil {
			w.route, w.resp = nil, st.resp
			s.errorPage(w, r, st, http.StatusNotFound, "not found")
			return nil, false
		}
		if rt.steps.Len() == 0 {
			break
		}
		w.route, w.resp = rt, rt.resp
		c := false
		o := s.runSteps(w, r, st, rt.steps, q, &c)
		changed = changed || c
		if o == vars.Answered {
			return nil, false
		}
		if o == vars.StopHere {
			brk = true
			break
		}
		if !c {
			break
		}
		if changes+1 > vars.MaxURIChanges {
			st.log.Warn("rewrite or internal redirection cycle", "listener", s.name(), "site", st.name, "uri", q.URI)
			s.errorPage(w, r, st, http.StatusInternalServerError, "rewrite or internal redirection cycle")
			return nil, false
		}
	}
	if changed {
		r.URL.Path, r.URL.RawPath, r.URL.RawQuery = q.URI, "", q.Args
		r.URL.ForceQuery = false
	}
	return rt, brk
}

// upstreamTarget applies a route's upstream_path to the request before it
// is proxied (nginx's proxy_pass with a URI): a static one replaces the
// part of the path the route's prefix matched, unless a "break" rewrite
// changed the URI in this route (then the URI goes as it is); a template
// is the whole target (path and query).
func (rt *route) upstreamTarget(r *http.Request, q *vars.Request, brk bool) error {
	switch {
	case rt.upPathTmpl != nil:
		v, err := rt.upPathTmpl.Eval(q)
		if err != nil {
			return err
		}
		u, err := url.ParseRequestURI(v)
		if err != nil || u.Host != "" || !strings.HasPrefix(v, "/") {
			return fmt.Errorf("upstream path %q is not a path", v)
		}
		norm, err := guard.NormalizePath(u.EscapedPath())
		if err != nil {
			return fmt.Errorf("upstream path %q: %w", v, err)
		}
		r.URL.Path = guard.DecodePath(norm)
		r.URL.RawPath = ""
		if r.URL.Path != norm {
			r.URL.RawPath = norm
		}
		r.URL.RawQuery, r.URL.ForceQuery = u.RawQuery, false
	case rt.upPath != "" && !brk:
		rest := strings.TrimPrefix(r.URL.Path, rt.path)
		if rt.exact {
			rest = ""
		}
		r.URL.Path, r.URL.RawPath = rt.upPath+rest, ""
	}
	return nil
}
