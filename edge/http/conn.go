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
	head     headScanner // owned by the reading goroutine
	rearm    atomic.Bool // set by the handler when a request is done
	sawCL    atomic.Bool // Content-Length seen in the current head
	sendfile bool        // a plain socket: file bodies go out by sendfile
}

type connCtxKey struct{}

func (s *Server) wrapConn(c net.Conn, scanning bool) *edgeConn {
	ec := &edgeConn{Conn: c, srv: s, sendTimeout: s.limits.SendTimeout, scanning: scanning}
	if _, ok := c.(syscall.Conn); ok {
		_, ec.sendfile = c.(io.ReaderFrom)
	}
	ec.head.reset()
	return ec
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
	return c.Conn.Write(p)
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
	n, err := c.Conn.Read(p)
	if c.scanning && n > 0 {
		if c.rearm.Swap(false) {
			c.head.reset()
			c.sawCL.Store(false)
		}
		if c.head.feed(p[:n]) {
			c.sawCL.Store(true)
		}
	}
	return n, err
}

// requestDone re-arms the head scanner for the next request on the conn.
func (c *edgeConn) requestDone() { c.rearm.Store(true) }

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
		if sc, ok := c.Conn.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				return c.sendfileSection(rc, src, fd, off, n)
			}
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
func (c *edgeConn) sendfileSection(rc syscall.RawConn, src io.Reader, fd int, off, n int64) (int64, error) {
	var total int64
	for total < n {
		c.refreshWriteDeadline()
		m, err := sendfileAt(rc, fd, off+total, min(n-total, sendfileChunk))
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

// CloseWrite half-closes the connection when the underlying one can.
func (c *edgeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type writerOnly struct{ io.Writer }

// headScanner follows one HTTP/1 request head byte by byte and reports
// whether it carries a Content-Length field. Header names are at most
// len("content-length") bytes of interest; longer names are skipped.
type headScanner struct {
	state   int // 0 request line, 1 at line start, 2 in name, 3 skip to LF, 4 done
	name    [16]byte
	nameLen int
}

func (h *headScanner) reset() { *h = headScanner{} }

const clName = "content-length"

// feed consumes bytes and reports whether a Content-Length field ended in them.
func (h *headScanner) feed(p []byte) bool {
	found := false
	for _, b := range p {
		switch h.state {
		case 0, 3: // request line or rest of a field: skip to LF
			if b == '\n' {
				h.state = 1
			}
		case 1: // start of a line: empty line ends the head
			switch b {
			case '\r':
			case '\n':
				h.state = 4
			default:
				h.nameLen = 0
				h.state = 2
				h.addName(b)
			}
		case 2:
			switch b {
			case ':':
				if h.nameLen == len(clName) && string(h.name[:h.nameLen]) == clName {
					found = true
				}
				h.state = 3
			case '\n':
				h.state = 1
			default:
				h.addName(b)
			}
		case 4:
			return found
		}
	}
	return found
}

func (h *headScanner) addName(b byte) {
	if h.nameLen >= len(h.name) {
		h.nameLen = len(h.name) + 1 // too long to be Content-Length
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
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		return l.srv.wrapConn(c, true), nil
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
		c, err := l.Listener.Accept()
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
		go l.handshake(c)
	}
}

func (l *edgeListener) handshake(c net.Conn) {
	ec := l.srv.wrapConn(c, false)
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
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
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
