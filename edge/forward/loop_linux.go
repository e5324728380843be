package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/offedge/offedge/edge/acl"
	"github.com/offedge/offedge/edge/conn"
)

// The event loop: on Linux a forward serves each of its TCP listeners from
// one goroutine per processor (serveLoop) that accepts, connects and relays
// every connection it takes itself,
// on non-blocking sockets in an epoll set of its own (edge-triggered),
// the set waited on through the runtime's network poller as edge/http/h1
// parks its idle connections. A connection is two descriptors and a small
// struct: no goroutine, no net.Conn, no timer. Data moves with read and
// write through the loop's one buffer until a read fills it, then that
// direction splices through a pipe of its own (HAProxy's splice-auto). A
// read shorter than the buffer has drained the socket (as nginx assumes
// with EPOLLRDHUP), so a message costs one read and one write, not a third
// call to learn EAGAIN. A sweep goroutine enforces the connect and idle
// timeouts and switches keepalive on for connections older than
// keepAliveAfter. The goroutine-per-connection path (conn.Server and
// conn.Relay) serves other systems and other listeners.

const (
	loopBuf   = 16 << 10 // a read this full switches its direction to splice
	spliceMax = 1 << 20  // bytes per splice call (and the pipe's size where allowed)
	idlePipes = 16       // pipes a loop keeps for the next spliced direction
	maxEvents = 128
)

const (
	evIn    = syscall.EPOLLIN
	evOut   = syscall.EPOLLOUT
	evRDHup = syscall.EPOLLRDHUP
	evHup   = syscall.EPOLLHUP | syscall.EPOLLERR
	evET    = 1 << 31
)

// useLoop switches the event loop off (tests of the other path).
var useLoop = true

// maxPipes bounds the pipes a forwarder's spliced directions hold at once:
// a pipe whose destination is slow holds up to spliceMax of kernel memory
// (HAProxy bounds its pipes too, maxpipes). A direction that finds none
// free copies through the loop's buffer instead (holding at most loopBuf
// while its destination is slow). A variable for its test.
var maxPipes int64 = 64

// spliceRounds bounds what one spliced direction moves before the loop
// serves the others (8 MiB with a 1 MiB pipe); it resumes after them, from
// the loop's again list (edge-triggered: no new event would come for bytes
// already waiting). A variable for the test of that resumption.
var spliceRounds = 8

type loop struct {
	f     *Forwarder
	lfd   int
	local netip.Addr // the listener's own address, when it is not a wildcard
	admit func(netip.AddrPort) bool
	epfd  int
	file  *os.File
	raw   syscall.RawConn

	mu        sync.Mutex
	conns     map[int]*end // the open connections' descriptors
	seq       uint32       // the last connection id (the epoll tag besides the descriptor)
	n         int          // open connections
	accepting bool         // the listener is in the epoll set
	resumeAt  int64        // accepts paused after an error until then
	acceptErr time.Duration
	stopped   bool // Shutdown began
	closed    bool
	drained   chan struct{} // closed when stopped and n is 0 (checkDrained)
	isDrained bool
	done      chan struct{} // closed by close
	swept     chan struct{} // closed when the sweep goroutine returns
	buf       []byte
	pipes     [][2]int
	events    []syscall.EpollEvent
	again     []*end // directions to pump again, their bound reached
	now       int64
	werr      error
}

// fconn is one forwarded connection.
type fconn struct {
	id         uint32
	cli, tgt   end
	cfg        *Config
	client     netip.AddrPort
	slot       netip.Addr // its per-client slot
	target     netip.AddrPort
	source     netip.Addr
	connecting bool
	deadline   int64 // of the connect
	last       int64 // when a byte last moved
	born       int64
	kept       bool // keepalive is on for the target
	capped     bool // same-host socket buffers capped (toSplice)
	closed     bool
}

// end is one socket of a connection and the direction that reads it: the
// client's end carries client → target (up).
type end struct {
	fd       int
	c        *fconn
	peer     *end
	up       bool
	pend     []byte // read from fd, not yet written to peer
	spliced  bool
	noSplice bool   // toSplice was tried (a direction turns bulk once)
	pipe     [2]int // read, write ends when spliced
	inPipe   int    // bytes in pipe
	queued   bool   // in the loop's again list
	eof      bool   // fd's read side ended
	rdhup    bool   // epoll reported the peer's FIN (or a hang-up): read to the end
	shut     bool   // the EOF was passed on
}

func (e *end) blocked() bool { return len(e.pend) > 0 || e.inPipe > 0 }

// serveLoop serves ln from event loops when it can (a TCP listener, or
// one filtered by edge/acl over it), one per P (GOMAXPROCS, at most
// maxLoops), each with the listener in its epoll set as EPOLLEXCLUSIVE
// (the kernel wakes one loop per arrival, not all). ok is false when it
// cannot, and when no loop can be set up (no descriptor left for an
// epoll set), which is logged: the goroutine path serves instead.
func (f *Forwarder) serveLoop(ln net.Listener) (ok bool, err error) {
	if !useLoop {
		return false, nil
	}
	inner, admit := ln, func(netip.AddrPort) bool { return true }
	if al, isACL := ln.(*acl.Listener); isACL {
		inner, admit = al.Listener, al.Admit
	}
	tl, isTCP := inner.(*net.TCPListener)
	if !isTCP {
		return false, nil
	}
	g := &group{ln: ln}
	for range max(1, min(runtime.GOMAXPROCS(0), maxLoops)) {
		l, err := newLoop(f, tl, admit)
		if err != nil {
			if len(g.loops) == 0 {
				f.opts.Logger.Warn("no event loop; a goroutine per connection serves the listener", "forward", f.cur.Load().Name, "err", err)
				return false, nil
			}
			f.opts.Logger.Warn("fewer event loops than processors", "forward", f.cur.Load().Name, "loops", len(g.loops), "err", err)
			break
		}
		g.loops = append(g.loops, l)
	}
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		g.close()
		return true, ErrServerClosed
	}
	f.groups = append(f.groups, g)
	f.mu.Unlock()
	errs := make(chan error, len(g.loops))
	for _, l := range g.loops[1:] {
		go func() { errs <- l.run() }()
	}
	first := g.loops[0].run()
	if first != ErrServerClosed {
		g.close() // a loop failed: the listener stops, as an accept error stops the other path's
	}
	for range g.loops[1:] {
		if err := <-errs; first == ErrServerClosed && err != ErrServerClosed {
			first = err
			g.close()
		}
	}
	return true, first
}

// maxLoops bounds a listener's event loops.
const maxLoops = 16

// group is the loops serving one listener.
type group struct {
	ln    net.Listener
	loops []*loop
}

// stop ends accepting in every loop, then closes the listener.
func (g *group) stop() {
	for _, l := range g.loops {
		l.stop()
	}
	g.ln.Close()
}

// close resets what is still open and ends every loop.
func (g *group) close() {
	g.stop()
	for _, l := range g.loops {
		l.close()
	}
}

func newLoop(f *Forwarder, tl *net.TCPListener, admit func(netip.AddrPort) bool) (*loop, error) {
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	l := &loop{f: f, admit: admit, conns: make(map[int]*end), drained: make(chan struct{}), done: make(chan struct{}), swept: make(chan struct{}),
		buf: make([]byte, loopBuf), events: make([]syscall.EpollEvent, maxEvents)}
	if err := rc.Control(func(fd uintptr) { l.lfd = int(fd) }); err != nil {
		return nil, err
	}
	if a := tl.Addr().(*net.TCPAddr).AddrPort().Addr().Unmap(); !a.IsUnspecified() {
		l.local = a
	}
	if l.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(l.epfd, true); err != nil {
		syscall.Close(l.epfd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	l.file = os.NewFile(uintptr(l.epfd), "forward-epoll")
	if l.raw, err = l.file.SyscallConn(); err != nil {
		l.file.Close()
		return nil, err
	}
	if err := l.startAccepting(); err != nil {
		l.file.Close()
		return nil, err
	}
	go l.sweep()
	return l, nil
}

// run is the loop; it returns when the loop is closed.
func (l *loop) run() error {
	for {
		err := l.raw.Read(func(fd uintptr) bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			for !l.closed {
				n, err := conn.EpollPoll(fd, l.events)
				if err == syscall.EINTR {
					continue
				}
				if err != nil {
					l.werr = err
					return true
				}
				l.now = l.f.opts.Now().UnixNano()
				for i := range l.events[:n] {
					l.event(l.events[i])
				}
				if len(l.again) > 0 {
					again := l.again
					l.again = nil
					for _, d := range again {
						d.queued = false
						l.pump(d)
					}
					// Let go of mu (the sweep, Shutdown) between rounds;
					// Read calls this again at once.
					return true
				}
				if n < len(l.events) {
					return false
				}
			}
			return true
		})
		l.mu.Lock()
		closed, werr := l.closed, l.werr
		l.mu.Unlock()
		if closed {
			return ErrServerClosed
		}
		if err == nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("forward %q: event loop: %w", l.f.cur.Load().Name, err)
		}
	}
}

func (l *loop) event(ev syscall.EpollEvent) {
	if ev.Pad == 0 {
		if int(ev.Fd) == l.lfd && l.accepting {
			l.acceptAll()
		}
		return
	}
	e := l.conns[int(ev.Fd)]
	if e == nil || e.c.id != uint32(ev.Pad) {
		return // a descriptor closed earlier in this batch
	}
	c := e.c
	if c.connecting {
		switch {
		case ev.Events&evHup != 0:
			l.dialFailed(c, os.NewSyscallError("connect", soError(c.tgt.fd)))
			return
		case ev.Events&evOut == 0:
			return
		}
		// The target may have spoken already (an SMTP banner): the
		// same event carries its EPOLLIN, which ET will not repeat.
		if l.connected(c); c.closed {
			return
		}
	}
	if ev.Events&evOut != 0 && e.peer.blocked() {
		l.pump(e.peer)
	}
	if ev.Events&(evIn|evRDHup|evHup) != 0 {
		if ev.Events&(evRDHup|evHup) != 0 {
			e.rdhup = true
		}
		l.pump(e)
	}
}

func (l *loop) startAccepting() error {
	ev := syscall.EpollEvent{Events: evIn | unix.EPOLLEXCLUSIVE, Fd: int32(l.lfd)}
	if err := sysEpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, l.lfd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.accepting = true
	return nil
}

// pauseAccepting takes the listener out of the set: new connections wait
// in the kernel's backlog (at max_conns, or after an accept error).
func (l *loop) pauseAccepting() {
	if l.accepting {
		sysEpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, l.lfd, nil)
		l.accepting = false
	}
}

// resume puts the listener back when a slot is free and no error pause
// runs (called as connections end, and by the sweep).
func (l *loop) resume() {
	if l.accepting || l.stopped || l.now < l.resumeAt {
		return
	}
	// Level-triggered: connections waiting in the backlog are reported
	// at the loop's next round.
	if err := l.startAccepting(); err != nil {
		l.f.opts.Logger.Warn("cannot resume accepting", "forward", l.f.cur.Load().Name, "err", err)
	}
}

// resumeNow is resume from outside the loop (a configuration update).
func (l *loop) resumeNow() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.now = l.f.opts.Now().UnixNano()
		l.resume()
	}
}

func (l *loop) acceptAll() {
	for l.accepting {
		if !l.f.srv.TryAcquire() {
			l.pauseAccepting()
			return
		}
		fd, peer, err := sysAccept(l.lfd)
		if err != nil {
			l.f.srv.Release()
			switch {
			case err == syscall.EAGAIN:
				l.acceptErr = 0
				return
			case err == syscall.ECONNABORTED || err == syscall.EINTR || err == syscall.EPROTO:
				continue
			}
			// Out of descriptors or memory (or worse): pause, as
			// conn.Server's accept loop backs off.
			l.acceptErr = min(max(2*l.acceptErr, 5*time.Millisecond), time.Second)
			l.resumeAt = l.now + int64(l.acceptErr)
			l.pauseAccepting()
			l.f.opts.Logger.Warn("accept failed; backing off", "kind", "forward", "name", l.f.cur.Load().Name,
				"err", os.NewSyscallError("accept4", err), "delay", l.acceptErr)
			return
		}
		l.accepted(fd, peer)
	}
}

func (l *loop) accepted(fd int, peer netip.AddrPort) {
	if !l.admit(peer) {
		sysClose(fd)
		l.f.srv.Release()
		return
	}
	slot, ok := l.f.srv.AdmitClient(peer.Addr())
	if !ok {
		l.f.srv.RefusedClient(peer.Addr(), "connection")
		sysAbort(fd)
		l.f.srv.Release()
		return
	}
	l.f.accepted.Add(1)
	l.f.active.Add(1)
	l.n++
	if l.seq++; l.seq == 0 {
		l.seq = 1 // 0 tags the listener
	}
	cfg := l.f.cur.Load()
	c := &fconn{id: l.seq, cfg: cfg, client: peer, slot: slot, born: l.now, last: l.now}
	c.cli = end{fd: fd, c: c, peer: &c.tgt, up: true}
	c.tgt = end{fd: -1, c: c, peer: &c.cli}
	sysSetInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	l.dial(c)
}

// dial starts the connection to the target.
func (l *loop) dial(c *fconn) {
	var err error
	c.target, c.source, err = l.f.route(c.cfg.Target)
	if err != nil {
		l.dialFailed(c, err)
		return
	}
	fd, err := sysSocket(family(c.target.Addr()))
	if err != nil {
		l.dialFailed(c, os.NewSyscallError("socket", err))
		return
	}
	c.tgt.fd = fd
	sysSetInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if c.source.IsValid() {
		// As conn.Dialer: the port is left to connect (bindNoPort).
		sysSetInt(fd, syscall.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := sysBind(fd, netip.AddrPortFrom(c.source, 0)); err != nil {
			l.dialFailed(c, os.NewSyscallError("bind", err))
			return
		}
	}
	err = sysConnect(fd, c.target)
	if err != nil && err != syscall.EINPROGRESS {
		l.dialFailed(c, os.NewSyscallError("connect", err))
		return
	}
	if err := l.register(&c.tgt); err != nil {
		l.dialFailed(c, err)
		return
	}
	c.connecting = true
	c.deadline = l.now + int64(c.cfg.ConnectTimeout)
}

func (l *loop) register(e *end) error {
	ev := syscall.EpollEvent{Events: evIn | evOut | evRDHup | evET, Fd: int32(e.fd), Pad: int32(e.c.id)}
	if err := sysEpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, e.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.conns[e.fd] = e
	return nil
}

// connected starts the relay once the target accepted: the client's
// socket joins the set (epoll reports what already waits in it).
func (l *loop) connected(c *fconn) {
	c.connecting = false
	c.last = l.now
	if c.cfg.ProxyProtocol {
		c.cli.pend = AppendProxyV2(nil, c.client, l.localOf(c.cli.fd))
	}
	if err := l.register(&c.cli); err != nil {
		l.fail(c, err)
		return
	}
	if c.cli.blocked() {
		l.pump(&c.cli)
	}
}

// localOf is the address a client connected to.
func (l *loop) localOf(fd int) netip.AddrPort {
	ap := sysSockname(fd)
	if ap.IsValid() {
		return ap
	}
	return netip.AddrPortFrom(l.local, 0)
}

// pump moves what d's socket holds to its peer until the socket is drained
// or the peer cannot take more (its EPOLLOUT resumes it), and passes EOF on.
func (l *loop) pump(d *end) {
	c := d.c
	rounds := 0
	for !c.closed {
		if !l.flush(d) {
			return
		}
		if d.eof {
			if !d.shut {
				l.passEOF(d)
			}
			return
		}
		if d.spliced {
			if rounds++; rounds > spliceRounds {
				if !d.queued {
					d.queued = true
					l.again = append(l.again, d)
				}
				return
			}
			n, err := sysSplice(d.fd, d.pipe[1], spliceMax)
			switch {
			case err == syscall.EAGAIN:
				return
			case err != nil:
				l.fail(c, os.NewSyscallError("splice", err))
				return
			case n == 0:
				d.eof = true
			default:
				d.inPipe += n
				c.last = l.now
			}
			continue
		}
		n, e := conn.Recv(uintptr(d.fd), l.buf)
		switch {
		case e == syscall.EAGAIN:
			return
		case e != 0:
			l.fail(c, os.NewSyscallError("recvfrom", e))
			return
		case n == 0:
			d.eof = true
			continue
		}
		c.last = l.now
		w, err := sysWrite(d.peer.fd, l.buf[:n])
		if err != nil && err != syscall.EAGAIN {
			l.fail(c, os.NewSyscallError("write", err))
			return
		}
		l.count(d, w)
		if w < n {
			d.pend = append(d.pend[:0], l.buf[w:n]...)
			return
		}
		if n < len(l.buf) && !d.rdhup {
			// Drained: a read returns what the socket holds, up to
			// the buffer. After the peer's FIN, read on to the EOF:
			// it came with this edge, and no other will follow.
			return
		}
		if n < len(l.buf) || d.noSplice {
			continue
		}
		l.toSplice(d)
	}
}

// flush writes what d holds for its peer; false when the peer's socket is
// full (or the connection failed).
func (l *loop) flush(d *end) bool {
	if len(d.pend) > 0 {
		w, err := sysWrite(d.peer.fd, d.pend)
		if err != nil && err != syscall.EAGAIN {
			l.fail(d.c, os.NewSyscallError("write", err))
			return false
		}
		l.count(d, w)
		if d.pend = d.pend[w:]; len(d.pend) > 0 {
			return false
		}
		d.pend = nil
	}
	for d.inPipe > 0 {
		n, err := sysSplice(d.pipe[0], d.peer.fd, d.inPipe)
		if err == syscall.EAGAIN {
			return false
		}
		if err != nil {
			l.fail(d.c, os.NewSyscallError("splice", err))
			return false
		}
		d.inPipe -= n
		l.count(d, n)
	}
	return true
}

func (l *loop) count(d *end, n int) {
	if n <= 0 {
		return
	}
	d.c.last = l.now
	if d.up {
		l.f.bytesUp.Add(uint64(n))
	} else {
		l.f.bytesDown.Add(uint64(n))
	}
}

// toSplice switches d to splice. Past maxPipes, or without a pipe (out
// of descriptors), it stays on read and write for good.
func (l *loop) toSplice(d *end) {
	d.noSplice = true // decided once, either way
	if l.f.pipes.Add(1) > maxPipes {
		l.f.pipes.Add(-1)
		return
	}
	if k := len(l.pipes); k > 0 {
		d.pipe = l.pipes[k-1]
		l.pipes = l.pipes[:k-1]
	} else {
		r, w, err := sysPipe()
		if err != nil {
			l.f.pipes.Add(-1)
			return
		}
		d.pipe = [2]int{r, w}
	}
	d.spliced = true
	c := d.c
	if !c.capped {
		// A bulk connection: cap its same-host sockets now (a short
		// one never needs the four calls).
		c.capped = true
		if sameHost(c.client.Addr(), l.local) {
			conn.CapLocalBuffersFD(c.cli.fd)
		}
		if sameHost(c.target.Addr(), c.source) {
			conn.CapLocalBuffersFD(c.tgt.fd)
		}
	}
}

// passEOF half-closes d's peer; when the other direction ended already,
// both sockets are closed instead (a FIN each: nothing is left unread).
func (l *loop) passEOF(d *end) {
	d.shut = true
	if d.peer.shut {
		l.closeConn(d.c, false)
		return
	}
	if err := sysShutdownWrite(d.peer.fd); err != nil && err != syscall.ENOTCONN {
		l.fail(d.c, os.NewSyscallError("shutdown", err))
	}
}

// fail resets both sides, as conn.Relay does when a direction fails, so
// that neither peer takes a truncated stream for a complete one.
func (l *loop) fail(c *fconn, err error) {
	if !quiet(err) {
		l.f.opts.Logger.Debug("connection ended with error", "forward", c.cfg.Name, "client", c.client.String(), "err", err)
	}
	l.closeConn(c, true)
}

func (l *loop) dialFailed(c *fconn, err error) {
	var de *conn.DialError
	if !errors.As(err, &de) {
		de = &conn.DialError{Addr: c.cfg.Target, Source: c.source, Reason: conn.ReasonOf(err), Err: err}
	}
	l.f.dialFailures.Add(de.Reason)
	if ok, n := l.f.logLim.Allow(l.f.opts.Now()); ok {
		l.f.opts.Logger.Warn("target unreachable; closing client connection", "forward", c.cfg.Name, "client", c.client.String(),
			"err", fmt.Errorf("forward %q: target %s: %w", c.cfg.Name, c.cfg.Target, de), "suppressed_since_last", n)
	}
	l.closeConn(c, false)
}

// closeConn closes both sockets (reset when abort) and gives the
// connection's slots back.
func (l *loop) closeConn(c *fconn, abort bool) {
	if c.closed {
		return
	}
	c.closed = true
	for _, e := range []*end{&c.cli, &c.tgt} {
		if e.fd < 0 {
			continue
		}
		if l.conns[e.fd] == e {
			delete(l.conns, e.fd)
		}
		if abort {
			sysAbort(e.fd)
		} else {
			sysClose(e.fd)
		}
		e.fd = -1
		if e.spliced {
			l.putPipe(e.pipe, e.inPipe == 0)
			e.spliced, e.inPipe = false, 0
			l.f.pipes.Add(-1)
		}
	}
	l.n--
	l.f.active.Add(-1)
	l.f.srv.LeaveClient(c.slot)
	l.f.srv.Release()
	if l.stopped {
		l.checkDrained()
		return
	}
	l.resume()
}

func (l *loop) checkDrained() {
	if l.stopped && l.n == 0 && !l.isDrained {
		l.isDrained = true
		close(l.drained)
	}
}

// putPipe keeps an empty pipe for the next spliced direction; one with
// bytes in it is closed, or they would reach the next connection's peer.
func (l *loop) putPipe(p [2]int, empty bool) {
	if empty && len(l.pipes) < idlePipes && !l.closed {
		l.pipes = append(l.pipes, p)
		return
	}
	sysClose(p[0])
	sysClose(p[1])
}

// sweep enforces connect and idle timeouts, switches keepalive on late,
// and resumes accepting after a pause.
func (l *loop) sweep() {
	defer close(l.swept)
	t := time.NewTimer(l.every())
	defer t.Stop()
	var batch []*fconn
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return
		}
		l.now = l.f.opts.Now().UnixNano()
		batch = batch[:0]
		for _, e := range l.conns {
			if e == &e.c.cli || e.c.connecting {
				batch = append(batch, e.c) // each connection once: its client end, or its target while connecting
			}
		}
		for _, c := range batch {
			switch {
			case c.closed:
			case c.connecting && l.now >= c.deadline:
				l.dialFailed(c, os.NewSyscallError("connect", syscall.ETIMEDOUT))
			case !c.connecting && l.now-c.last >= int64(c.cfg.IdleTimeout):
				l.f.idleClosed.Add(1)
				l.f.opts.Logger.Debug("idle timeout; closing", "forward", c.cfg.Name, "client", c.client.String())
				l.closeConn(c, false)
			case !c.connecting && !c.kept && l.now-c.born >= int64(keepAliveAfter):
				c.kept = true
				conn.SetKeepAliveFD(c.tgt.fd, keepAlivePeriod)
			}
		}
		l.resume()
		l.mu.Unlock()
		t.Reset(l.every())
	}
}

// every is the sweep's period: an eighth of the shorter timeout, between
// 10 ms and 1 s.
func (l *loop) every() time.Duration {
	cfg := l.f.cur.Load()
	d := min(cfg.IdleTimeout, cfg.ConnectTimeout, keepAliveAfter) / 8
	return max(10*time.Millisecond, min(d, time.Second))
}

// stop ends accepting (Shutdown; the group closes the listener after) and
// drops connections still connecting, as the other path drops a connection whose
// dial ends after Shutdown started.
func (l *loop) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.pauseAccepting()
	l.stopped = true
	for _, e := range l.conns {
		if e.c.connecting {
			l.closeConn(e.c, false)
		}
	}
	l.checkDrained()
}

// close resets what is still open and ends the loop.
func (l *loop) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	if !l.stopped {
		l.pauseAccepting()
		l.stopped = true
	}
	for _, e := range l.conns {
		l.closeConn(e.c, true)
	}
	l.checkDrained()
	l.closed = true
	for _, p := range l.pipes {
		sysClose(p[0])
		sysClose(p[1])
	}
	l.pipes = nil
	close(l.done)
	l.mu.Unlock()
	// Not under mu: Close waits for the loop's Read to return, and the
	// loop takes mu before it looks at l.closed; so does the sweep, which
	// is gone when close returns.
	l.file.Close()
	<-l.swept
}

// sameHost reports whether a path to peer from local stays on this host.
func sameHost(peer, local netip.Addr) bool {
	peer = peer.Unmap()
	return peer.IsLoopback() || local.IsValid() && peer == local.Unmap()
}
