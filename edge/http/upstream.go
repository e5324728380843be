package httpedge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/offedge/offedge/edge/http/h1"
)

// proxyRequest is what the edge sends upstream for one client request: the
// client's request (method, URI, headers, body) plus what the route adds.
// It is written straight onto a pooled connection (plain or TLS) by
// h1Client.writeHead, the one place the forwarding-header policy lives.
type proxyRequest struct {
	ctx     context.Context
	r       *http.Request // the client's request: URL, headers, peer
	method  string
	host    string // Host sent; "" = the server's address
	upgrade string // protocol asked for with Upgrade (WebSocket routes only)
	tls     bool   // the client came over TLS (X-Forwarded-Proto)
	body    io.Reader
	cl      int64 // body length, -1 unknown (chunked upstream)
	probe   bool  // a health check: the edge's own request, no forwarding fields
	// start is the request's clock reading (time.Now; zero when the
	// server runs on another clock, as tests do): the pool's pick, the
	// idle connections' ages and, while no body is sent, the upstream
	// deadlines' refresh use it instead of a reading each.
	start time.Time
	// fieldsOnly: the caller reads the answer's fields from its head
	// (upHead), and resp.Header is nil but for a 101 (the proxy's
	// copyResponse: no map per answer).
	fieldsOnly bool
	// replay, for a buffered body, rewinds it so that the request can be
	// sent again (another server, a stale kept-alive connection).
	replay *bufferedBody
	// stats are the counters of the listener that sent the request (pools
	// are shared by the listeners of a node); nil for health probes.
	stats *counters
}

// bodyStarted reports whether a byte of the client's body may have been
// consumed, after which the request cannot be sent again.
func (pr *proxyRequest) bodyStarted() bool {
	if pr.body == nil || pr.replay != nil {
		return false
	}
	if rb, ok := pr.body.(*bodyReader); ok {
		return rb.started()
	}
	return true
}

// retryable reports whether the request may be sent a second time after
// it was (perhaps) received: idempotent, and without a body or with a
// buffered one (nginx's proxy_next_upstream with request buffering).
func (pr *proxyRequest) retryable() bool {
	return isIdempotent(pr.method) && (pr.body == nil || pr.replay != nil)
}

// outSkip reports the request fields never copied upstream as they are:
// the hop-by-hop fields (hopField) and the ones the edge writes itself.
func outSkip(k string) bool {
	switch k {
	case "X-Real-Ip", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
		"Content-Length", "Host",
		"Expect": // the edge answers 100-continue itself
		return true
	}
	return hopField(k)
}

// requestURI is the URI sent upstream: the client's path (kept in its
// received encoding when that is a valid one) and query.
func requestURI(u *url.URL) (path, query string) {
	p := (&url.URL{Path: u.Path, RawPath: u.RawPath}).EscapedPath()
	if p == "" {
		p = "/"
	}
	return p, u.RawQuery
}

// writeHead writes the request line and header fields (the body framing
// included) to bw.
func (pr *proxyRequest) writeHead(bw *bufio.Writer, host string, keepAlive bool) {
	// Built in the writer's free space with appends (one Write), not a
	// WriteString call per piece.
	b := bw.AvailableBuffer()
	r := pr.r
	path, query := requestURI(r.URL)
	b = append(b, pr.method...)
	b = append(b, ' ')
	b = append(b, path...)
	if query != "" {
		b = append(b, '?')
		b = append(b, query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	var connTokens string
	if c := r.Header["Connection"]; len(c) > 0 {
		connTokens = strings.Join(c, ",")
	}
	for k, vv := range r.Header {
		if outSkip(k) || (connTokens != "" && headerListContains(connTokens, k)) {
			continue
		}
		for _, v := range vv {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if te := r.Header["Te"]; len(te) > 0 && headerListContains(strings.Join(te, ","), "trailers") {
		b = append(b, "Te: trailers\r\n"...)
	}
	if !pr.probe {
		ip := clientIP(r)
		b = append(b, "X-Real-Ip: "...)
		b = append(b, ip...)
		b = append(b, "\r\nX-Forwarded-For: "...)
		for _, v := range r.Header["X-Forwarded-For"] {
			b = append(b, v...)
			b = append(b, ", "...)
		}
		b = append(b, ip...)
		if pr.tls {
			b = append(b, "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: "...)
		} else {
			b = append(b, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: "...)
		}
		b = append(b, r.Host...)
		b = append(b, "\r\n"...)
	}
	switch {
	case pr.upgrade != "":
		b = append(b, "Connection: Upgrade\r\nUpgrade: "...)
		b = append(b, pr.upgrade...)
		b = append(b, "\r\n"...)
	case !keepAlive:
		b = append(b, "Connection: close\r\n"...)
	}
	switch {
	case pr.body != nil && pr.cl >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, pr.cl, 10)
		b = append(b, "\r\n"...)
	case pr.body != nil:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case pr.method == http.MethodPost || pr.method == http.MethodPut || pr.method == http.MethodPatch:
		b = append(b, "Content-Length: 0\r\n"...)
	}
	b = append(b, "\r\n"...)
	bw.Write(b)
}

// h1Client sends requests to one HTTP/1.1 server, plain or TLS, over a
// small pool of kept-alive connections: no goroutine or channel per
// request, the request written straight from the client's header map, one
// bufio reader and writer per connection. Health probes use it too.
//
// A kept-alive connection the server closed while it was idle is noticed
// when a request on it gets no answer byte (EOF, reset); an idempotent
// request without a body is then sent again on a new connection. Others get
// an error (502), but before they are sent on a reused connection, it is
// checked for a pending close (one non-blocking peek).
type h1Client struct {
	addr           string
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	connectTimeout time.Duration
	readTimeout    time.Duration
	maxIdle        int         // idle connections kept; 0: none (Connection: close)
	tls            *tls.Config // nil: plain HTTP

	mu     sync.Mutex
	idle   []*upConn // most recently used last
	closed bool
}

// upConn is one upstream connection with its buffers.
type upConn struct {
	cl        *h1Client
	raw       net.Conn
	up        *upstreamConn // raw with the timeouts; abort on the client's cancellation
	conn      io.ReadWriter // what requests go over: raw with the read timeout, inside TLS for a TLS server
	br        *bufio.Reader
	bw        *bufio.Writer
	reused    bool
	idleSince time.Time
}

const (
	upReadBuf  = 8 << 10
	upWriteBuf = 4 << 10
	max1xx     = 8
)

func (c *h1Client) get(ctx context.Context, fresh bool, now time.Time) (*upConn, error) {
	if !fresh {
		if now.IsZero() {
			now = time.Now()
		}
		c.mu.Lock()
		// The oldest are first: drop those idle for too long.
		drop := 0
		for drop < len(c.idle) && now.Sub(c.idle[drop].idleSince) > upstreamIdleTimeout {
			drop++
		}
		var stale []*upConn
		if drop > 0 {
			stale = append(stale, c.idle[:drop]...)
			n := copy(c.idle, c.idle[drop:])
			clear(c.idle[n:])
			c.idle = c.idle[:n]
		}
		var uc *upConn
		if n := len(c.idle); n > 0 {
			uc = c.idle[n-1]
			c.idle[n-1] = nil
			c.idle = c.idle[:n-1]
		}
		c.mu.Unlock()
		for _, s := range stale {
			s.close()
		}
		if uc != nil {
			return uc, nil
		}
	}
	// connect_timeout bounds the connection and the TLS handshake together.
	dctx, cancel := context.WithTimeout(ctx, c.connectTimeout)
	defer cancel()
	raw, err := c.dial(dctx, "tcp", c.addr)
	if err != nil {
		return nil, &connectError{err}
	}
	up := newUpstreamConn(raw, c.readTimeout)
	var conn io.ReadWriter = up
	if c.tls != nil {
		tc := tls.Client(up, c.tls)
		if err := tc.HandshakeContext(dctx); err != nil {
			raw.Close()
			return nil, &connectError{fmt.Errorf("tls handshake with %s: %w", c.addr, err)}
		}
		conn = tc
	}
	return &upConn{cl: c, raw: raw, up: up, conn: conn, br: bufio.NewReaderSize(conn, upReadBuf), bw: bufio.NewWriterSize(conn, upWriteBuf)}, nil
}

func (c *h1Client) put(uc *upConn) {
	if uc.br.Buffered() > 0 { // the server sent more than the response
		uc.close()
		return
	}
	uc.reused = true
	uc.idleSince = uc.up.lastUsed()
	c.mu.Lock()
	if c.closed || len(c.idle) >= c.maxIdle {
		c.mu.Unlock()
		uc.close()
		return
	}
	c.idle = append(c.idle, uc)
	c.mu.Unlock()
}

func (c *h1Client) closeIdle() {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, uc := range idle {
		uc.close()
	}
}

func (uc *upConn) close() { uc.raw.Close() }

// staleConnError: a reused connection gave no answer byte; the server had
// closed it while it was idle.
type staleConnError struct{ err error }

func (e *staleConnError) Error() string {
	return "kept-alive connection closed by the server: " + e.err.Error()
}
func (e *staleConnError) Unwrap() error { return e.err }

// clientBodyError: reading the client's body failed (timeout, too large,
// client gone); not the server's fault.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading the client's body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// roundTrip sends pr to the server and returns its response head; the body
// streams from the connection, which goes back to the pool when the body
// was read to its end and the server keeps it open.
func (c *h1Client) roundTrip(pr *proxyRequest, host string) (*http.Response, error) {
	uc, err := c.get(pr.ctx, false, pr.start)
	if err != nil {
		return nil, err
	}
	if uc.reused && !pr.retryable() && !uc.alive() {
		uc.close()
		if uc, err = c.get(pr.ctx, true, time.Time{}); err != nil {
			return nil, err
		}
	}
	resp, err := uc.exchange(pr, host)
	if err == nil {
		return resp, nil
	}
	uc.close()
	var se *staleConnError
	if errors.As(err, &se) && pr.retryable() {
		if uc, err = c.get(pr.ctx, true, time.Time{}); err != nil {
			return nil, err
		}
		if resp, err = uc.exchange(pr, host); err == nil {
			return resp, nil
		}
		uc.close()
	}
	return nil, err
}

// alive peeks at an idle connection without blocking: a close or stray
// bytes sent by the server while it was idle make it unusable.
func (uc *upConn) alive() bool {
	sc, ok := uc.raw.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	alive := true
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true
	})
	return alive
}

// errReader remembers a read error of the client's body.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// exchange writes the request and reads the response head. Until the body
// is closed, a client that goes away (its request context is cancelled)
// aborts the exchange (upstreamConn.abort), and the connection is closed
// rather than reused.
func (uc *upConn) exchange(pr *proxyRequest, host string) (resp *http.Response, err error) {
	stop := watchCancel(pr.ctx, uc.up)
	if pr.body == nil && !pr.start.IsZero() {
		// Until the answer's head is read nothing but a head is sent:
		// the request's clock reading stands in for the deadlines'.
		uc.up.now = pr.start.UnixNano()
	}
	handedOver := false
	defer func() {
		uc.up.now = 0
		if handedOver {
			return
		}
		if !stop.stop() && err == nil { // the client went away meanwhile
			resp, err = nil, pr.ctx.Err()
		}
		if err != nil && pr.ctx.Err() != nil {
			err = pr.ctx.Err()
		}
	}()
	pr.writeHead(uc.bw, host, uc.cl.maxIdle > 0)
	if pr.replay != nil {
		pr.replay.rewind()
	}
	if pr.body != nil {
		er := &errReader{r: pr.body}
		var werr error
		if pr.cl >= 0 {
			var n int64
			n, werr = io.Copy(uc.bw, io.LimitReader(er, pr.cl))
			if werr == nil && n < pr.cl {
				werr = io.ErrUnexpectedEOF
				if er.err == nil {
					er.err = werr
				}
			}
		} else {
			bp := copyBufPool.Get().(*[]byte)
			cw := httputil.NewChunkedWriter(uc.bw)
			_, werr = io.CopyBuffer(cw, er, *bp)
			copyBufPool.Put(bp)
			if werr == nil {
				werr = cw.Close()
			}
			if werr == nil {
				_, werr = uc.bw.WriteString("\r\n")
			}
		}
		if er.err != nil {
			return nil, &clientBodyError{er.err}
		}
		if werr != nil {
			return nil, werr
		}
	}
	if err := uc.bw.Flush(); err != nil {
		if uc.reused && pr.body == nil {
			return nil, &staleConnError{err}
		}
		return nil, err
	}
	if _, err := uc.br.Peek(1); err != nil {
		if uc.reused && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			return nil, &staleConnError{err}
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	ub := upBodyPool.Get().(*upBody)
	ub.uc, ub.stop = uc, stop
	rh := &ub.head
	for i := 0; ; i++ {
		if err := uc.readHead(rh, pr.method); err != nil {
			return nil, fmt.Errorf("reading the response head: %w", err)
		}
		if rh.StatusCode >= 200 || rh.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if i == max1xx {
			return nil, errors.New("too many 1xx responses")
		}
	}
	if !pr.fieldsOnly || rh.StatusCode == http.StatusSwitchingProtocols {
		rh.BuildHeader()
	}
	resp = &ub.resp
	*resp = http.Response{
		Status: rh.Status, StatusCode: rh.StatusCode, Proto: rh.Proto, ProtoMajor: rh.Major, ProtoMinor: rh.Minor,
		Header: rh.Header, ContentLength: rh.ContentLength, Close: rh.Close, Trailer: rh.Trailer,
	}
	if rh.Chunked {
		resp.TransferEncoding = []string{"chunked"}
	}
	if rh.StatusCode == http.StatusSwitchingProtocols {
		if pr.upgrade == "" {
			return nil, errors.New("101 Switching Protocols without an Upgrade request")
		}
		resp.Body = &upgradedConn{uc: uc}
		return resp, nil
	}
	ub.keep = !rh.Close && uc.cl.maxIdle > 0
	switch {
	case rh.NoBody:
		ub.eof = true
	case rh.Chunked:
		ub.chunked = httputil.NewChunkedReader(uc.br)
	default:
		ub.remain = rh.ContentLength // -1: to the close
	}
	resp.Body = ub
	handedOver = true
	return resp, nil
}

// maxResponseHead bounds an upstream's response head (status line and
// fields), and a chunked body's trailer section: net/http's default
// MaxHeaderBytes. Beyond it the answer is refused (502), as nginx's
// "upstream sent too big header" beyond proxy_buffer_size.
const maxResponseHead = 1 << 20

var errHeadTooBig = errors.New("upstream sent too big header")

// readHead reads one response head from the connection and parses it with
// the edge's one HTTP/1 parser (h1.ResponseHead, held to net/http's
// ReadResponse), for a request of the given method. The fields are left
// in rh.Fields (exchange builds the map when its caller wants one).
func (uc *upConn) readHead(rh *h1.ResponseHead, method string) error {
	s, err := readBlock(uc.br, maxResponseHead)
	if err != nil {
		return err
	}
	return rh.ParseFields(s, method)
}

// upHead returns the parsed head of an answer from roundTrip (nil for
// another kind of response, as tests' fakes).
func upHead(resp *http.Response) *h1.ResponseHead {
	if b, ok := resp.Body.(*upBody); ok {
		return &b.head
	}
	return nil
}

// readBlock reads a head (lines through an empty one) from br as one
// string: what is buffered is searched in place; a head longer than the
// buffer is gathered into a slice of its own, up to limit bytes, and only
// its own bytes are taken from br.
func readBlock(br *bufio.Reader, limit int) (string, error) {
	resume := 0
	var big []byte
	for {
		b, _ := br.Peek(br.Buffered())
		all := b
		if big != nil {
			all = append(big, b...)
		}
		end, next, err := h1.FindHeadEnd(all, resume)
		if err != nil {
			return "", err
		}
		if end >= 0 {
			if end > limit {
				return "", errHeadTooBig
			}
			s := string(all[:end])
			_, _ = br.Discard(end - len(big))
			return s, nil
		}
		resume = next
		if len(all) > limit {
			return "", errHeadTooBig
		}
		if big != nil || len(b) == br.Size() {
			big = all
			if len(big) == len(b) {
				big = append([]byte(nil), b...)
			}
			_, _ = br.Discard(len(b))
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// cancelHooker is a request context with one cancellation hook run
// without a goroutine (edge/http/h1's request contexts).
type cancelHooker interface {
	OnCancel(f func()) bool
	StopOnCancel() bool
}

// cancelWatch aborts an upstream exchange when the client's request
// context is cancelled: through the context's own hook when it has one
// (no allocation), else context.AfterFunc.
type cancelWatch struct {
	hooked cancelHooker
	after  func() bool
}

func watchCancel(ctx context.Context, up *upstreamConn) cancelWatch {
	if up.abortFn == nil {
		up.abortFn = up.abort // bound once per connection
	}
	if h, ok := ctx.(cancelHooker); ok && h.OnCancel(up.abortFn) {
		return cancelWatch{hooked: h}
	}
	return cancelWatch{after: context.AfterFunc(ctx, up.abortFn)}
}

// stop removes the hook; false when it ran (the client went away).
func (w cancelWatch) stop() bool {
	if w.hooked != nil {
		return w.hooked.StopOnCancel()
	}
	return w.after()
}

// upBody is a response body read from a pooled connection, framed as its
// head said (a length, chunked, or to the close; h1.ResponseHead refused
// the ambiguous ones). Read to its end on a connection the server keeps
// open, it returns the connection to the pool on Close; otherwise Close
// closes the connection (nothing is drained). It holds the response and
// its parsed head: one allocation for the three.
type upBody struct {
	uc *upConn
	// pool and backend are set by the pool: Close gives the server's
	// slot back.
	pool    *pool
	backend *backend
	stop    cancelWatch // the client-cancellation hook
	keep    bool
	eof     bool
	done    bool
	err     error
	remain  int64     // length left; -1: to the close
	chunked io.Reader // the chunked decoder over the connection's reader
	head    h1.ResponseHead
	resp    http.Response
}

// upBodies are pooled: at 1.1 KB (the head's fields and values are
// stored inline) an upBody was 60 % of the bytes a proxied request
// allocated, and so of the collector's pace. One goes back only through
// Release, which the proxy asks for once the client's response is
// complete (h1.ResponseReleaser): the header map of that response holds
// the fields' value slices, which live in the upBody, until then.
var upBodyPool = sync.Pool{New: func() any { return new(upBody) }}

// Release gives b back to the pool; b and its response must not be used
// after it (the proxy's release, after the client's response is complete).
func (b *upBody) Release() {
	*b = upBody{}
	upBodyPool.Put(b)
}

func (b *upBody) Read(p []byte) (int, error) {
	switch {
	case b.done:
		return 0, http.ErrBodyReadAfterClose
	case b.eof:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	case len(p) == 0:
		return 0, nil
	}
	br := b.uc.br
	if b.chunked != nil {
		n, err := b.chunked.Read(p)
		if err == io.EOF {
			if err = b.readTrailer(); err == nil {
				b.eof = true
				return n, io.EOF
			}
		}
		if err != nil {
			b.err = err
		}
		return n, err
	}
	if b.remain < 0 {
		n, err := br.Read(p)
		if err == io.EOF {
			b.eof = true
		}
		return n, err
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := br.Read(p)
	b.remain -= int64(n)
	if b.remain == 0 {
		b.eof = true
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// readTrailer reads the trailer section after the last chunk into the
// response's Trailer (every field sent, as net/http merges them).
func (b *upBody) readTrailer() error {
	br := b.uc.br
	p, err := br.Peek(1)
	if err != nil {
		return io.ErrUnexpectedEOF
	}
	if p[0] == '\n' {
		_, _ = br.Discard(1)
		return nil
	}
	if p, _ := br.Peek(2); len(p) == 2 && p[0] == '\r' && p[1] == '\n' {
		_, _ = br.Discard(2)
		return nil
	}
	s, err := readBlock(br, maxResponseHead)
	if err != nil {
		return fmt.Errorf("reading the trailer: %w", err)
	}
	t, err := h1.ParseTrailer(s)
	if err != nil {
		return err
	}
	if b.resp.Trailer == nil {
		b.resp.Trailer = t
		return nil
	}
	for k, vv := range t {
		b.resp.Trailer[k] = vv
	}
	return nil
}

func (b *upBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if b.stop.stop() && b.eof && b.keep {
		b.uc.cl.put(b.uc)
	} else {
		b.uc.close()
	}
	if b.pool != nil {
		b.pool.release(b.backend)
	}
	return nil
}

// upgradedConn is the upstream side of a WebSocket tunnel after 101.
type upgradedConn struct {
	uc      *upConn
	onClose func() // set by the pool: gives the server's slot back
}

func (u *upgradedConn) Read(p []byte) (int, error)  { return u.uc.br.Read(p) }
func (u *upgradedConn) Write(p []byte) (int, error) { return u.uc.conn.Write(p) }
func (u *upgradedConn) Close() error {
	err := u.uc.raw.Close()
	if u.onClose != nil {
		u.onClose()
	}
	return err
}
