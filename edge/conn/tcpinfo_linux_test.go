package conn

import (
	"net"
	"syscall"
	"testing"
)

func sockBuf(t *testing.T, c *net.TCPConn, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// A loopback connection gets capped buffers (the kernel reports twice the
// value set); autotuning would let them grow to several MiB.
func TestCapLocalBuffersLoopback(t *testing.T) {
	ln := listen(t)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	capLocalBuffers(tc)
	for _, opt := range []int{syscall.SO_RCVBUF, syscall.SO_SNDBUF} {
		if got := sockBuf(t, tc, opt); got != 2*localBuffer {
			t.Errorf("socket option %d = %d after capLocalBuffers; want %d", opt, got, 2*localBuffer)
		}
	}
}
