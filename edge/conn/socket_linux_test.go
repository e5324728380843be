package conn

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln := listen(t)
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, ok := <-acc
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// A raw socket reads and writes as net.Conn does: every byte in order
// through a send buffer far smaller than the data (the EAGAIN wait), EOF
// at the peer's half-close, the read deadline, a zero-length read.
func TestRawSocketReadWrite(t *testing.T) {
	a, b := tcpPair(t)
	a.SetWriteBuffer(64 << 10)
	b.SetReadBuffer(64 << 10)
	ra, rb := newRawSocket(a), newRawSocket(b)
	if ra == nil || rb == nil {
		t.Fatal("newRawSocket: nil for a TCP connection")
	}
	if newRawSocket(struct{ net.Conn }{a}) != nil {
		t.Fatal("newRawSocket wraps what is not a *net.TCPConn")
	}
	data := make([]byte, 2<<20)
	rand.Read(data)
	werr := make(chan error, 1)
	go func() {
		n, err := ra.Write(data)
		if err == nil && n != len(data) {
			err = errors.New("short write")
		}
		if err == nil {
			err = a.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(readerFunc(rb.Read))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(data))
	}
	if n, err := rb.Read(nil); n != 0 || err != nil {
		t.Fatalf("zero-length read: %d, %v", n, err)
	}
	if n, err := rb.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer's half-close: %d, %v; want EOF", n, err)
	}
}

// The read deadline of the connection bounds a raw read, with the error
// net.Conn gives.
func TestRawSocketDeadline(t *testing.T) {
	a, _ := tcpPair(t)
	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	_, err := newRawSocket(a).Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() || ReasonOf(err) != ReasonTimeout {
		t.Fatalf("read past the deadline: %v (reason %v); want a timeout", err, ReasonOf(err))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("read returned after %v", d)
	}
	a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	a.SetWriteBuffer(4096)
	_, err = newRawSocket(a).Write(make([]byte, 64<<20)) // the peer reads nothing
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past the deadline: %v; want a timeout", err)
	}
}

// A write to a peer that reset the connection fails with the reset, as
// net.Conn's does, and says which connection.
func TestRawSocketWriteAfterReset(t *testing.T) {
	a, b := tcpPair(t)
	b.SetLinger(0)
	b.Close()
	ra := newRawSocket(a)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = ra.Write([]byte("x"))
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write after the peer's reset: %v; want ECONNRESET or EPIPE", err)
	}
	if ReasonOf(err) != ReasonReset {
		t.Fatalf("reason %v, want reset", ReasonOf(err))
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" || oe.Addr == nil {
		t.Fatalf("error %#v: want a *net.OpError for write with the peer's address", err)
	}
	a.Close()
	if _, err := ra.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v; want net.ErrClosed", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
