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
func TestSocketReadWrite(t *testing.T) {
	a, b := tcpPair(t)
	a.SetWriteBuffer(64 << 10)
	b.SetReadBuffer(64 << 10)
	ra, rb := NewSocket(a), NewSocket(b)
	if ra == nil || rb == nil {
		t.Fatal("NewSocket: nil for a TCP connection")
	}
	if NewSocket(struct{ net.Conn }{a}) != nil {
		t.Fatal("NewSocket wraps what is not a *net.TCPConn")
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
func TestSocketDeadline(t *testing.T) {
	a, _ := tcpPair(t)
	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	_, err := NewSocket(a).Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() || ReasonOf(err) != ReasonTimeout {
		t.Fatalf("read past the deadline: %v (reason %v); want a timeout", err, ReasonOf(err))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("read returned after %v", d)
	}
	a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	a.SetWriteBuffer(4096)
	_, err = NewSocket(a).Write(make([]byte, 64<<20)) // the peer reads nothing
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past the deadline: %v; want a timeout", err)
	}
}

// A write to a peer that reset the connection fails with the reset, as
// net.Conn's does, and says which connection.
func TestSocketWriteAfterReset(t *testing.T) {
	a, b := tcpPair(t)
	b.SetLinger(0)
	b.Close()
	ra := NewSocket(a)
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

// WriteV and WriteMore deliver their bytes in order, whole, through a send
// buffer far smaller than them (a writev that writes part of its first
// buffer, or part of its second, goes on where it stopped); SendFile sends
// a section of a file at an explicit offset without moving the file's own,
// and says when the file ends first.
func TestSocketWriteVMoreSendFile(t *testing.T) {
	a, b := tcpPair(t)
	a.SetWriteBuffer(16 << 10)
	b.SetReadBuffer(16 << 10)
	sa := NewSocket(a)
	head, body, more := make([]byte, 300<<10), make([]byte, 700<<10), make([]byte, 100<<10)
	rand.Read(head)
	rand.Read(body)
	rand.Read(more)
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	file := make([]byte, 1<<20)
	rand.Read(file)
	f.Write(file)
	f.Seek(7, io.SeekStart)
	want := append(append(append(append([]byte(nil), head...), body...), more...), file[1000:1000+512<<10]...)
	werr := make(chan error, 1)
	go func() {
		n, err := sa.WriteV(head, body)
		if err == nil && n != len(head)+len(body) {
			err = errors.New("short writev")
		}
		if err == nil {
			n, err = sa.WriteMore(more)
			if err == nil && n != len(more) {
				err = errors.New("short write")
			}
		}
		if err == nil {
			var m int64
			m, err = sa.SendFile(int(f.Fd()), 1000, 512<<10)
			if err == nil && m != 512<<10 {
				err = errors.New("short sendfile")
			}
		}
		if err == nil {
			err = a.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written in order", len(got), len(want))
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != 7 {
		t.Fatalf("the file's offset moved to %d", off)
	}

	c, d := tcpPair(t)
	go io.Copy(io.Discard, d)
	n, err := NewSocket(c).SendFile(int(f.Fd()), int64(len(file))-10, 100)
	if n != 10 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("sendfile past the end: %d, %v; want 10 and io.ErrUnexpectedEOF", n, err)
	}
	if n, err := NewSocket(c).WriteV(nil, nil); n != 0 || err != nil {
		t.Fatalf("empty writev: %d, %v", n, err)
	}
}

// Recv is one non-blocking read: EAGAIN on an empty socket, the bytes
// there, 0 at the peer's half-close.
func TestRecv(t *testing.T) {
	a, b := tcpPair(t)
	rc, _ := b.SyscallConn()
	recv := func(p []byte) (n int, e syscall.Errno) {
		rc.Control(func(fd uintptr) { n, e = Recv(fd, p) })
		return
	}
	buf := make([]byte, 64)
	if _, e := recv(buf); e != syscall.EAGAIN {
		t.Fatalf("empty socket: %v; want EAGAIN", e)
	}
	a.Write([]byte("hello"))
	var n int
	var e syscall.Errno
	for i := 0; i < 1000; i++ {
		if n, e = recv(buf); e != syscall.EAGAIN {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if e != 0 || string(buf[:n]) != "hello" {
		t.Fatalf("recv: %q, %v", buf[:n], e)
	}
	a.CloseWrite()
	for i := 0; i < 1000; i++ {
		if n, e = recv(buf); e != syscall.EAGAIN {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if n != 0 || e != 0 {
		t.Fatalf("recv after the half-close: %d, %v; want 0", n, e)
	}
}

// A read and a write of data already there (no wait) allocate nothing:
// the socket is the data path of every proxied request.
func TestSocketAllocs(t *testing.T) {
	a, b := tcpPair(t)
	sa, sb := NewSocket(a), NewSocket(b)
	p, q := make([]byte, 512), make([]byte, 512)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := sa.Write(p); err != nil {
			t.Fatal(err)
		}
		if _, err := sa.WriteV(p[:100], p[100:]); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < 2*len(p); {
			n, err := sb.Read(q)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write, writev and reads; want 0", allocs)
	}
}
