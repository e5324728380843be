package h1

import (
	"os"
	"sync"
	"syscall"
	"time"

	edgeconn "github.com/offedge/offedge/edge/conn"
)

// poller parks idle connections: their sockets sit in an epoll set,
// edge-triggered, and a readable (or hung-up) one gets a goroutine again.
// The epoll descriptor itself is waited on through the runtime's network
// poller, so parking costs no thread.
type poller struct {
	srv   *Server
	epfd  int
	file  *os.File
	raw   syscall.RawConn
	mu    sync.Mutex
	conns map[int]*conn // by socket descriptor
	once  sync.Once
}

const (
	epollIn    = syscall.EPOLLIN
	epollRDHup = syscall.EPOLLRDHUP
	epollHup   = syscall.EPOLLHUP | syscall.EPOLLERR
	epollET    = 1 << 31
)

func newPoller(s *Server) (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	f := os.NewFile(uintptr(fd), "h1-epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &poller{srv: s, epfd: fd, file: f, raw: raw, conns: make(map[int]*conn)}
	go p.wait()
	go p.sweep()
	return p, nil
}

// add registers c (active: its goroutine looks for a request first).
func (p *poller) add(c *conn) error {
	return p.register(c, c.raw, epollIn|epollRDHup|epollET)
}

// watchHangUp registers the socket under TLS connection c for its hang-up
// alone (EPOLLRDHUP, and the hang-ups and errors epoll always reports):
// the records are read by c's goroutine, and arrivals wake nothing.
func (p *poller) watchHangUp(c *conn) error {
	return p.register(c, c.watch, epollRDHup|epollET)
}

func (p *poller) register(c *conn, raw syscall.RawConn, events uint32) error {
	var err error
	cerr := raw.Control(func(fd uintptr) {
		c.fd = int(fd)
		p.mu.Lock()
		p.conns[c.fd] = c
		p.mu.Unlock()
		ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		if err != nil {
			p.mu.Lock()
			delete(p.conns, c.fd)
			p.mu.Unlock()
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// remove forgets c; a hijacked connection stays open, so its socket also
// leaves the epoll set (a closed one leaves it by itself).
func (p *poller) remove(c *conn, stillOpen bool) {
	p.mu.Lock()
	if p.conns[c.fd] == c {
		delete(p.conns, c.fd)
	}
	p.mu.Unlock()
	raw := c.raw
	if raw == nil {
		raw = c.watch
	}
	if stillOpen && raw != nil {
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
}

func (p *poller) close() {
	p.once.Do(func() { p.file.Close() })
}

func (p *poller) wait() {
	events := make([]syscall.EpollEvent, 128)
	var werr error
	for {
		err := p.raw.Read(func(fd uintptr) bool {
			for {
				n, err := edgeconn.EpollPoll(fd, events)
				if err == syscall.EINTR {
					continue
				}
				if err != nil {
					werr = err
					return true
				}
				for _, ev := range events[:n] {
					p.mu.Lock()
					c := p.conns[int(ev.Fd)]
					p.mu.Unlock()
					if c != nil {
						c.wake(ev.Events&(epollRDHup|epollHup) != 0)
					}
				}
				if n < len(events) {
					return false
				}
			}
		})
		if err != nil || werr != nil {
			return // closed
		}
	}
}

// sweep closes parked connections whose idle (or header) timeout passed.
func (p *poller) sweep() {
	every := min(p.srv.idle(), p.srv.rht()) / 8
	every = max(10*time.Millisecond, min(every, time.Second))
	t := time.NewTicker(every)
	defer t.Stop()
	var batch []*conn
	for {
		select {
		case <-p.srv.done:
			return
		case now := <-t.C:
			ns := now.UnixNano()
			batch = batch[:0]
			p.mu.Lock()
			for _, c := range p.conns {
				// Only parked plain connections: a TLS one waits for
				// its next request with a read deadline of its own.
				if c.raw != nil && c.state.Load() == stateParked && c.deadline.Load() < ns {
					batch = append(batch, c)
				}
			}
			p.mu.Unlock()
			for _, c := range batch {
				c.expire(ns)
			}
		}
	}
}
