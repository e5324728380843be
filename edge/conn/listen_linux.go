package conn

import (
	"os"
	"syscall"
	"time"
)

// acceptInherits: Linux copies a listening socket's keepalive settings to
// the connections it accepts.
const acceptInherits = true

// SetKeepAliveFD enables keepalive on a socket (idle and interval period,
// 3 probes): what net.KeepAliveConfig sets, for a socket Go has not
// wrapped (a listening socket here, the forward's event loop's sockets).
func SetKeepAliveFD(fd int, period time.Duration) error {
	secs := max(int(period/time.Second), 1)
	for _, o := range []struct{ level, opt, v int }{
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, secs},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, secs},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 3},
	} {
		if err := syscall.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}
