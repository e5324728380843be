package conn

import (
	"context"
	"net"
	"syscall"
	"time"
)

// Listen opens a TCP listener for tunnels and forwards whose accepted
// connections carry TCP keepalive (idle and interval keepAlive, 3 probes;
// none when keepAlive is not positive). The options are set once, on the
// listening socket, and the kernel copies them to every connection it
// accepts; Go's own per-connection keepalive (15 s, four setsockopt calls
// on every accept) is off. A forwarded connection made 34 syscalls, 4 of
// them these.
func Listen(ctx context.Context, addr string, keepAlive time.Duration) (net.Listener, error) {
	if !acceptInherits {
		lc := net.ListenConfig{KeepAliveConfig: keepAliveConfig(keepAlive), KeepAlive: -1}
		return lc.Listen(ctx, "tcp", addr)
	}
	lc := net.ListenConfig{KeepAlive: -1, Control: func(_, _ string, rc syscall.RawConn) error {
		if keepAlive <= 0 {
			return nil
		}
		var serr error
		err := rc.Control(func(fd uintptr) { serr = SetKeepAliveFD(int(fd), keepAlive) })
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(ctx, "tcp", addr)
}
