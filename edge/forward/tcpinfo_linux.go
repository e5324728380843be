package forward

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// sinceLastRecv returns how long ago the kernel last received data on c
// (tcpi_last_data_recv), without touching the data path.
func sinceLastRecv(c *net.TCPConn) (time.Duration, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info syscall.TCPInfo
	var errno syscall.Errno
	cerr := rc.Control(func(fd uintptr) {
		l := uint32(syscall.SizeofTCPInfo)
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&l)), 0)
	})
	if cerr != nil || errno != 0 {
		return 0, false
	}
	return time.Duration(info.Last_data_recv) * time.Millisecond, true
}
