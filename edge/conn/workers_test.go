package conn

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// goid is the current goroutine's id, from its stack header.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Connections one after the other are handled on goroutines that
// already exist: a handler's grown stack is reused instead of grown
// again. (On the old code every connection had a new goroutine.)
func TestServerReusesHandlerGoroutines(t *testing.T) {
	ln := listen(t)
	s := New(Options{Kind: "test", Name: "reuse", MaxConns: 4})
	ids := make(chan uint64, 1)
	go s.Serve(ln, func(c net.Conn) {
		ids <- goid()
		c.Write([]byte("x"))
	})
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	// Goroutine ids only grow: any goroutine started after this one has
	// a larger id.
	mark := make(chan uint64)
	go func() { mark <- goid() }()
	g0 := <-mark
	const n = 20
	fresh := map[uint64]bool{}
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		// The server closes the connection once the handler returned;
		// the worker parks right after.
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read after the handler: %v; want EOF", err)
		}
		c.Close()
		if id := <-ids; id > g0 {
			fresh[id] = true
		}
		waitFor(t, "an idle worker", func() bool { return workers.idle.Load() > 0 })
	}
	if len(fresh) > n/2 {
		t.Fatalf("%d connections handled on %d new goroutines; want workers reused", n, len(fresh))
	}
}

// A burst leaves at most maxIdleWorkers goroutines parked.
func TestIdleWorkersBounded(t *testing.T) {
	base := runtime.NumGoroutine()
	n := maxIdleWorkers + 64
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(n)
	finished.Add(n)
	for range n {
		Go(func() {
			started.Done()
			<-release
			finished.Done()
		})
	}
	started.Wait()
	close(release)
	finished.Wait()
	waitFor(t, "surplus workers to exit", func() bool { return runtime.NumGoroutine() <= base+maxIdleWorkers })
	if idle := workers.idle.Load(); idle > maxIdleWorkers {
		t.Fatalf("%d idle workers; want at most %d", idle, maxIdleWorkers)
	}
}

// Idle workers end: a burst's workers are gone within a few periods.
func TestIdleWorkersExit(t *testing.T) {
	old := time.Duration(workerIdle.Load())
	setWorkerIdle(20 * time.Millisecond)
	defer setWorkerIdle(old)
	base := runtime.NumGoroutine()
	const n = 32
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		Go(func() {
			started.Done()
			<-release
		})
	}
	started.Wait()
	close(release)
	// A second round within the period reuses them.
	for range n {
		Go(func() {})
	}
	waitFor(t, "the burst's workers to exit", func() bool { return runtime.NumGoroutine() <= base })
}

// A worker that gets a function within every period is not ended: the
// reaper ends only as many workers as stayed idle through a whole period
// (a reaper that ended idle workers regardless would start a new
// goroutine for every period of this loop).
func TestBusyWorkersStay(t *testing.T) {
	old := time.Duration(workerIdle.Load())
	setWorkerIdle(20 * time.Millisecond)
	defer setWorkerIdle(old)
	// The earlier tests' idle workers end first: with none left, a
	// function given while no worker waits starts one.
	waitFor(t, "the idle workers to end", func() bool { return workers.idle.Load() == 0 })
	started := func() int {
		workers.mu.Lock()
		defer workers.mu.Unlock()
		return workers.started
	}
	before := started()
	done := make(chan struct{})
	for range 60 { // 300 ms: 15 periods
		Go(func() { done <- struct{}{} })
		<-done
		time.Sleep(5 * time.Millisecond)
	}
	if n := started() - before; n > 3 {
		t.Fatalf("%d workers started for 60 functions one at a time; want the workers kept", n)
	}
}
