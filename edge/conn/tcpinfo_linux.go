package conn

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// tcpInfo reads the kernel's TCP_INFO for c without touching the data path.
func tcpInfo(c *net.TCPConn) (syscall.TCPInfo, bool) {
	var info syscall.TCPInfo
	rc, err := c.SyscallConn()
	if err != nil {
		return info, false
	}
	var errno syscall.Errno
	cerr := rc.Control(func(fd uintptr) {
		l := uint32(syscall.SizeofTCPInfo)
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&l)), 0)
	})
	return info, cerr == nil && errno == 0
}

// sinceLastRecv returns how long ago the kernel last received data on c
// (tcpi_last_data_recv).
func sinceLastRecv(c *net.TCPConn) (time.Duration, bool) {
	info, ok := tcpInfo(c)
	return time.Duration(info.Last_data_recv) * time.Millisecond, ok
}

// Socket buffers of same-host paths. On loopback a window of 2×localBuffer
// (the kernel doubles SO_RCVBUF and SO_SNDBUF) still allows several GiB/s,
// but the kernel's autotuning grows the buffers to several MiB. With that
// much data in flight (likely: no longer in the CPU caches between the
// sender's write and the receiver's read) a spliced loopback stream ran at
// about 690 MiB/s; with the cap, about 1,000 MiB/s (bench/tunnel.sh), close
// to a direct loopback connection. The cap must be set before the stream
// starts: set after the first 32 or 256 KiB, the gain was mostly lost.
// Paths to other hosts keep autotuning, so a remote peer's window is never
// limited.
const localBuffer = 128 << 10

// haveTCPInfo: the idle timeout of a spliced connection can read
// tcpi_last_data_recv.
const haveTCPInfo = true

// capLocalBuffers caps c's socket buffers when both its ends are on this
// host (a loopback address, or the same address at both ends). It decides
// from the addresses the connection already knows, without a syscall.
func capLocalBuffers(c *net.TCPConn) {
	l, lok := c.LocalAddr().(*net.TCPAddr)
	r, rok := c.RemoteAddr().(*net.TCPAddr)
	if !lok || !rok || !(r.IP.IsLoopback() || r.IP.Equal(l.IP)) {
		return
	}
	c.SetReadBuffer(localBuffer)
	c.SetWriteBuffer(localBuffer)
}

// CapLocalBuffersFD is the same cap on a socket Go has not wrapped (the
// forward's event loop decides itself whether the path stays on this host).
func CapLocalBuffersFD(fd int) {
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, localBuffer)
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, localBuffer)
}
