package conn

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket is the data path of one TCP socket, for whatever moves bytes
// through it: the relays (the socket under a tunnel's TLS, [BatchConn],
// and the plain sockets of a copied relay) and the HTTP edge (its client
// connections and its upstream connections). Reads are recvfrom, writes
// sendto (with MSG_MORE on request) and writev, made with RawSyscall, not
// Syscall: the socket is non-blocking, so a call never waits in the
// kernel, and the Go scheduler need not be told one is under way. Waiting
// for data or room (EAGAIN) goes through the poller under the connection's
// deadlines, as net.Conn's Read and Write do, and errors are the
// *net.OpError net.Conn returns, of the same errno or deadline. SendFile
// is the exception: a page-cache miss reads the disk inside sendfile, so
// it is an ordinary Syscall and the scheduler may run others meanwhile.
//
// Why raw: a node idles between bursts, and with every P idle the
// scheduler's monitor (sysmon) sleeps; the next Syscall (entersyscall)
// wakes it, and it then polls every 20 µs for a millisecond or more. On a
// node pinned to one CPU each poll is a thread switch away from the
// relay and back: half of a tunnel bulk transfer's 22,000 context switches
// per 2 GiB (perf record -e cs: runtime.sysmon's usleep, notetsleep and
// osyield), and the entersyscall/exitsyscall pair on every call of an
// HTTP request's five. recvfrom and sendto, not read and write: the socket
// calls skip the file layer's bookkeeping (fdget_pos, vfs_read,
// sock_read_iter), as nginx's do.
//
// One goroutine may read while another writes; a Socket holds the state
// of one read and one write, and the method value each passes to the
// raw connection is bound once, so that a call allocates nothing.
type Socket struct {
	c  *net.TCPConn
	rc syscall.RawConn
	rd sockOp
	wr sockOp
}

// NewSocket returns the data path of c, nil when c is not a
// *net.TCPConn (a TLS connection, a wrapper, a test's pipe).
func NewSocket(c net.Conn) *Socket {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &Socket{c: tc, rc: rc}
	s.rd.fn, s.wr.fn = s.rd.do, s.wr.do
	return s
}

const (
	opRecv = iota
	opSend
	opWritev
	opSendfile
)

// sockOp is one call's arguments and results; do runs it on the
// descriptor until it is done (true) or the socket would block (false:
// the raw connection waits in the poller and calls again).
type sockOp struct {
	kind  int
	bufs  [2][]byte
	iov   [2]unix.Iovec
	flags uintptr
	file  int // opSendfile: the file, sent from off, want bytes
	off   int64
	want  int64
	n     int64 // bytes done
	errno syscall.Errno
	err   error // not an errno: the file shrank under sendfile
	fn    func(uintptr) bool
}

func (op *sockOp) do(fd uintptr) bool {
	for {
		var m uintptr
		var e syscall.Errno
		switch op.kind {
		case opRecv:
			var k int
			if k, e = Recv(fd, op.bufs[0]); e == 0 {
				op.n = int64(k)
				return true
			}
		case opSend:
			p := op.bufs[0][op.n:]
			if len(p) == 0 {
				return true
			}
			m, _, e = unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), op.flags, 0, 0)
			if e == 0 {
				op.n += int64(m)
				continue
			}
		case opWritev:
			cnt := 0
			for _, b := range op.bufs {
				if len(b) > 0 {
					op.iov[cnt].Base = &b[0]
					op.iov[cnt].SetLen(len(b))
					cnt++
				}
			}
			if cnt == 0 {
				return true
			}
			m, _, e = unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&op.iov[0])), uintptr(cnt))
			op.iov = [2]unix.Iovec{} // no pointer kept past the call
			if e == 0 {
				op.n += int64(m)
				k := int(m)
				for i := range op.bufs {
					d := min(k, len(op.bufs[i]))
					op.bufs[i], k = op.bufs[i][d:], k-d
				}
				continue
			}
		case opSendfile:
			if op.n >= op.want {
				return true
			}
			o := op.off + op.n
			k, err := syscall.Sendfile(int(fd), op.file, &o, int(min(op.want-op.n, 1<<30)))
			if err == nil {
				if k == 0 {
					op.err = io.ErrUnexpectedEOF // the file shrank
					return true
				}
				op.n += int64(k)
				continue
			}
			e = err.(syscall.Errno)
		}
		switch e {
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			op.errno = e
			return true
		}
	}
}

// start readies op for a call.
func (op *sockOp) start(kind int, a, b []byte, flags uintptr) {
	op.kind, op.bufs, op.flags, op.n, op.errno, op.err = kind, [2][]byte{a, b}, flags, 0, 0, nil
}

// finish returns op's count and error (a *net.OpError, as net.Conn's) and
// lets go of the buffers.
func (s *Socket) finish(op *sockOp, name string, err error) (int64, error) {
	n := op.n
	switch {
	case op.errno != 0:
		err = os.NewSyscallError(name, op.errno)
	case op.err != nil:
		err = op.err
	}
	op.bufs = [2][]byte{}
	if err != nil {
		opName := "write"
		if op.kind == opRecv {
			opName = "read"
		}
		err = &net.OpError{Op: opName, Net: "tcp", Source: s.c.LocalAddr(), Addr: s.c.RemoteAddr(), Err: err}
	}
	return n, err
}

// Read reads into p what the socket holds, waiting for something when it
// holds nothing; io.EOF after the peer's half-close.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rd.start(opRecv, p, nil, 0)
	n, err := s.finish(&s.rd, "recvfrom", s.rc.Read(s.rd.fn))
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return int(n), err
}

// Write writes all of p.
func (s *Socket) Write(p []byte) (int, error) { return s.send(p, 0) }

// WriteMore writes all of p with MSG_MORE: the kernel holds the last
// partial segment back for the next write (a response head ahead of the
// file that sendfile sends: one segment, not two).
func (s *Socket) WriteMore(p []byte) (int, error) { return s.send(p, unix.MSG_MORE) }

func (s *Socket) send(p []byte, flags uintptr) (int, error) {
	s.wr.start(opSend, p, nil, flags)
	n, err := s.finish(&s.wr, "sendto", s.rc.Write(s.wr.fn))
	return int(n), err
}

// WriteV writes all of a then all of b with writev: one call, and one
// segment when they fit.
func (s *Socket) WriteV(a, b []byte) (int, error) {
	s.wr.start(opWritev, a, b, 0)
	n, err := s.finish(&s.wr, "writev", s.rc.Write(s.wr.fn))
	return int(n), err
}

// SendFile sends n bytes of the file fd from offset off (an explicit
// offset: the file's own is neither read nor moved, so an open file may
// be shared between connections); io.ErrUnexpectedEOF (inside the
// *net.OpError) when the file ends first.
func (s *Socket) SendFile(fd int, off, n int64) (int64, error) {
	s.wr.start(opSendfile, nil, nil, 0)
	s.wr.file, s.wr.off, s.wr.want = fd, off, n
	return s.finish(&s.wr, "sendfile", s.rc.Write(s.wr.fn))
}

// Recv is one non-blocking recvfrom on the socket fd, for a caller that
// handles EAGAIN itself (the HTTP/1 server, which parks a connection on
// its own poller instead of waiting).
func Recv(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	m, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(m), 0
}

// EpollPoll collects the ready events of an epoll set without waiting (a
// zero timeout), as a RawSyscall: a call that cannot block need not tell
// the scheduler, and an ordinary Syscall wakes its monitor (sysmon) when
// it sleeps, which then preempted the node's one busy thread some 1,500
// times a second under load (perf sched: sysmon's runs on the node's CPU,
// one per poller round). The callers (the HTTP/1 server's idle poller, the
// forward's event loop) wait for the set itself through the runtime's
// network poller.
func EpollPoll(epfd uintptr, events []syscall.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, epfd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
