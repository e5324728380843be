package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// The event loop's own tests (the loop is Linux-only); loop_test.go has
// those that hold on both paths.

// TestLoopNoDescriptorLeak: connections that end every way (echoed,
// denied by the per-client cap, target down, reset, bulk through a pipe)
// leave no descriptor open once the forward has shut down.
func TestLoopNoDescriptorLeak(t *testing.T) {
	openFDs := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	// An echo of its own that copies through a buffer: io.Copy between
	// two TCPConns splices through pipes that Go's runtime caches, which
	// would count here.
	target := serveTarget(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
		c.(*net.TCPConn).CloseWrite()
	})
	deadAddr := testutil.RefusedAddr(t)
	before := openFDs()
	for _, tgt := range []string{target, deadAddr} {
		ln := listen(t)
		f, err := New(full(Config{Name: "leak", Target: tgt, MaxConns: 8, MaxConnsPerClient: 4}), Options{})
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- f.Serve(ln) }()
		big := strings.Repeat("b", 256<<10)
		for i := range 40 {
			msg := "x"
			if i%10 == 0 {
				msg = big
			}
			roundTrip(t, &net.Dialer{}, ln.Addr().String(), msg)
		}
		var held []net.Conn
		for range 6 { // two over the per-client cap of 4
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				held = append(held, c)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		f.Shutdown(ctx)
		cancel()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
		for _, c := range held {
			c.Close()
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for openFDs() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := openFDs(); n > before {
		ents, _ := os.ReadDir("/proc/self/fd")
		var names []string
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			names = append(names, e.Name()+"→"+l)
		}
		t.Fatalf("%d descriptors open, %d before: %v", n, before, names)
	}
}

// TestLoopSpliceBoundResumes: a spliced direction that reaches its bound
// of rounds per turn resumes from the loop's again list. The target sends
// 4 MiB and its FIN while the client reads nothing, so when the client
// starts reading, every byte already waits in the forward's sockets and no
// new edge would come for it.
func TestLoopSpliceBoundResumes(t *testing.T) {
	was := spliceRounds
	spliceRounds = 1
	t.Cleanup(func() { spliceRounds = was })
	const size = 4 << 20
	target := serveTarget(t, func(c net.Conn) {
		c.Write(bytes.Repeat([]byte("s"), size))
		c.Close()
	})
	ln := listen(t)
	start(t, Config{Name: "bound", Target: target}, ln)
	c := dialT(t, ln.Addr().String())
	time.Sleep(200 * time.Millisecond) // everything sent and waiting
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v; want %d and EOF", n, err, size)
	}
}

// TestLoopPipeBound: past maxPipes a bulk direction copies through the
// loop's buffer instead of splicing; every byte still arrives, and every
// pipe is given back when the connections end.
func TestLoopPipeBound(t *testing.T) {
	was := maxPipes
	maxPipes = 1
	t.Cleanup(func() { maxPipes = was })
	target := startEcho(t, nil)
	ln := listen(t)
	f := start(t, Config{Name: "pipes", Target: target}, ln)
	msg := strings.Repeat("p", 4<<20)
	var peak atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := f.pipes.Load(); n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			got, err := roundTrip(t, &net.Dialer{}, ln.Addr().String(), msg)
			if err == nil && got != msg {
				err = fmt.Errorf("got %d bytes back; want %d", len(got), len(msg))
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if p := peak.Load(); p != 1 {
		t.Fatalf("at most %d pipes held at once; want 1 (maxPipes), and the transfers to splice", p)
	}
	testutil.Eventually(t, 5*time.Second, "pipes given back", func() bool { return f.pipes.Load() == 0 && f.Stats().Active == 0 })
}

// TestLoopLateKeepAlive: the target's socket gets TCP keepalive once the
// connection is keepAliveAfter old (the loop's sweep), not at connect.
func TestLoopLateKeepAlive(t *testing.T) {
	was := keepAliveAfter
	keepAliveAfter = 300 * time.Millisecond
	t.Cleanup(func() { keepAliveAfter = was })
	target := startEcho(t, nil)
	ln := listen(t)
	f := start(t, Config{Name: "ka", Target: target}, ln)
	c := dialT(t, ln.Addr().String())
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("k"))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	// keepAlive reports the target socket's SO_KEEPALIVE and TCP_KEEPIDLE.
	keepAlive := func() (on, idle int) {
		for _, l := range f.servingLoops() {
			l.mu.Lock()
			for _, e := range l.conns {
				if e == &e.c.tgt {
					on, _ = syscall.GetsockoptInt(e.fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
					idle, _ = syscall.GetsockoptInt(e.fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
				}
			}
			l.mu.Unlock()
		}
		return on, idle
	}
	if on, _ := keepAlive(); on != 0 {
		t.Fatal("keepalive on at connect; want it switched on late")
	}
	testutil.Eventually(t, 5*time.Second, "keepalive switched on", func() bool {
		on, idle := keepAlive()
		return on == 1 && idle == int(keepAlivePeriod/time.Second)
	})
}
