package httpedge

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/edge/http/guard"
	"github.com/offedge/offedge/edge/http/vars"
)

// ServeHTTP is the whole per-request path: refuse what is malformed, pick
// the site by Host, the route by path, apply the site's rules, dispatch.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	ch := s.chain.Load()
	s.stats.requests.Add(1)
	s.stats.inFlight.Add(1)
	rec := recPool.Get().(*recorder)
	rec.reset(w)
	rec.now = s.opts.Now
	rec.start = start
	ec, _ := r.Context().Value(connCtxKey{}).(*edgeConn)
	rec.conn = ec
	defer func() {
		rec.finish()
		code, end := rec.loggedStatus(), s.opts.Now()
		if !rec.upStart.IsZero() {
			rec.upTime = max(end.Sub(rec.upStart), 1)
		}
		s.stats.countStatus(code)
		rs := s.nohost
		switch {
		case rec.route != nil:
			rs = rec.route.stats
		case rec.site != nil:
			rs = rec.site.stats
		}
		rs.observe(code, rec.bytes, end.Sub(start))
		if rec.site != nil {
			rec.site.protect.observeAnswer(r, code)
		}
		if rec.site != nil && rec.site.alog != nil {
			rec.site.alog.log(r, rec, start, end)
		}
		rec.reset(nil)
		recPool.Put(rec)
		s.stats.inFlight.Add(-1) // last: every count above is in
	}()
	s.serve(ch, rec, r, ec)
}

var recPool = sync.Pool{New: func() any { return new(recorder) }}

func (s *Server) serve(ch *chain, w *recorder, r *http.Request, ec *edgeConn) {
	// Request smuggling: net/http drops Content-Length when
	// Transfer-Encoding is present, and ignores Transfer-Encoding on
	// HTTP/1.0; the connection's head scanner saw the fields as sent.
	if ec != nil && r.ProtoMajor == 1 {
		head := ec.nextHead()
		if head&headLost != 0 {
			s.plainError(w, r, http.StatusBadRequest, "request framing could not be followed")
			return
		}
		if err := guard.CheckFraming(head&headCL != 0, head&headTE != 0, r.ProtoAtLeast(1, 1)); err != nil {
			s.plainError(w, r, http.StatusBadRequest, err.Error())
			return
		}
	}
	if len(r.RequestURI) > MaxRequestLineBytes {
		s.plainError(w, r, http.StatusRequestURITooLong, "request line too long")
		return
	}
	if headerBytes(r.Header) > s.limits.MaxHeaderBytes {
		s.plainError(w, r, http.StatusRequestHeaderFieldsTooLarge, "request header fields too large")
		return
	}
	if r.Method == http.MethodConnect {
		s.plainError(w, r, http.StatusMethodNotAllowed, "CONNECT is not allowed")
		return
	}
	st := ch.def
	host, ok := normalizeHost(r.Host)
	if ok {
		if found, hit := ch.hosts.lookup(host); hit {
			st = found
		}
	} else if r.Host != "" || r.ProtoAtLeast(1, 1) {
		s.plainError(w, r, http.StatusBadRequest, "invalid Host header")
		return
	}
	w.site = st
	if st != nil {
		if st.hsts != nil {
			w.Header()["Strict-Transport-Security"] = st.hsts
		}
		w.resp = st.resp
		if st.hdrVars {
			// Added headers with variables are evaluated on the answer:
			// the variables of the request, whatever the route.
			w.varsFor(r, st, host, s.tlsOn)
		}
	}
	// One path for everything below: routing, access control, static
	// files, the cache key and what goes upstream.
	if err := normalizeRequestPath(r); err != nil {
		s.plainError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if ch.challenges != nil && hasPrefix(r.URL.Path, acmePrefix) && s.answerChallenge(w, r, ch.challenges) {
		return
	}
	if ch.cfg.RedirectHTTPS && !(ch.acme && hasPrefix(r.URL.Path, acmePrefix)) {
		if host == "" {
			s.plainError(w, r, http.StatusBadRequest, "no Host header to redirect to")
			return
		}
		w.Header().Set("Location", "https://"+hostForURL(host)+targetURI(r))
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	// The redirect above is the listener's, for every host (nginx's
	// "return 301 https://$host$request_uri" server); what follows is a
	// site's, and a host no site names has none.
	if st == nil {
		s.plainError(w, r, http.StatusMisdirectedRequest, "no site on this listener serves this host")
		return
	}
	if st.allow != nil {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !st.allow.Allowed(ap.Addr()) {
			s.errorPage(w, r, st, http.StatusForbidden, "access to this site is not allowed from your address")
			return
		}
	}
	if st.maint != nil && st.maint.active() {
		w.Header().Set("Retry-After", "120")
		s.errorPage(w, r, st, http.StatusServiceUnavailable, "down for maintenance")
		return
	}
	var rt *route
	brk := false
	if st.dynamic {
		if rt, brk = s.chooseRoute(w, r, st, w.varsFor(r, st, host, s.tlsOn)); rt == nil {
			return
		}
	} else if rt = st.routes.match(r.URL.Path, nil); rt == nil {
		s.errorPage(w, r, st, http.StatusNotFound, "not found")
		return
	}
	w.route = rt
	w.resp = rt.resp
	if rt.compress != nil {
		w.cpol, w.encoders = rt.compress, &s.encoders
		if len(r.Header["Range"]) == 0 {
			w.want = negotiate(r.Header["Accept-Encoding"], rt.compress.gzip, rt.compress.zstd)
			// HEAD gets the head a GET would get (as nginx), and no body.
			w.headOnly = r.Method == http.MethodHead
		}
	}
	if (st.protect != nil || rt.limits != nil) && !s.protectRequest(w, r, st, rt) {
		return
	}
	if rt.auth != nil && !rt.auth.check(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+rt.auth.realm+`", charset="UTF-8"`)
		s.errorPage(w, r, st, http.StatusUnauthorized, "authentication required")
		return
	}
	var body *bodyReader
	if r.Body != nil && r.Body != http.NoBody {
		if rt.maxBody >= 0 && r.ContentLength > rt.maxBody {
			w.Header().Set("Connection", "close")
			s.errorPage(w, r, st, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body too large: the limit is %d bytes", rt.maxBody))
			return
		}
		body = &bodyReader{rc: r.Body, limit: rt.maxBody, ctl: http.NewResponseController(w)}
		_ = body.ctl.SetReadDeadline(time.Now().Add(s.limits.ReadBodyTimeout))
		r.Body = body
	}
	if rt.upPath != "" || rt.upPathTmpl != nil {
		if err := rt.upstreamTarget(r, w.vq, brk); err != nil {
			st.log.Warn("upstream path failed", "listener", s.name(), "site", st.name, "route", rt.path, "err", err)
			s.errorPage(w, r, st, http.StatusInternalServerError, "the upstream path could not be built")
			return
		}
	}
	rt.handler.serve(s, w, r, rt, body)
}

// varsFor prepares the request's variables for a site that uses them (the
// recorder keeps them, so a pooled recorder reuses their storage).
func (w *recorder) varsFor(r *http.Request, st *site, host string, tls bool) *vars.Request {
	if w.vq == nil {
		w.vq = new(vars.Request)
	}
	q := w.vq
	w.vqLive = true
	q.Reset(r, st.scope)
	q.Host, q.ServerName, q.Scheme = host, st.serverName, "http"
	if tls {
		q.Scheme = "https"
	}
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if w.conn != nil {
		la = w.conn.LocalAddr()
	}
	if la != nil {
		if _, port, err := net.SplitHostPort(la.String()); err == nil {
			q.ServerPort = port
		}
	}
	return q
}

// normalizeRequestPath replaces the request's path by its normalised form
// (guard.NormalizePath): r.URL.RawPath is what goes upstream, r.URL.Path
// (decoded) is what routes and static files see. "*" (OPTIONS *) is left
// alone: it matches no route.
func normalizeRequestPath(r *http.Request) error {
	if r.URL.Path == "*" && r.URL.RawPath == "" {
		return nil
	}
	norm, err := guard.NormalizePath(r.URL.EscapedPath())
	if err != nil {
		return err
	}
	r.URL.Path = guard.DecodePath(norm)
	r.URL.RawPath = ""
	if r.URL.Path != norm {
		r.URL.RawPath = norm
	}
	return nil
}

// targetURI is the normalised origin-form target of r (path and query),
// whatever form the client sent (an absolute-form "http://host/x" included):
// what redirects append and the cache is keyed by.
func targetURI(r *http.Request) string {
	path, query := requestURI(r.URL)
	if path == "*" {
		path = "/"
	}
	if query == "" && !r.URL.ForceQuery {
		return path
	}
	return path + "?" + query
}

// limitRanges coalesces the Range header of a request the edge answers
// itself (files, cache entries), or drops it when more than
// guard.MaxRanges ranges remain: the whole file is served.
func limitRanges(r *http.Request) {
	rh := r.Header["Range"]
	if len(rh) == 0 {
		return
	}
	out, ok := guard.CoalesceRanges(rh[0], guard.MaxRanges)
	if !ok {
		delete(r.Header, "Range")
		return
	}
	r.Header["Range"] = []string{out}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func hostForURL(h string) string {
	if a, err := netip.ParseAddr(h); err == nil && a.Is6() {
		return "[" + h + "]"
	}
	return h
}

func headerBytes(h http.Header) int {
	n := 0
	for k, vv := range h {
		for _, v := range vv {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// plainError answers a protocol-level refusal (no site chosen yet).
func (s *Server) plainError(w *recorder, r *http.Request, code int, msg string) {
	s.log.Debug("request refused", "listener", s.chain.Load().cfg.Listener, "peer", r.RemoteAddr, "status", code, "reason", msg)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if code == http.StatusBadRequest || code == http.StatusRequestURITooLong || code == http.StatusRequestHeaderFieldsTooLarge {
		h.Set("Connection", "close")
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "%d %s: %s\n", code, http.StatusText(code), msg)
}

// logRefusal writes a refusal to a site's own error log, at nginx's
// levels: error for 401, 403, 413 and 429 ("access forbidden by rule",
// "client intended to send too large body", "limiting requests"), info for
// 408 ("client timed out"); other statuses are logged where they arise.
// Bounded by the server's refusal log rate.
func (s *Server) logRefusal(r *http.Request, st *site, code int, msg string) {
	lv := slog.LevelError
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
	case http.StatusRequestTimeout:
		lv = slog.LevelInfo
	default:
		return
	}
	if !st.log.Enabled(r.Context(), lv) {
		return
	}
	if ok, suppressed := s.refusedLog.allow(s.opts.Now()); ok {
		st.log.Log(r.Context(), lv, "request refused", "listener", s.name(), "site", st.name, "status", code, "reason", msg,
			"peer", r.RemoteAddr, "host", r.Host, "request", r.Method+" "+r.RequestURI, "suppressed", suppressed)
	}
}

// errorPage answers with the site's page for code, or a short text.
func (s *Server) errorPage(w *recorder, r *http.Request, st *site, code int, msg string) {
	if st.ownLog {
		s.logRefusal(r, st, code, msg)
	}
	if page, ok := st.pages[code]; ok {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(page)))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			w.Write(page)
		}
		return
	}
	s.plainError(w, r, code, msg)
}

// recorder wraps the ResponseWriter: it notes the status and size for the
// access log and stats, applies the site's or route's response policy
// (expires and added fields, with nginx's status rules), and keeps
// ReadFrom (sendfile), Flush and Hijack reachable.
type recorder struct {
	w        http.ResponseWriter
	status   int
	bytes    int64
	resp     *respPolicy
	now      func() time.Time
	site     *site
	route    *route
	upstream string
	cache    string
	// upTime is how long the upstream took (0: none was asked), for
	// $upstream_response_time; the proxy sets upStart instead, and the
	// request's end reading gives upTime (one clock reading fewer).
	upTime  time.Duration
	upStart time.Time
	// start is the request's clock reading (ServeHTTP's start).
	start time.Time
	conn  *edgeConn // HTTP/1 connection, nil on HTTP/2
	// vq is the request's variables, on a site that uses them (varsFor);
	// vqLive says varsFor set it for this request.
	vq     *vars.Request
	vqLive bool
	// Compression: the route's policy, the coding the client accepts,
	// and while an answer is compressed its encoder, which writes to
	// sink (the connection, counted in bytes).
	// fileSR and fileLR are the readers a static file is sent through
	// (serveOpenFile).
	fileSR   io.SectionReader
	fileLR   io.LimitedReader
	cpol     *compressPolicy
	want     encoding
	headOnly bool // HEAD: the compressed answer's fields, no encoder
	enc      encoder
	encoders *encoderPools
	sink     recSink
	// outcome, when set, is what the access log and stats say instead of
	// the status sent, for a response that did not complete: 499 when the
	// client went away (or stopped reading) mid-response, 502 when the
	// upstream cut it.
	outcome int
}

func (w *recorder) reset(rw http.ResponseWriter) {
	*w = recorder{w: rw, vq: w.vq}
	w.sink.rec = w
}

// recSink is what an encoder writes to: the connection, counted.
type recSink struct{ rec *recorder }

func (s *recSink) Write(p []byte) (int, error) {
	w := s.rec
	n, err := w.w.Write(p)
	w.bytes += int64(n)
	if err != nil {
		w.clientGone()
	}
	return n, err
}

// startEncoder turns the answer being written into a compressed one.
func (w *recorder) startEncoder(h http.Header) {
	if !w.headOnly {
		enc := w.encoders.get(w.want, w.cpol.gzipLevel, &w.sink)
		if enc == nil {
			return
		}
		w.enc = enc
	}
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges")
	h["Content-Encoding"] = []string{w.want.token()}
	if et := h["Etag"]; len(et) == 1 {
		h["Etag"] = []string{weakETag(et[0])}
	}
}

// finish ends a compressed answer (the encoder's last block and trailer)
// and returns the encoder to its pool. An answer that did not complete
// (client gone, upstream cut) is not terminated: the client must see it
// broken, not as a whole compressed body.
func (w *recorder) finish() {
	if w.enc == nil {
		return
	}
	if w.outcome == 0 {
		if err := w.enc.Close(); err != nil {
			w.clientGone()
		}
	}
	w.encoders.put(w.want, w.cpol.gzipLevel, w.enc)
	w.enc = nil
}

// compressing reports whether the answer is being compressed.
func (w *recorder) compressing() bool { return w.enc != nil }

func (w *recorder) statusOrOK() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// loggedStatus is the status the access log and stats record: the status
// sent, unless the response did not complete (see outcome).
func (w *recorder) loggedStatus() int {
	if w.outcome != 0 {
		return w.outcome
	}
	return w.statusOrOK()
}

// clientGone marks a response the client did not receive whole.
func (w *recorder) clientGone() {
	if w.outcome == 0 {
		w.outcome = statusClientClosed
	}
}

// statusClientClosed is nginx's 499 "client closed request": logged, never sent.
const statusClientClosed = 499

func (w *recorder) Header() http.Header { return w.w.Header() }

func (w *recorder) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if code >= 200 {
		w.status = code
		if w.resp != nil {
			var q *vars.Request
			if w.resp.vars && w.vqLive {
				q = w.vq
				q.SetExtern(w.site.extCache, w.cache)
				q.SetExtern(w.site.extAddr, w.upstream)
			}
			w.resp.apply(w.w.Header(), code, w.now, q)
		}
		if w.cpol != nil {
			if h := w.w.Header(); w.cpol.compressible(h, code) {
				addVary(h)
				if w.want != encIdentity {
					w.startEncoder(h)
				}
			}
		}
	}
	w.w.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil {
		return w.enc.Write(p)
	}
	n, err := w.w.Write(p)
	w.bytes += int64(n)
	if err != nil {
		w.clientGone()
	}
	return n, err
}

func (w *recorder) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil {
		// Compressed: no sendfile, the file goes through the encoder.
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		var n int64
		for {
			m, rerr := src.Read(*bp)
			if m > 0 {
				if _, werr := w.enc.Write((*bp)[:m]); werr != nil {
					return n, werr
				}
				n += int64(m)
			}
			if rerr == io.EOF {
				return n, nil
			}
			if rerr != nil {
				return n, rerr
			}
		}
	}
	if _, sendsHead := w.w.(interface{ ReadFromSendsHead() }); !sendsHead && w.bytes == 0 && w.conn != nil && w.conn.sendfile {
		if _, _, _, ok := fileSection(src); ok {
			// Send the head now: net/http would otherwise copy the
			// first 512 bytes of the file through a buffer (read, then
			// a write with the head) before handing the rest to
			// sendfile. This way the whole body is one sendfile.
			if f, ok := w.w.(http.Flusher); ok {
				f.Flush()
			}
		}
	}
	var n int64
	var err error
	if rf, ok := w.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(w.w, src)
	}
	w.bytes += n
	if err != nil {
		w.clientGone()
	}
	return n, err
}

func (w *recorder) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.enc != nil {
		if err := w.enc.Flush(); err != nil {
			return
		}
	}
	if f, ok := w.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.w }

// Hijack is forwarded for WebSocket tunnels.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.w).Hijack()
}

// bodyReader enforces the route's body limit and the body read timeout;
// when the body is done it lifts the deadline so that a long response is
// not cut by it.
type bodyReader struct {
	rc      io.ReadCloser
	limit   int64 // -1 unlimited
	n       int64
	ctl     *http.ResponseController
	read    atomic.Bool
	tooBig  atomic.Bool
	failed  atomic.Int32 // 1: client timed out, 2: other client error
	done    bool
	lastErr error
}

var errBodyTooLarge = errors.New("request body too large")

func (b *bodyReader) started() bool { return b.read.Load() }

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.done {
		return 0, b.lastErr
	}
	b.read.Store(true)
	if b.limit >= 0 && int64(len(p)) > b.limit-b.n+1 {
		p = p[:b.limit-b.n+1]
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.limit >= 0 && b.n > b.limit {
		b.tooBig.Store(true)
		b.finish(errBodyTooLarge)
		return 0, errBodyTooLarge
	}
	if err != nil {
		if err != io.EOF {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				b.failed.Store(1)
			} else {
				b.failed.Store(2)
			}
		}
		b.finish(err)
	}
	return n, err
}

func (b *bodyReader) finish(err error) {
	b.done, b.lastErr = true, err
	if err == io.EOF {
		// Fully read: lift the deadline so that it cannot cut a long
		// response (net/http's background read would fail on it). After an
		// error the deadline stays: the connection is not reused.
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
}

func (b *bodyReader) Close() error { return b.rc.Close() }

// answerChallenge answers GET or HEAD of a pending ACME HTTP-01 token, for
// any host (the CA asks for the name being validated, which may be served
// by no site of this listener yet); it reports whether it answered. An
// unknown token goes on to the site's routes and the redirect, as before.
func (s *Server) answerChallenge(w *recorder, r *http.Request, c Challenges) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	k, ok := c.KeyAuth(r.URL.Path[len(acmePrefix):])
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(k)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		io.WriteString(w, k)
	}
	return true
}
