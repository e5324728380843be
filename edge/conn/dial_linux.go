package conn

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort runs before a dial binds its source address. Bound to an
// address with port 0, a socket takes an ephemeral port at bind time, one
// no other socket on that address holds, whatever its destination, and
// TIME_WAIT keeps each port for 60 s: a source address then carries at most
// the ephemeral range (28,232 ports by default) of connections per minute
// to all destinations together, about 470 a second, and dials beyond fail
// with EADDRINUSE. IP_BIND_ADDRESS_NO_PORT (Linux 4.2, nginx's proxy_bind
// sets it too) leaves the port to connect, which picks one free for that
// destination and may reuse a TIME_WAIT one, as a dial without a source
// does. It applies to IPv6 sockets as well.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
