package conn

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// scriptedListener returns the scripted errors from Accept, then real
// connections from inner.
type scriptedListener struct {
	net.Listener
	errs  []error
	calls atomic.Int32
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	i := int(l.calls.Add(1)) - 1
	if i < len(l.errs) {
		return nil, l.errs[i]
	}
	return l.Listener.Accept()
}

func TestServeBacksOffOnTemporaryErrors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	ln := &scriptedListener{Listener: inner, errs: []error{emfile, emfile}}
	s := New(Options{Kind: "forward", Name: "t", MaxConns: 4})
	handled := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln, func(net.Conn) { handled <- struct{}{} }) }()
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection handled after temporary errors")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if err := s.Serve(ln, nil); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestServeReturnsPermanentError(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	ln := &scriptedListener{Listener: inner, errs: []error{errors.New("boom")}}
	s := New(Options{Kind: "forward", Name: "smtp", MaxConns: 1})
	err = s.Serve(ln, nil)
	if err == nil || !strings.Contains(err.Error(), `forward "smtp": accept on 127.0.0.1:`) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Serve: %v", err)
	}
}

func TestLogLimiter(t *testing.T) {
	var l LogLimiter
	t0 := time.Unix(100, 0)
	steps := []struct {
		at   time.Duration
		ok   bool
		supp int
	}{
		{0, true, 0},
		{100 * time.Millisecond, false, 0},
		{900 * time.Millisecond, false, 0},
		{1100 * time.Millisecond, true, 2},
		{2200 * time.Millisecond, true, 0},
	}
	for _, s := range steps {
		ok, n := l.Allow(t0.Add(s.at))
		if ok != s.ok || n != s.supp {
			t.Fatalf("at %v: Allow = %v, %d; want %v, %d", s.at, ok, n, s.ok, s.supp)
		}
	}
}
