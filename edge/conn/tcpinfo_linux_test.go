package conn

import (
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
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

// Connections accepted on a Listen listener carry its keepalive settings
// without a setsockopt of their own.
func TestListenKeepAliveInherited(t *testing.T) {
	ln, err := Listen(context.Background(), "127.0.0.1:0", 42*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			io.ReadAll(c)
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	rc.Control(func(fd uintptr) {
		for name, o := range map[string][2]int{
			"SO_KEEPALIVE":  {syscall.SOL_SOCKET, syscall.SO_KEEPALIVE},
			"TCP_KEEPIDLE":  {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE},
			"TCP_KEEPINTVL": {syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL},
			"TCP_KEEPCNT":   {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT},
		} {
			v, err := syscall.GetsockoptInt(int(fd), o[0], o[1])
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			got[name] = v
		}
	})
	want := map[string]int{"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 42, "TCP_KEEPINTVL": 42, "TCP_KEEPCNT": 3}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("accepted connection %s = %d; want %d (from the listener)", k, got[k], v)
		}
	}
}
