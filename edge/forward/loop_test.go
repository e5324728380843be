package forward

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// TestGoroutinePath runs the forward's tests on the goroutine-per-connection
// path, which serves listeners the event loop cannot (other systems, other
// listener types); the same tests run on the event loop on Linux.
func TestGoroutinePath(t *testing.T) {
	was := useLoop
	useLoop = false
	t.Cleanup(func() { useLoop = was })
	for name, fn := range map[string]func(*testing.T){
		"EchoHalfClose":        TestForwardEchoHalfClose,
		"ProxyProtocol":        TestForwardProxyProtocol,
		"ACL":                  TestForwardACL,
		"IdleTimeout":          TestForwardIdleTimeoutSpliced,
		"TargetDown":           TestForwardTargetDown,
		"PerClientCap":         TestForwardPerClientCap,
		"ShutdownClosesBoth":   TestForwardShutdownClosesBothSides,
		"TargetSpeaksFirst":    TestForwardTargetSpeaksFirst,
		"ShortMessageThenFIN":  TestForwardShortMessageThenFIN,
		"BulkBothWaysSlowPeer": TestForwardBulkBothWaysSlowReader,
		"MaxConnsBacklog":      TestForwardMaxConnsWaitInBacklog,
		"ConnectTimeout":       TestForwardConnectTimeout,
		"ResetPassedOn":        TestForwardResetPassedOn,
		"RouteSource":          TestForwardRouteSource,
	} {
		t.Run(name, fn)
	}
}

// TestForwardTargetSpeaksFirst: a target that greets before the client
// says anything (SMTP's banner). On the event loop the banner's EPOLLIN
// can come in the same edge-triggered event as the connect's EPOLLOUT,
// and is never repeated.
func TestForwardTargetSpeaksFirst(t *testing.T) {
	tln := listen(t)
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "220 mx ready\r\n")
				io.Copy(c, c)
			}()
		}
	}()
	ln := listen(t)
	start(t, Config{Name: "smtp", Target: tln.Addr().String()}, ln)
	for i := range 50 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, len("220 mx ready\r\n"))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "220 mx ready\r\n" {
			t.Fatalf("connection %d: banner %q, %v", i, buf, err)
		}
		c.Close()
	}
}

// TestForwardShortMessageThenFIN: a message and the client's FIN arrive
// together; the event loop's short read must not be taken for the end of
// what the socket will ever report (the FIN came with the same edge).
// Failed on the first event loop: the echo came back, the EOF never did.
func TestForwardShortMessageThenFIN(t *testing.T) {
	target := startEcho(t, nil)
	ln := listen(t)
	start(t, Config{Name: "fin", Target: target}, ln)
	for i := range 200 {
		msg := strings.Repeat("m", 1+i%40)
		got, err := roundTrip(t, &net.Dialer{}, ln.Addr().String(), msg)
		if err != nil || got != msg {
			t.Fatalf("round %d: got %q, %v; want %q", i, got, err, msg)
		}
	}
}

// TestForwardBulkBothWaysSlowReader: 8 MiB each way at once, the client
// reading in small pieces with pauses, so that the forward meets full
// socket buffers (partial writes, a pipe holding bytes, EPOLLOUT resumes)
// and switches to splice. Every byte arrives, in order.
func TestForwardBulkBothWaysSlowReader(t *testing.T) {
	const size = 8 << 20
	down := make([]byte, size)
	up := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range down {
		down[i], up[i] = byte(rng.Uint32()), byte(rng.Uint32())
	}
	wantUp := sha256.Sum256(up)
	tln := listen(t)
	gotUp := make(chan [32]byte, 1)
	go func() {
		c, err := tln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			c.Write(down)
			c.(*net.TCPConn).CloseWrite()
		}()
		h := sha256.New()
		io.Copy(h, c)
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		gotUp <- sum
		<-wrote
	}()
	ln := listen(t)
	f := start(t, Config{Name: "bulk", Target: tln.Addr().String()}, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() {
		c.Write(up)
		c.(*net.TCPConn).CloseWrite()
	}()
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for i := 0; ; i++ {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got.Len(), err)
		}
		if i%256 == 0 {
			time.Sleep(2 * time.Millisecond) // a slow reader: the forward's writes meet a full buffer
		}
	}
	if !bytes.Equal(got.Bytes(), down) {
		t.Fatalf("target → client: %d bytes, equal %v; want %d", got.Len(), bytes.Equal(got.Bytes(), down), size)
	}
	select {
	case sum := <-gotUp:
		if sum != wantUp {
			t.Fatal("client → target: the bytes differ")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("client → target did not end")
	}
	testutil.Eventually(t, 5*time.Second, "byte counters", func() bool {
		s := f.Stats()
		return s.BytesUp == size && s.BytesDown == size && s.Active == 0
	})
}

// TestForwardMaxConnsWaitInBacklog: at max_conns a new connection waits in
// the kernel's backlog (not refused), and is served once a slot is free.
func TestForwardMaxConnsWaitInBacklog(t *testing.T) {
	target := startEcho(t, nil)
	ln := listen(t)
	f := start(t, Config{Name: "max", Target: target, MaxConns: 2, MaxConnsPerClient: 2}, ln)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	third, err := net.Dial("tcp", ln.Addr().String()) // completes in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	third.Write([]byte("y"))
	third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := third.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third connection at max_conns 2: %v; want it waiting", err)
	}
	if s := f.Stats(); s.Accepted != 2 || s.Active != 2 {
		t.Fatalf("accepted %d, active %d; want 2, 2", s.Accepted, s.Active)
	}
	held[0].Close()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(third, make([]byte, 1)); err != nil {
		t.Fatalf("third connection after a slot was freed: %v", err)
	}
	// A raised max_conns admits from the backlog without waiting for a
	// connection to end.
	fourth, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer fourth.Close()
	fourth.Write([]byte("z"))
	if err := f.Update(full(Config{Name: "max", Target: target, MaxConns: 3, MaxConnsPerClient: 3})); err != nil {
		t.Fatal(err)
	}
	fourth.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(fourth, make([]byte, 1)); err != nil {
		t.Fatalf("fourth connection after max_conns was raised: %v", err)
	}
}

// TestForwardConnectTimeout: a target whose accept queue is full drops
// SYNs; the dial fails at connect_timeout (reason timeout) and the client
// is closed.
func TestForwardConnectTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	full := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}
	// Fill the queue (never accepted): further SYNs are dropped.
	for range 2 {
		c, err := net.DialTimeout("tcp", full.String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		defer c.Close()
	}
	if c, err := net.DialTimeout("tcp", full.String(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Skip("this kernel completes connections beyond a full accept queue")
	}
	ln := listen(t)
	f := start(t, Config{Name: "slow", Target: full.String(), ConnectTimeout: 300 * time.Millisecond}, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	begin := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client: %v; want it closed at the connect timeout", err)
	}
	if el := time.Since(begin); el < 250*time.Millisecond || el > 3*time.Second {
		t.Fatalf("closed after %v; want about the 300ms connect timeout", el)
	}
	testutil.Eventually(t, 5*time.Second, "timeout counted", func() bool {
		s := f.Stats()
		return s.DialFailuresBy["timeout"] == 1 && s.Active == 0
	})
}

// TestForwardResetPassedOn: a target that resets its connection makes the
// forward reset the client's (a truncated stream must not look complete).
func TestForwardResetPassedOn(t *testing.T) {
	tln := listen(t)
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			io.ReadFull(c, make([]byte, 1))
			c.Write([]byte("partial"))
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	ln := listen(t)
	start(t, Config{Name: "rst", Target: tln.Addr().String()}, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("x"))
	_, err = io.ReadAll(c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read: %v; want a reset", err)
	}
}

// TestLoopNoDescriptorLeak: connections that end every way (echoed,
// denied by the per-client cap, target down, reset, bulk through a pipe)
// leave no descriptor open once the forward has shut down.
func TestLoopNoDescriptorLeak(t *testing.T) {
	if !useLoop {
		t.Skip("the event loop is off")
	}
	openFDs := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	// An echo of its own that copies through a buffer: io.Copy between
	// two TCPConns splices through pipes that Go's runtime caches, which
	// would count here.
	tln := listen(t)
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	target := tln.Addr().String()
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

// TestLoopStaleEventAfterReuse: a descriptor closed and reused within one
// batch of events must not take the old connection's events (the loop tags
// each registration with its connection's id). Half the connections are
// reset by the target as soon as they arrive, the others echo, all through
// one forward at once.
func TestLoopStaleEventAfterReuse(t *testing.T) {
	tln := listen(t)
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				b := make([]byte, 1)
				if _, err := io.ReadFull(c, b); err != nil || b[0] == 'r' {
					c.(*net.TCPConn).SetLinger(0)
					c.Close()
					return
				}
				c.Write(b)
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				c.Close()
			}()
		}
	}()
	ln := listen(t)
	start(t, Config{Name: "mixed", Target: tln.Addr().String()}, ln)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 300 {
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				c.Write([]byte("r"))
				c.Close()
			}
		}
	}()
	for i := range 300 {
		if got, err := roundTrip(t, &net.Dialer{}, ln.Addr().String(), "ok"); err != nil || got != "ok" {
			t.Fatalf("round %d: %q, %v", i, got, err)
		}
	}
	<-done
}

// TestLoopSpliceBoundResumes: a spliced direction that reaches its bound
// of rounds per turn resumes from the loop's again list. The target sends
// 4 MiB and its FIN while the client reads nothing, so when the client
// starts reading, every byte already waits in the forward's sockets and no
// new edge would come for it.
func TestLoopSpliceBoundResumes(t *testing.T) {
	if !useLoop {
		t.Skip("the event loop is off")
	}
	was := spliceRounds
	spliceRounds = 1
	t.Cleanup(func() { spliceRounds = was })
	const size = 4 << 20
	tln := listen(t)
	go func() {
		c, err := tln.Accept()
		if err != nil {
			return
		}
		c.Write(bytes.Repeat([]byte("s"), size))
		c.Close()
	}()
	ln := listen(t)
	start(t, Config{Name: "bound", Target: tln.Addr().String()}, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(200 * time.Millisecond) // everything sent and waiting
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v; want %d and EOF", n, err, size)
	}
}

// TestForwardRouteSource: the connection to the target leaves from the
// source address Options.Route gives (the runtime's: the plan's source),
// and a source this host does not have fails the dial with reason
// "source" (192.0.2.1, a documentation address, is on no interface here).
func TestForwardRouteSource(t *testing.T) {
	tln := listen(t)
	from := make(chan string, 1)
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			from <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	target := netip.MustParseAddrPort(tln.Addr().String())
	for _, tc := range []struct {
		source, want string
	}{{"127.0.0.9", "127.0.0.9"}, {"192.0.2.1", ""}} {
		src := netip.MustParseAddr(tc.source)
		f, err := New(full(Config{Name: "src", Target: "198.51.100.7:25"}), Options{
			Route: func(string) (netip.AddrPort, netip.Addr, error) { return target, src, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		ln := listen(t)
		served := make(chan error, 1)
		go func() { served <- f.Serve(ln) }()
		roundTrip(t, &net.Dialer{}, ln.Addr().String(), "x")
		if tc.want != "" {
			select {
			case got := <-from:
				if got != tc.want {
					t.Fatalf("target saw %s; want %s", got, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the target saw no connection")
			}
		} else {
			testutil.Eventually(t, 5*time.Second, "source failure counted", func() bool { return f.Stats().DialFailuresBy["source"] == 1 })
		}
		f.Shutdown(context.Background())
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	}
}

// TestLoopPipeBound: past maxPipes a bulk direction copies through the
// loop's buffer instead of splicing; every byte still arrives, and every
// pipe is given back when the connections end.
func TestLoopPipeBound(t *testing.T) {
	if !useLoop {
		t.Skip("the event loop is off")
	}
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
	if !useLoop {
		t.Skip("the event loop is off")
	}
	was := keepAliveAfter
	keepAliveAfter = 300 * time.Millisecond
	t.Cleanup(func() { keepAliveAfter = was })
	target := startEcho(t, nil)
	ln := listen(t)
	f := start(t, Config{Name: "ka", Target: target}, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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
