package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"
)

// response is the http.ResponseWriter of one request. The handler's
// header is snapshotted (serialised) at WriteHeader, as net/http clones
// it; the framing (Content-Length or chunked, Connection, Date,
// Content-Type) is decided when the first body byte leaves or the handler
// returns: a body of unknown length that ends within stageSize gets a
// Content-Length.
type response struct {
	c      *conn
	x      *exchange
	req    *http.Request
	header http.Header

	status        int
	wroteHeader   bool  // WriteHeader (final status) called
	committed     bool  // the head is in the write buffer
	contentLength int64 // declared by the handler, -1 unknown
	written       int64
	chunked       bool
	closeAfter    bool
	hijacked      bool
	sentContinue  bool
	hasType       bool
	hasDate       bool
	connClose     bool // the handler's Connection field says close
	trailers      []string
	preset        []byte // fields serialised by the handler (PresetFields)
	after         [maxAfter]Releaser
	nAfter        int
}

// Releaser is what a handler hands to [ResponseReleaser.ReleaseAfter].
type Releaser interface{ Release() }

// ResponseReleaser is the response writer's hook for what the response
// refers to but the request does not outlive: the fields a proxy copied
// from its upstream's answer into the header map without copying their
// values, which the loop may still read (it writes a head that was not
// committed, and trailers, after the handler returned). ReleaseAfter
// reports whether r.Release will run once the response is complete,
// written or cut, and the header map no longer read; false (more than a
// few per request) leaves r to the garbage collector. net/http's
// ResponseWriters have no such hook: there, nothing is released.
type ResponseReleaser interface {
	ReleaseAfter(r Releaser) bool
}

const maxAfter = 4

func (w *response) ReleaseAfter(r Releaser) bool {
	if w.nAfter == maxAfter {
		return false
	}
	w.after[w.nAfter] = r
	w.nAfter++
	return true
}

// released runs the releases the handler asked for (serveRequest, when
// the response is complete).
func (w *response) released() {
	for i := range w.nAfter {
		w.after[i].Release()
		w.after[i] = nil
	}
	w.nAfter = 0
}

func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func bodyAllowed(code int) bool {
	return !(code >= 100 && code <= 199 || code == 204 || code == 304)
}

func (w *response) isHead() bool { return w.req.Method == http.MethodHead }

// WriteHeader sends an informational (1xx) head at once, and otherwise
// records the status and snapshots the header fields.
func (w *response) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		if code == http.StatusContinue && w.sentContinue {
			return
		}
		b := w.x.hbuf[:0]
		b = appendStatusLine(b, w.req.ProtoAtLeast(1, 1), code)
		b = w.appendFields(b, false)
		b = append(b, "\r\n"...)
		w.x.hbuf = b
		_, _ = w.x.bw.Write(b)
		_ = w.x.bw.Flush()
		if code == http.StatusContinue {
			w.sentContinue = true
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	b := w.x.hbuf[:0]
	b = appendStatusLine(b, w.req.ProtoAtLeast(1, 1), code)
	b = w.appendFields(b, true)
	w.x.hbuf = append(b, w.preset...)
}

// PresetFields gives the final answer's head fields already serialised
// (a static file's, built once per open file), written after the header
// map's by WriteHeader: "Name: value\r\n" lines, valid, with a
// Content-Type and without Content-Length, Transfer-Encoding, Connection,
// Date or Trailer, none of them also in the header map; contentLength is
// the body's length. Called before WriteHeader.
func (w *response) PresetFields(fields []byte, contentLength int64) {
	if w.wroteHeader || w.hijacked {
		return
	}
	w.preset, w.contentLength, w.hasType = fields, contentLength, true
}

// appendFields serialises the handler's fields; with final, it notes the
// ones the framing depends on instead of writing them.
func (w *response) appendFields(b []byte, final bool) []byte {
	for k, vv := range w.header {
		if !isToken(k) {
			continue
		}
		if final {
			switch k {
			case "Content-Length":
				if len(vv) > 0 {
					if n, err := strconv.ParseInt(trimSpace(vv[0]), 10, 64); err == nil && n >= 0 {
						w.contentLength = n
					} else {
						w.c.srv.logger().Debug("http: invalid Content-Length from handler", "value", vv[0])
					}
				}
				continue
			case "Transfer-Encoding":
				continue // the server frames the body itself
			case "Content-Type":
				w.hasType = true
			case "Date":
				w.hasDate = true
			case "Connection":
				if valuesContainToken(vv, "close") {
					w.connClose = true
				}
			case "Trailer":
				for _, v := range vv {
					for f := range strings.SplitSeq(v, ",") {
						if f = trimSpace(f); f != "" {
							w.trailers = append(w.trailers, http.CanonicalHeaderKey(f))
						}
					}
				}
			}
			if strings.HasPrefix(k, http.TrailerPrefix) {
				continue
			}
		}
		for _, v := range vv {
			b = appendField(b, k, v)
		}
	}
	return b
}

// appendField writes "k: v\r\n", with CR and LF in v turned into spaces
// (no response splitting), as net/http.
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	n := len(b)
	b = append(b, v...)
	if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 { // rare
		for i := n; i < len(b); i++ {
			if c := b[i]; c == '\r' || c == '\n' {
				b[i] = ' '
			}
		}
	}
	return append(b, "\r\n"...)
}

func appendStatusLine(b []byte, is11 bool, code int) []byte {
	if is11 {
		if code == http.StatusOK {
			return append(b, "HTTP/1.1 200 OK\r\n"...)
		}
		b = append(b, "HTTP/1.1 "...)
	} else {
		b = append(b, "HTTP/1.0 "...)
	}
	b = appendInt(b, int64(code))
	b = append(b, ' ')
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	b = append(b, text...)
	return append(b, "\r\n"...)
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// commit decides the framing and puts the head (and what was staged) in
// the write buffer. done: the handler has returned.
func (w *response) commit(done bool, p []byte) {
	w.buildHead(done, p)
	x := w.x
	_, _ = x.bw.Write(x.hbuf)
	if staged := x.stage; len(staged) > 0 {
		w.writeBody(staged)
		x.stage = staged[:0]
	}
}

// buildHead decides the framing and serialises the head into x.hbuf; p
// is the first body write (sniffed for a missing Content-Type).
func (w *response) buildHead(done bool, p []byte) {
	w.committed = true
	x := w.x
	b := x.hbuf
	req := w.req
	h := &x.h
	allowed := bodyAllowed(w.status)
	staged := x.stage
	if !w.hasType && allowed && w.status != http.StatusNoContent {
		sniff := staged
		if len(sniff) == 0 {
			sniff = p
		}
		if len(sniff) > 0 {
			b = appendField(b, "Content-Type", http.DetectContentType(sniff))
		}
	}
	cl := w.contentLength
	if cl < 0 && done && allowed && (!w.isHead() || len(staged) > 0) {
		cl = int64(len(staged))
	}
	switch {
	case cl >= 0 && allowed:
		b = append(b, "Content-Length: "...)
		b = appendInt(b, cl)
		b = append(b, "\r\n"...)
		w.contentLength = cl
	case !allowed || w.isHead():
	case req.ProtoAtLeast(1, 1):
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	default:
		w.closeAfter = true // HTTP/1.0: the close ends the body
	}
	if !w.hasDate {
		b = append(b, "Date: "...)
		b = append(b, w.c.srv.httpDate()...)
		b = append(b, "\r\n"...)
	}
	if w.connClose || h.close && !h.keepAlive10 || w.c.srv.closing.Load() {
		w.closeAfter = true
	}
	if h.keepAlive10 && !w.closeAfter {
		if w.contentLength >= 0 || !allowed || w.isHead() {
			if !w.connClose {
				b = append(b, "Connection: keep-alive\r\n"...)
			}
		} else {
			w.closeAfter = true
		}
	}
	// A body the handler did not read: keep the connection only if what
	// is left is small enough to be read and dropped afterwards.
	if bd := &x.body; req.Body == bd && !bd.eof {
		if bd.expect && !w.sentContinue || bd.chunked || bd.remain > maxDrain {
			w.closeAfter = true
		}
	}
	if w.closeAfter && !w.connClose {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	x.hbuf = b
}

func (w *response) writeBody(p []byte) (int, error) {
	if w.isHead() {
		return len(p), nil
	}
	bw := w.x.bw
	if w.chunked {
		if len(p) == 0 {
			return 0, nil
		}
		var hx [20]byte
		hb := strconv.AppendInt(hx[:0], int64(len(p)), 16)
		hb = append(hb, '\r', '\n')
		if _, err := bw.Write(hb); err != nil {
			return 0, err
		}
		n, err := bw.Write(p)
		if err != nil {
			return n, err
		}
		_, err = bw.WriteString("\r\n")
		return n, err
	}
	return bw.Write(p)
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if w.contentLength < 0 && len(w.x.stage)+len(p) <= cap(w.x.stage) {
			w.x.stage = append(w.x.stage, p...)
			return len(p), nil
		}
		if w.written == w.contentLength && !w.isHead() && w.x.bw.Buffered() == 0 && len(w.x.stage) == 0 {
			if hw, ok := w.c.nc.(HeadBodyWriter); ok {
				// The whole body in one write (a small file from
				// memory): head and body in one system call.
				w.buildHead(false, p)
				n, err := hw.WriteHeadBody(w.x.hbuf, p)
				if err != nil {
					w.closeAfter = true
				}
				return n, err
			}
		}
		w.commit(false, p)
	}
	return w.writeBody(p)
}

// HeadBodyWriter is a connection that writes a response head and its body
// with one system call (writev), in one segment when they fit: what a
// handler that has its whole body in memory gets from [response.Write].
// It returns the count of body bytes written.
type HeadBodyWriter interface {
	WriteHeadBody(head, body []byte) (int, error)
}

func (w *response) WriteString(s string) (int, error) {
	// A short string goes into the stage without a conversion to []byte.
	if !w.hijacked && w.wroteHeader && !w.committed && w.contentLength < 0 && bodyAllowed(w.status) && len(w.x.stage)+len(s) <= cap(w.x.stage) {
		w.written += int64(len(s))
		w.x.stage = append(w.x.stage, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// Flush sends the head and what is buffered.
func (w *response) Flush() {
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false, nil)
	}
	_ = w.x.bw.Flush()
}

// FlushError is Flush that reports the write error (http.ResponseController).
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false, nil)
	}
	return w.x.bw.Flush()
}

// ReadFrom sends a body from src; with a known length on a plain
// connection the head is flushed and src handed to the connection's
// ReadFrom (sendfile for files).
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	rf, ok := w.c.nc.(io.ReaderFrom)
	if !ok || !w.hasType || !bodyAllowed(w.status) || w.isHead() || w.contentLength < 0 {
		return io.Copy(writerOnly{w}, src)
	}
	if !w.committed {
		w.commit(false, nil)
	}
	// The head goes out with the body's first bytes, in one segment (a
	// write then a sendfile are two, and the client's stack handles
	// each): held back by the kernel (MSG_MORE) when body bytes follow
	// at once. If none came, the short body closes the connection, and
	// the close sends what was held.
	w.c.out.more = w.written < w.contentLength
	err := w.x.bw.Flush()
	w.c.out.more = false
	if err != nil {
		return 0, err
	}
	n, err := rf.ReadFrom(src)
	w.written += n
	return n, err
}

type writerOnly struct{ io.Writer }

// ReadFromSendsHead marks a writer whose ReadFrom sends the head itself,
// in the same segment as the body: a caller need not flush first.
func (w *response) ReadFromSendsHead() {}

// MoreWriter is a connection that can send bytes the kernel holds back
// until the next write (MSG_MORE), so that a response head and the file
// sent after it leave in one segment.
type MoreWriter interface {
	WriteMore(p []byte) (int, error)
}

// connWriter is what a connection's write buffer flushes to: the
// connection, or its WriteMore while more is set.
type connWriter struct {
	c    *conn
	more bool
}

func (cw *connWriter) Write(p []byte) (int, error) {
	if cw.more {
		if mw, ok := cw.c.nc.(MoreWriter); ok {
			return mw.WriteMore(p)
		}
	}
	return cw.c.nc.Write(p)
}

// Hijack hands the connection to the handler (WebSocket), with the read
// buffer (it may hold bytes the client sent after the head).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.committed {
		_ = w.x.bw.Flush()
	}
	w.hijacked = true
	c := w.c
	c.state.Store(stateClosed)
	c.forget(http.StateHijacked)
	_ = c.nc.SetDeadline(time.Time{})
	return c.nc, bufio.NewReadWriter(w.x.br, w.x.bw), nil
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error  { return w.c.setReadDeadline(t) }
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

// EnableFullDuplex serves http.ResponseController: the request body may
// always be read while the response is written here.
func (w *response) EnableFullDuplex() error { return nil }

// finish completes the response after the handler returned and reports
// whether the connection can serve another request.
func (w *response) finish() bool {
	x := w.x
	c := w.c
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true, nil)
	}
	if w.chunked {
		if len(w.trailers) == 0 && !hasTrailerPrefix(w.header) {
			_, _ = x.bw.WriteString("0\r\n\r\n")
		} else {
			b := append(x.hbuf[:0], "0\r\n"...)
			for _, k := range w.trailers {
				for _, v := range w.header[k] {
					b = appendField(b, k, v)
				}
			}
			for k, vv := range w.header {
				if strings.HasPrefix(k, http.TrailerPrefix) {
					for _, v := range vv {
						b = appendField(b, k[len(http.TrailerPrefix):], v)
					}
				}
			}
			b = append(b, "\r\n"...)
			x.hbuf = b
			_, _ = x.bw.Write(b)
		}
	}
	if w.contentLength >= 0 && w.written < w.contentLength && bodyAllowed(w.status) && !w.isHead() {
		w.closeAfter = true // a short body: the client must see the cut
	}
	if bd := &x.body; w.req.Body == bd && !bd.eof && !w.closeAfter {
		c.setReadDeadline(time.Now().Add(c.srv.rht()))
		n, err := io.CopyN(io.Discard, bd, maxDrain+1)
		if n > maxDrain || err != nil && err != io.EOF {
			w.closeAfter = true
		}
		c.setReadDeadline(time.Time{})
	}
	// The head and trailers are written: the header map is read no more,
	// and closing gives the exchange (w with it) back to the pool.
	w.released()
	if w.closeAfter {
		if bd := &x.body; w.req.Body == bd && !bd.eof {
			c.closeWriteAndWait(x)
		} else {
			c.closeWith(x)
		}
		return false
	}
	return true
}

func hasTrailerPrefix(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// body is a request body: a declared length or chunked, read from the
// connection's reader.
type body struct {
	x       *exchange
	remain  int64 // Content-Length bytes left
	chunked bool
	cr      io.Reader
	expect  bool // Expect: 100-continue, answered on the first read
	eof     bool
	closed  bool
	err     error
}

var errBodyAfterClose = http.ErrBodyReadAfterClose

func newChunkedReader(br *bufio.Reader) io.Reader { return httputil.NewChunkedReader(br) }

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errBodyAfterClose
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.expect {
		b.expect = false
		if w := &b.x.res; !w.wroteHeader && !w.hijacked {
			_, _ = b.x.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := b.x.bw.Flush(); err != nil {
				b.err = err
				return 0, err
			}
			w.sentContinue = true
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !b.chunked {
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err := b.x.br.Read(p)
		b.remain -= int64(n)
		if b.remain == 0 {
			b.ended()
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
	n, err := b.cr.Read(p)
	if err == io.EOF {
		if terr := b.readTrailer(); terr != nil {
			b.err = terr
			return n, terr
		}
		b.ended()
		return n, io.EOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// ended marks the body read to its end; a hang-up reported while body
// bytes were pending is looked at again now.
func (b *body) ended() {
	b.eof = true
	if c := b.x.res.c; c.hup.Load() {
		c.checkGone()
	}
}

var errTrailer = errors.New("http: malformed chunked trailer")

// readTrailer reads the trailer section after the last chunk, keeping the
// fields the request declared in its Trailer field (as net/http).
func (b *body) readTrailer() error {
	br := b.x.br
	p, err := br.Peek(2)
	if len(p) == 2 && p[0] == '\r' && p[1] == '\n' {
		_, _ = br.Discard(2)
		return nil
	}
	if len(p) >= 1 && p[0] == '\n' {
		_, _ = br.Discard(1)
		return nil
	}
	if err != nil {
		return io.ErrUnexpectedEOF
	}
	limit := b.x.res.c.srv.maxHead()
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if err != nil || total > limit {
			return errTrailer
		}
		l := strings.TrimRight(string(line), "\r\n")
		if l == "" {
			return nil
		}
		k, v, ok := strings.Cut(l, ":")
		key, kok, spaced := canonicalKey(k)
		if !ok || !kok || spaced {
			return errTrailer
		}
		if tr := b.x.res.req.Trailer; tr != nil {
			if _, declared := tr[key]; declared {
				tr[key] = append(tr[key], trimSPHT(v))
			}
		}
	}
}

func (b *body) Close() error {
	b.closed = true
	return nil
}

// httpDate is the Date field, formatted once a second.
func (s *Server) httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.sec == sec {
		return d.val
	}
	d := &dateCache{sec: sec, val: now.UTC().Format(http.TimeFormat)}
	s.date.Store(d)
	return d.val
}

type dateCache struct {
	sec int64
	val string
}
