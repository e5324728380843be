package forward

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop's system calls. Every one of them is made on a
// non-blocking descriptor and returns at once, so they go through
// RawSyscall: an ordinary Syscall tells the scheduler that the thread may
// block, and the runtime's monitor (sysmon), seeing the loop's one P "in
// a system call" on two of its ticks, hands the P to another thread. With
// GOMAXPROCS=1 that cost the prototype 2.1 context switches per forwarded
// connection (0.8 with RawSyscall; HAProxy 0.5).

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func sysWrite(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func sysSplice(in, out, n int) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func sysClose(fd int) { syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0) }

func sysShutdownWrite(fd int) error {
	_, _, e := syscall.RawSyscall(syscall.SYS_SHUTDOWN, uintptr(fd), syscall.SHUT_WR, 0)
	return errnoErr(e)
}

func sysSetsockopt(fd, level, opt int, v unsafe.Pointer, size uintptr) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(v), size, 0)
	return errnoErr(e)
}

func sysSetInt(fd, level, opt, v int) error {
	x := int32(v)
	return sysSetsockopt(fd, level, opt, unsafe.Pointer(&x), 4)
}

// sysAbort closes fd with a reset (SO_LINGER 0) rather than a FIN.
func sysAbort(fd int) {
	l := syscall.Linger{Onoff: 1, Linger: 0}
	sysSetsockopt(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, unsafe.Pointer(&l), unsafe.Sizeof(l))
	sysClose(fd)
}

// soError is the pending error of a socket (a failed connect's).
func soError(fd int) error {
	var v int32
	l := uint32(4)
	_, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, syscall.SO_ERROR, uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	if v == 0 {
		return syscall.ECONNREFUSED // an error event with no error recorded: treat as refused
	}
	return syscall.Errno(v)
}

func sysEpollCtl(epfd, op, fd int, ev *syscall.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(e)
}

func sysAccept(lfd int) (int, netip.AddrPort, error) {
	var rsa syscall.RawSockaddrAny
	l := uint32(unsafe.Sizeof(rsa))
	fd, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(fd), fromSockaddr(&rsa), nil
}

func sysSockname(fd int) netip.AddrPort {
	var rsa syscall.RawSockaddrAny
	l := uint32(unsafe.Sizeof(rsa))
	_, _, e := syscall.RawSyscall(syscall.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		return netip.AddrPort{}
	}
	return fromSockaddr(&rsa)
}

func sysSocket(family int) (int, error) {
	fd, _, e := syscall.RawSyscall(syscall.SYS_SOCKET, uintptr(family), syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

func sysBind(fd int, ap netip.AddrPort) error {
	sa, n, err := toSockaddr(ap)
	if err != nil {
		return err
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&sa)), n)
	return errnoErr(e)
}

func sysConnect(fd int, ap netip.AddrPort) error {
	sa, n, err := toSockaddr(ap)
	if err != nil {
		return err
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), n)
	return errnoErr(e)
}

func sysPipe() (r, w int, err error) {
	var p [2]int32
	_, _, e := syscall.RawSyscall(syscall.SYS_PIPE2, uintptr(unsafe.Pointer(&p)), syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if e != 0 {
		return -1, -1, e
	}
	// As Go's own splice does: a 1 MiB pipe where the system allows it
	// (pipe-max-size), else the default 64 KiB.
	syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(p[0]), unix.F_SETPIPE_SZ, spliceMax)
	return int(p[0]), int(p[1]), nil
}

func fromSockaddr(rsa *syscall.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		a := netip.AddrFrom16(sa.Addr)
		if a.Is4In6() {
			a = a.Unmap()
		} else if sa.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				a = a.WithZone(ifi.Name)
			}
		}
		return netip.AddrPortFrom(a, uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// toSockaddr is ap as a sockaddr of its own family (an IPv4-mapped IPv6
// address as IPv4).
func toSockaddr(ap netip.AddrPort) (syscall.RawSockaddrAny, uintptr, error) {
	var rsa syscall.RawSockaddrAny
	a := ap.Addr().Unmap()
	if a.Is4() {
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		sa.Family = syscall.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
		sa.Addr = a.As4()
		return rsa, syscall.SizeofSockaddrInet4, nil
	}
	sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&rsa))
	sa.Family = syscall.AF_INET6
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
	sa.Addr = a.As16()
	if z := a.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			return rsa, 0, err
		}
		sa.Scope_id = uint32(ifi.Index)
	}
	return rsa, syscall.SizeofSockaddrInet6, nil
}

func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return syscall.AF_INET
	}
	return syscall.AF_INET6
}
