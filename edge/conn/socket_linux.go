package conn

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSocket reads and writes a TCP socket without telling the Go
// scheduler that a system call is under way (RawSyscall, not Syscall), for
// the relays' data path: the socket under a tunnel's TLS ([BatchConn]) and
// the plain sockets of a copied relay. The socket is non-blocking, so a
// call never waits in the kernel; waiting for data or room (EAGAIN) goes
// through the poller and the connection's deadlines, as net.Conn's Read
// and Write do.
//
// Why: a tunnel's two ends pass every byte back and forth, so each process
// idles between bursts, and with every P idle the scheduler's monitor
// (sysmon) sleeps. The next Syscall wakes it (entersyscall), and it then
// polls every 20 µs for a millisecond or more: on a node pinned to one
// CPU, each poll is a thread switch away from the relay and back. That
// was half of a tunnel bulk transfer's 22,000 context switches per 2 GiB
// (perf record -e cs: runtime.sysmon's usleep, notetsleep and osyield).
// With the data path raw, sysmon stays asleep: 11,000 to 19,000 switches,
// multiplexed bulk 1.08× the old code's, CPU per GiB 0.94×
// (docs/benchmarks.md, sixth session).
type rawSocket struct {
	c  *net.TCPConn
	rc syscall.RawConn
}

func newRawSocket(c net.Conn) *rawSocket {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawSocket{c: tc, rc: rc}
}

func (w *rawSocket) Write(p []byte) (int, error) {
	var n int
	var werr syscall.Errno
	err := w.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch e {
			case 0:
				n += int(m)
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				werr = e
				return true
			}
		}
		return true
	})
	if werr != 0 {
		err = &net.OpError{Op: "write", Net: "tcp", Source: w.c.LocalAddr(), Addr: w.c.RemoteAddr(), Err: os.NewSyscallError("write", werr)}
	}
	return n, err
}

func (w *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr syscall.Errno
	err := w.rc.Read(func(fd uintptr) bool {
		for {
			m, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case 0:
				n = int(m)
				return true
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				rerr = e
				return true
			}
		}
	})
	if rerr != 0 {
		err = &net.OpError{Op: "read", Net: "tcp", Source: w.c.LocalAddr(), Addr: w.c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	}
	if err == nil && n == 0 {
		err = io.EOF
	}
	return n, err
}
