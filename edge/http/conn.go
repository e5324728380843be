package httpedge

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/edge/conn"
	"github.com/offedge/offedge/edge/http/guard"
)

// edgeConn wraps every accepted connection. It refreshes the write deadline
// before writes (nginx send_timeout: a client that accepts no byte for that
// long is dropped, however long the whole response takes), forwards
// ReadFrom so that net/http's sendfile path survives the wrapping, and on
// HTTP/1 scans each request head for Content-Length, which net/http drops
// silently when Transfer-Encoding is also present: we refuse such requests.
type edgeConn struct {
	net.Conn
	srv         *Server
	sendTimeout time.Duration
	lastRefresh atomic.Int64

	scanning bool        // HTTP/1 request heads pass through Read
	headMu   sync.Mutex  // Read (net/http's background read too) vs the handler
	head     headScanner // guarded by headMu
	sendfile bool        // a plain socket: file bodies go out by sendfile
	// rw is what reads and writes go through (conn.DataPath): the
	// socket's conn.Socket (recvfrom, sendto without net.Conn's layers)
	// for a TCP connection, the connection itself otherwise; sock is that
	// Socket, or nil, for writev, MSG_MORE and sendfile. One goroutine
	// reads and one writes at a time, as the HTTP/1 loop, crypto/tls and
	// a WebSocket tunnel's two copies do.
	rw      io.ReadWriter
	sock    *conn.Socket
	release func() // gives back the connection's slot (connGate), once
	closed  sync.Once
}

type connCtxKey struct{}

func (s *Server) wrapConn(c net.Conn, scanning bool) *edgeConn {
	ec := &edgeConn{Conn: c, srv: s, sendTimeout: s.limits.SendTimeout, scanning: scanning}
	if _, ok := c.(syscall.Conn); ok {
		_, ec.sendfile = c.(io.ReaderFrom)
	}
	ec.rw = conn.DataPath(c)
	ec.sock, _ = ec.rw.(*conn.Socket)
	ec.head.reset()
	return ec
}

// Close closes the connection and gives back its slot.
func (c *edgeConn) Close() error {
	err := c.Conn.Close()
	if c.release != nil {
		c.closed.Do(c.release)
	}
	return err
}

func (c *edgeConn) refreshWriteDeadline() {
	if c.sendTimeout <= 0 {
		return
	}
	now := time.Now().UnixNano()
	if now-c.lastRefresh.Load() < int64(time.Second) {
		return
	}
	c.lastRefresh.Store(now)
	_ = c.Conn.SetWriteDeadline(time.Unix(0, now).Add(c.sendTimeout))
}

func (c *edgeConn) Write(p []byte) (int, error) {
	c.refreshWriteDeadline()
	return c.rw.Write(p)
}

// WriteMore writes p with MSG_MORE: the kernel holds it back to send it
// with the next write (h1.MoreWriter: a response head ahead of the file
// that sendfile sends, one segment instead of two). A connection that is
// not a plain socket writes at once.
func (c *edgeConn) WriteMore(p []byte) (int, error) {
	if c.sock == nil || !c.sendfile {
		return c.Write(p)
	}
	c.refreshWriteDeadline()
	return c.sock.WriteMore(p)
}

// WriteHeadBody writes a response head and its whole body with one
// writev (h1.HeadBodyWriter): a small file from memory leaves in one
// system call and one segment, where a write and a sendfile were two
// calls. A connection that is not a plain socket writes them in turn.
func (c *edgeConn) WriteHeadBody(head, body []byte) (int, error) {
	if c.sock == nil || !c.sendfile {
		if _, err := c.Write(head); err != nil {
			return 0, err
		}
		return c.Write(body)
	}
	c.refreshWriteDeadline()
	n, err := c.sock.WriteV(head, body)
	return max(0, n-len(head)), err
}

func (c *edgeConn) SetWriteDeadline(t time.Time) error {
	c.lastRefresh.Store(0)
	return c.Conn.SetWriteDeadline(t)
}

func (c *edgeConn) SetDeadline(t time.Time) error {
	c.lastRefresh.Store(0)
	return c.Conn.SetDeadline(t)
}

func (c *edgeConn) Read(p []byte) (int, error) {
	n, err := c.rw.Read(p)
	if c.scanning && n > 0 {
		c.headMu.Lock()
		c.head.feed(p[:n])
		c.headMu.Unlock()
	}
	return n, err
}

// nextHead returns what the scanner saw in the head of the request the
// handler is starting (headCL, headTE, headLost).
func (c *edgeConn) nextHead() uint8 {
	c.headMu.Lock()
	defer c.headMu.Unlock()
	if !c.scanning {
		return 0
	}
	return c.head.take()
}

// stopScanning ends head scanning: the connection was hijacked (WebSocket)
// and no longer carries HTTP/1 requests.
func (c *edgeConn) stopScanning() {
	c.headMu.Lock()
	c.scanning = false
	c.head.heads = nil
	c.headMu.Unlock()
}

// sendfileChunk bounds one sendfile call, as nginx sendfile_max_chunk 1m, so
// the send timeout is refreshed while a large file is flowing.
const sendfileChunk = 1 << 20

// ReadFrom lets net/http hand files straight to the kernel (sendfile) when
// the underlying connection supports it.
func (c *edgeConn) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := c.Conn.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{c}, src)
	}
	if fd, off, n, ok := fileSection(src); ok {
		if c.sock != nil {
			return c.sendfileSection(src, fd, off, n)
		}
	}
	var f *os.File
	remain := int64(-1)
	switch v := src.(type) {
	case *os.File:
		f = v
	case *io.LimitedReader:
		if ff, ok := v.R.(*os.File); ok {
			f, remain = ff, v.N
		}
	}
	if f == nil {
		c.refreshWriteDeadline()
		return rf.ReadFrom(src)
	}
	var total int64
	for remain != 0 {
		chunk := int64(sendfileChunk)
		if remain > 0 && remain < chunk {
			chunk = remain
		}
		c.refreshWriteDeadline()
		n, err := rf.ReadFrom(&io.LimitedReader{R: f, N: chunk})
		total += n
		c.srv.stats.zeroCopyBytes.Add(uint64(n))
		if remain > 0 {
			remain -= n
		}
		if lr, ok := src.(*io.LimitedReader); ok {
			lr.N -= n
		}
		if err != nil {
			return total, err
		}
		if n < chunk { // end of file
			break
		}
	}
	return total, nil
}

// sendfileSection sends a section of a cached open file (shared between
// requests, so sent at an explicit offset) in chunks of sendfileChunk.
func (c *edgeConn) sendfileSection(src io.Reader, fd int, off, n int64) (int64, error) {
	var total int64
	for total < n {
		c.refreshWriteDeadline()
		m, err := c.sock.SendFile(fd, off+total, min(n-total, sendfileChunk))
		total += m
		c.srv.stats.zeroCopyBytes.Add(uint64(m))
		if err != nil {
			advance(src, total)
			return total, err
		}
	}
	advance(src, total)
	return total, nil
}

// SyscallConn exposes the socket of a plain connection, so that
// edge/http/h1 can park it on readiness while it is idle.
func (c *edgeConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNotSocket
}

var errNotSocket = errors.New("not a socket")

// NetConn is the wrapped connection (as tls.Conn's NetConn): edge/http/h1
// finds the socket under a TLS connection through it, to learn of the
// client's hang-up while a request is served.
func (c *edgeConn) NetConn() net.Conn { return c.Conn }

// CloseWrite half-closes the connection when the underlying one can.
func (c *edgeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type writerOnly struct{ io.Writer }

// headScanner follows the HTTP/1 request stream of a connection byte by
// byte, as net/http frames it (a body of Content-Length bytes, or chunked
// when Transfer-Encoding is present), and records for each request head
// whether it carried Content-Length and Transfer-Encoding: net/http drops
// Content-Length silently when both are present, and ignores
// Transfer-Encoding on HTTP/1.0, so the handler needs the scanner to refuse
// such requests — also when they are pipelined behind another one in the
// same read. Where the stream stops making sense (a bad length or chunk),
// net/http refuses the request and closes the connection; the scanner
// stops (lost) and every later request on the connection is refused.
type headScanner struct {
	state   int
	name    [20]byte
	nameLen int
	flags   uint8 // of the head being read
	clValue int64 // Content-Length of the head being read, -1 none
	clDigit bool  // a digit of the value was seen
	remain  int64 // body or chunk bytes to skip
	crlf    int   // bytes of the CRLF after chunk data seen

	heads []uint8 // flags of completed heads not yet taken by a handler
}

const (
	headCL   = 1 << iota // Content-Length present
	headTE               // Transfer-Encoding present
	headLost             // the scanner lost the framing before this head
)

// scanner states
const (
	sLine        = iota // request line: skip to LF
	sLineStart          // start of a field line; an empty line ends the head
	sName               // in a field name
	sValue              // rest of a field line
	sCLValue            // a Content-Length value
	sBody               // remain bytes of a Content-Length body
	sChunkSize          // chunk size (hex)
	sChunkExt           // chunk extension: skip to LF
	sChunkData          // remain bytes of chunk data
	sChunkCRLF          // the CRLF after chunk data
	sTrailer            // start of a trailer line; an empty line ends the body
	sTrailerRest        // rest of a trailer line
	sLost               // framing not followed any more
)

// maxPendingHeads bounds the heads read ahead of the handlers (net/http
// reads at most its 4 KiB buffer ahead).
const maxPendingHeads = 512

func (h *headScanner) reset() { *h = headScanner{clValue: -1} }

const (
	clName = "content-length"
	teName = "transfer-encoding"
)

// feed consumes bytes and reports whether a Content-Length field name
// ended in them.
func (h *headScanner) feed(p []byte) bool {
	found := false
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch h.state {
		case sLine, sValue:
			if b == '\n' {
				h.state = sLineStart
			}
		case sLineStart:
			switch b {
			case '\r':
			case '\n':
				h.endHead()
			default:
				h.nameLen = 0
				h.state = sName
				h.addName(b)
			}
		case sName:
			switch b {
			case ':':
				h.state = sValue
				switch string(h.name[:min(h.nameLen, len(h.name))]) {
				case clName:
					found = true
					h.flags |= headCL
					h.state = sCLValue
					h.clDigit = false
					if h.clValue < 0 {
						h.clValue = 0
					} else {
						h.clValue = -2 // a second field: net/http compares them
					}
				case teName:
					h.flags |= headTE
				}
			case '\n':
				h.state = sLineStart
			default:
				h.addName(b)
			}
		case sCLValue:
			switch {
			case b >= '0' && b <= '9' && h.clValue >= 0:
				if h.clValue > (1<<62)/10 {
					h.lose()
					continue
				}
				h.clValue = h.clValue*10 + int64(b-'0')
				h.clDigit = true
			case b >= '0' && b <= '9': // second field: skip
			case b == ' ' || b == '\t' || b == '\r':
			case b == '\n':
				h.state = sLineStart
			default:
				h.lose() // net/http refuses it
			}
		case sBody, sChunkData:
			n := min(h.remain, int64(len(p)-i))
			h.remain -= n
			i += int(n) - 1
			if h.remain == 0 {
				if h.state == sBody {
					h.state = sLine
				} else {
					h.state, h.crlf = sChunkCRLF, 0
				}
			}
		case sChunkSize:
			switch {
			case guard.IsHex(b):
				if h.remain > 1<<58 {
					h.lose()
					continue
				}
				h.remain = h.remain<<4 | int64(guard.Unhex(b))
				h.crlf = 1 // a digit was seen
			case b == ';' || b == ' ' || b == '\t':
				h.state = sChunkExt
			case b == '\r':
			case b == '\n':
				h.endChunkLine()
			default:
				h.lose()
			}
		case sChunkExt:
			if b == '\n' {
				h.endChunkLine()
			}
		case sChunkCRLF:
			if (h.crlf == 0 && b != '\r') || (h.crlf == 1 && b != '\n') {
				h.lose()
				continue
			}
			h.crlf++
			if h.crlf == 2 {
				h.state, h.remain, h.crlf = sChunkSize, 0, 0
			}
		case sTrailer:
			switch b {
			case '\r':
			case '\n':
				h.state = sLine
			default:
				h.state = sTrailerRest
			}
		case sTrailerRest:
			if b == '\n' {
				h.state = sTrailer
			}
		case sLost:
			return found
		}
	}
	return found
}

// endHead records the head just ended and sets up its body's framing.
func (h *headScanner) endHead() {
	if len(h.heads) >= maxPendingHeads {
		h.lose()
		return
	}
	h.heads = append(h.heads, h.flags)
	te, cl := h.flags&headTE != 0, h.clValue
	h.flags, h.clValue, h.remain = 0, -1, 0
	switch {
	case te:
		h.state, h.crlf = sChunkSize, 0
	case cl > 0:
		h.state, h.remain = sBody, cl
	case cl == -2:
		h.lose() // two Content-Length fields: net/http refuses them if they differ
	default:
		h.state = sLine
	}
}

func (h *headScanner) endChunkLine() {
	if h.crlf == 0 { // no digit
		h.lose()
		return
	}
	if h.remain == 0 {
		h.state = sTrailer
		return
	}
	h.state = sChunkData
}

func (h *headScanner) lose() { h.state = sLost }

// take returns the flags of the oldest head no handler has taken; a
// request without one (the scanner lost the framing) gets headLost.
func (h *headScanner) take() uint8 {
	if len(h.heads) == 0 {
		return headLost
	}
	f := h.heads[0]
	h.heads = h.heads[1:]
	if len(h.heads) == 0 {
		h.heads = h.heads[:0:0]
	}
	return f
}

func (h *headScanner) addName(b byte) {
	if h.nameLen >= len(h.name) {
		h.nameLen = len(h.name) + 1 // too long to be a name of interest
		return
	}
	if b >= 'A' && b <= 'Z' {
		b += 'a' - 'A'
	}
	h.name[h.nameLen] = b
	h.nameLen++
}

// edgeListener wraps the runtime's (ACL-filtered) listener. On plain HTTP it
// wraps each connection; on TLS it runs handshakes off the accept loop (each
// bounded by the header timeout), refuses clients whose SNI matches no site,
// hands HTTP/2 connections to net/http as *tls.Conn and HTTP/1 ones wrapped
// for head scanning.
type edgeListener struct {
	net.Listener
	srv    *Server
	tlsCfg *tls.Config

	ctx    context.Context
	cancel context.CancelFunc
	conns  chan net.Conn
	errc   chan error
	once   sync.Once
}

func (s *Server) newListener(ln net.Listener) *edgeListener {
	el := &edgeListener{Listener: ln, srv: s}
	if s.tlsOn {
		el.tlsCfg = s.tlsConfig
		el.ctx, el.cancel = context.WithCancel(context.Background())
		el.conns = make(chan net.Conn)
		el.errc = make(chan error, 1)
		go el.acceptLoop()
	}
	return el
}

func (l *edgeListener) Accept() (net.Conn, error) {
	if l.tlsCfg == nil {
		for {
			c, release, err := l.accept()
			if err != nil {
				return nil, err
			}
			if c == nil {
				continue // over its client's cap: reset
			}
			// edge/http/h1 parses the framing itself: no head scanning.
			ec := l.srv.wrapConn(c, l.srv.h1 == nil)
			ec.release = release
			return ec, nil
		}
	}
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// accept takes a slot of the server's connection cap (waiting for one:
// the connection waits in the backlog, holding no descriptor), accepts, and
// counts the connection against its client. A client over its cap gets its
// connection reset: c is nil, err nil.
func (l *edgeListener) accept() (c net.Conn, release func(), err error) {
	g := l.srv.gate
	if !g.acquire() {
		return nil, nil, net.ErrClosed
	}
	c, err = l.Listener.Accept()
	if err != nil {
		g.releaseSlot()
		return nil, nil, err
	}
	release, ok := g.admit(c)
	if !ok {
		if ok, n := l.srv.refusedLog.allow(l.srv.opts.Now()); ok {
			l.srv.log.Warn("client over its connection cap; connection reset", "listener", l.srv.name(),
				"client", acl.PeerAddr(c).Addr().String(), "max_conns_per_client", g.perClient, "suppressed", n)
		}
		conn.Abort(c)
		return nil, nil, nil
	}
	return c, release, nil
}

func (l *edgeListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() {
		if l.cancel != nil {
			l.cancel()
		}
	})
	return err
}

func (l *edgeListener) acceptLoop() {
	var delay time.Duration
	for {
		c, release, err := l.accept()
		if err == nil && c == nil {
			continue // over its client's cap: reset
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = max(5*time.Millisecond, min(2*delay, time.Second))
				select {
				case <-time.After(delay):
					continue
				case <-l.ctx.Done():
					return
				}
			}
			select {
			case l.errc <- err:
			case <-l.ctx.Done():
			}
			return
		}
		delay = 0
		go l.handshake(c, release)
	}
}

func (l *edgeListener) handshake(c net.Conn, release func()) {
	l.srv.tickets.rotate()
	ec := l.srv.wrapConn(c, false)
	ec.release = release
	tc := tls.Server(ec, l.tlsCfg)
	ctx, cancel := context.WithTimeout(l.ctx, l.srv.limits.ReadHeaderTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		l.srv.stats.tlsHandshakeErrors.Add(1)
		l.srv.log.Debug("tls handshake failed", "listener", l.srv.name(), "peer", c.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	var out net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol == ACMETLS1 {
		// A TLS-ALPN-01 validation is the handshake: nothing is served.
		l.srv.log.Debug("ACME TLS-ALPN-01 validation answered", "listener", l.srv.name(), "peer", c.RemoteAddr().String(), "server_name", tc.ConnectionState().ServerName)
		tc.Close()
		return
	}
	if st := tc.ConnectionState(); st.NegotiatedProtocol != "h2" && l.srv.h1 != nil {
		hc := l.srv.wrapConn(tc, false)
		hc.sendTimeout = 0 // the inner connection refreshes the deadline
		cancel()
		l.srv.h1.ServeConn(hc, &st)
		return
	} else if st.NegotiatedProtocol != "h2" {
		hc := l.srv.wrapConn(tc, true)
		hc.sendTimeout = 0 // the inner connection refreshes the deadline
		out = hc
	}
	select {
	case l.conns <- out:
	case <-l.ctx.Done():
		tc.Close()
	}
}
