package httpedge

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/offedge/offedge/edge/http/h1"
)

// hopField reports whether a (canonical) field name is connection-level,
// never forwarded (RFC 9110 7.6.1). These sets are switches, not maps:
// they are asked for every field of every proxied request and answer, and
// the compiler's search by length and bytes costs a fraction of hashing
// the name (the response's map lookups were 1,450 user instructions of a
// proxied request, callgrind).
func hopField(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// hiddenResponseField reports the upstream response fields never passed to
// clients, as nginx's proxy_hide_header defaults: the upstream's Server
// banner (software and version) and nginx's internal X-Accel-* controls.
func hiddenResponseField(k string) bool {
	switch k {
	case "Server", "X-Pad", "X-Accel-Expires", "X-Accel-Redirect", "X-Accel-Limit-Rate",
		"X-Accel-Buffering", "X-Accel-Charset":
		return true
	}
	return false
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func headerListContains(list, name string) bool {
	for tok := range strings.SplitSeq(list, ",") {
		if strings.EqualFold(strings.TrimSpace(tok), name) {
			return true
		}
	}
	return false
}

// clientBodyFailed answers a request whose failure was the client's: a
// body too large (413), not sent in time (408) or unreadable (400), or a
// client gone (499, logged only). It reports whether it answered.
func (s *Server) clientBodyFailed(w *recorder, r *http.Request, rt *route, body *bodyReader) bool {
	if body != nil && body.tooBig.Load() {
		w.Header().Set("Connection", "close")
		s.errorPage(w, r, rt.site, http.StatusRequestEntityTooLarge, "request body too large")
		return true
	}
	if r.Context().Err() != nil {
		w.status = statusClientClosed // logged only
		return true
	}
	if body != nil {
		switch body.failed.Load() {
		case 1:
			w.Header().Set("Connection", "close")
			s.errorPage(w, r, rt.site, http.StatusRequestTimeout, "request body not received in time")
			return true
		case 2:
			w.Header().Set("Connection", "close")
			s.errorPage(w, r, rt.site, http.StatusBadRequest, "request body could not be read")
			return true
		}
	}
	return false
}

// proxy forwards r to the route's pool and streams the answer back.
func (s *Server) proxy(w *recorder, r *http.Request, rt *route, p *pool, body *bodyReader) {
	upgrade := ""
	if rt.websocket {
		if u := r.Header.Get("Upgrade"); u != "" && headerListContains(r.Header.Get("Connection"), "upgrade") {
			upgrade = u
		}
	}
	pr := proxyRequest{ctx: r.Context(), r: r, method: r.Method, host: p.cfg.Host, upgrade: upgrade, tls: s.tlsOn, stats: &s.stats, fieldsOnly: true}
	// The upstream's clock starts with the request's (as nginx's cached
	// time does), unless its body was buffered first.
	t0 := w.start
	if pr.host == "" {
		pr.host = r.Host
	}
	if body == nil {
		body, _ = r.Body.(*bodyReader)
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		pr.body, pr.cl = r.Body, r.ContentLength // r.Body is body when set
	}
	if pr.body != nil && !rt.streamBody {
		// proxy_request_buffering on: the whole body is read before a
		// server is chosen, so a slow client holds no upstream connection.
		bb, err := s.bufferBody(pr.body, pr.cl)
		if err != nil {
			if !s.clientBodyFailed(w, r, rt, body) {
				rt.site.log.Error("buffering a request body failed", "listener", s.name(), "site", rt.site.name, "route", rt.path, "err", err)
				s.errorPage(w, r, rt.site, http.StatusInternalServerError, "the request body could not be buffered")
			}
			return
		}
		defer bb.Close()
		pr.body, pr.cl, pr.replay = bb, bb.size, bb
		if bb.size == 0 {
			pr.body, pr.replay = nil, nil
		}
		t0 = s.opts.Now()
	}
	w.upStart = t0 // upTime is taken at the request's end (ServeHTTP)
	if s.opts.realClock {
		pr.start = t0
	}
	resp, b, err := p.roundTrip(&pr)
	if err != nil {
		if s.clientBodyFailed(w, r, rt, body) {
			return
		}
		if errors.Is(err, errQueueFull) || errors.Is(err, errQueueTimeout) {
			rt.site.log.Warn("upstream busy", "listener", s.name(), "site", rt.site.name, "route", rt.path, "upstream", p.name, "err", err)
			w.Header().Set("Retry-After", "1")
			s.errorPage(w, r, rt.site, http.StatusServiceUnavailable, "the upstream servers are busy")
			return
		}
		addr := ""
		if b != nil {
			addr = b.addr
		}
		w.upstream = addr
		code := http.StatusBadGateway
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			code = http.StatusGatewayTimeout
		}
		rt.site.log.Error("upstream failed", "listener", s.name(), "site", rt.site.name, "route", rt.path, "upstream", p.name, "server", addr, "err", err)
		s.errorPage(w, r, rt.site, code, "the upstream server did not answer")
		return
	}
	w.upstream = b.addr
	if resp.StatusCode == http.StatusSwitchingProtocols {
		s.tunnel(w, r, rt, resp)
		return
	}
	defer resp.Body.Close()
	// The answer's head is recycled once the client's response is
	// complete, where the server loop says when that is (HTTP/1); the
	// header map was never built (fieldsOnly), so the fields copied
	// below are all that refer to it.
	if ub, ok := resp.Body.(*upBody); ok && ub.head.Header == nil {
		if rr, ok := w.w.(h1.ResponseReleaser); ok {
			rr.ReleaseAfter(ub)
		}
	}
	// proxy_intercept_errors: an upstream error with a page of ours.
	if resp.StatusCode >= 400 {
		if _, ok := rt.site.pages[resp.StatusCode]; ok {
			s.errorPage(w, r, rt.site, resp.StatusCode, "")
			return
		}
	}
	s.copyResponse(w, r, resp, upHead(resp).Fields, rt, p)
}

// copyResponse sends the upstream's answer: its end-to-end fields (from
// the parsed head's list: the proxy asks for no map of them) and body.
func (s *Server) copyResponse(w *recorder, r *http.Request, resp *http.Response, fields []h1.Field, rt *route, p *pool) {
	h := w.Header()
	var connTokens string
	for _, f := range fields {
		if f.Name == "Connection" {
			connTokens = strings.Join(f.Values, ",")
			break
		}
	}
	// "keep-alive", the common token, names no field that is not
	// hop-by-hop already: no search per field for it.
	nominates := connTokens != "" && !strings.EqualFold(connTokens, "keep-alive")
	upCL := false
	for _, f := range fields {
		k := f.Name
		if hopField(k) || hiddenResponseField(k) || (nominates && headerListContains(connTokens, k)) {
			continue
		}
		h[k] = f.Values
		upCL = upCL || k == "Content-Length"
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	// An upstream length is never empty (the parser refuses that); else
	// h["Content-Length"] as h.Get would read it, without Get's
	// canonicalisation of a name written canonical here.
	if !upCL && resp.ContentLength >= 0 && r.Method != http.MethodHead {
		if cl := h["Content-Length"]; len(cl) == 0 || cl[0] == "" {
			h["Content-Length"] = []string{itoa(resp.ContentLength)}
		}
	}
	w.WriteHeader(resp.StatusCode)
	// Stream: flush whenever the upstream pauses (a short read) or the
	// length is unknown, so that server-sent events and slow generators
	// reach the client as they are produced.
	streaming := resp.ContentLength < 0
	bp := copyBufPool.Get().(*[]byte)
	buf := *bp
	defer copyBufPool.Put(bp)
	var written int64
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				// Client gone (logged 499 by the recorder); the upstream
				// connection is discarded, and the upstream is not blamed.
				rt.site.log.Debug("client closed the connection mid-response", "listener", s.name(), "site", rt.site.name, "route", rt.path, "peer", r.RemoteAddr, "err", werr)
				return
			}
			written += int64(n)
			// A compressed answer of known length is not flushed on short
			// reads: each flush ends a deflate block and costs ratio.
			if streaming || (n < len(buf) && written < resp.ContentLength && !w.compressing()) {
				w.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil && r.Context().Err() != nil {
			// The client went away: its cancellation aborted the upstream
			// read. Not the upstream's fault, so no error and no count.
			w.clientGone()
			rt.site.log.Debug("client closed the connection mid-response", "listener", s.name(), "site", rt.site.name, "route", rt.path, "peer", r.RemoteAddr)
			return
		}
		if rerr != nil {
			w.outcome = http.StatusBadGateway
			s.stats.upstreamErrors.Add(1)
			rt.site.log.Error("upstream response cut", "listener", s.name(), "site", rt.site.name, "route", rt.path, "upstream", p.name, "server", w.upstream, "err", rerr)
			panic(http.ErrAbortHandler) // the client must see a broken response, not a short one
		}
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// tunnel completes a protocol switch (WebSocket): the client connection is
// hijacked and bytes are copied both ways until either side closes. The
// tunnel is tracked so that Shutdown can drain or close it; Update leaves it
// alone.
func (s *Server) tunnel(w *recorder, r *http.Request, rt *route, resp *http.Response) {
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		s.errorPage(w, r, rt.site, http.StatusBadGateway, "upstream switched protocols without a connection")
		return
	}
	h := w.Header()
	for k, vv := range resp.Header {
		if !hiddenResponseField(k) {
			h[k] = vv
		}
	}
	w.status = http.StatusSwitchingProtocols
	conn, brw, err := http.NewResponseController(w.w).Hijack()
	if err != nil {
		up.Close()
		rt.site.log.Error("websocket hijack failed", "site", rt.site.name, "route", rt.path, "err", err)
		return
	}
	defer conn.Close()
	defer up.Close()
	if ec, ok := conn.(*edgeConn); ok {
		ec.stopScanning() // no more HTTP/1 requests on it
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\n"); err != nil {
		return
	}
	if err := h.Write(brw); err != nil {
		return
	}
	if _, err := io.WriteString(brw, "\r\n"); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	s.tunnels.add(conn)
	defer s.tunnels.done(conn)
	s.stats.websockets.Add(1)
	defer s.stats.websockets.Add(-1)
	errc := make(chan error, 2)
	go func() {
		// Bytes the client sent after the handshake may sit in brw.
		_, err := io.Copy(up, brw.Reader)
		errc <- err
	}()
	go func() {
		_, err := io.Copy(conn, up)
		errc <- err
	}()
	<-errc
}
