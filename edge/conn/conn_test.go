package conn

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

func listen(t testing.TB) net.Listener { return testutil.Listen(t) }

// echo answers each connection with what it reads and half-closes at EOF.
func echo(t testing.TB) string {
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

// wrapped hides the *net.TCPConn type, forcing the copy path.
type wrapped struct{ *net.TCPConn }

// relayServer relays every connection on a new listener to target, with
// wrap applied to both legs.
func relayServer(t *testing.T, target string, wrap func(net.Conn) net.Conn, o RelayOptions, results chan<- Result) string {
	ln := listen(t)
	s := New(Options{Kind: "test", Name: "relay", MaxConns: 16})
	go s.Serve(ln, func(c net.Conn) {
		up, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer up.Close()
		res, _ := Relay(wrap(c), wrap(up), o)
		results <- res
	})
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return ln.Addr().String()
}

func TestRelayHalfClose(t *testing.T) {
	target := echo(t)
	for _, tc := range []struct {
		name    string
		wrap    func(net.Conn) net.Conn
		spliced bool
	}{
		{"tcp", func(c net.Conn) net.Conn { return c }, haveTCPInfo},
		{"copy", func(c net.Conn) net.Conn { return wrapped{c.(*net.TCPConn)} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := make(chan Result, 1)
			var up, down atomic.Uint64
			addr := relayServer(t, target, tc.wrap, RelayOptions{Up: &up, Down: &down}, results)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			msg := strings.Repeat("half-close ", 10000)
			go func() {
				io.WriteString(c, msg)
				c.(*net.TCPConn).CloseWrite()
			}()
			b, err := io.ReadAll(c)
			if err != nil || string(b) != msg {
				t.Fatalf("read %d bytes, %v; want the %d bytes sent back", len(b), err, len(msg))
			}
			res := <-results
			if res.Spliced != tc.spliced || res.Up != uint64(len(msg)) || res.Down != uint64(len(msg)) {
				t.Fatalf("result %+v; want spliced %v and %d bytes each way", res, tc.spliced, len(msg))
			}
			if up.Load() != res.Up || down.Load() != res.Down {
				t.Fatalf("totals %d/%d; want %d/%d", up.Load(), down.Load(), res.Up, res.Down)
			}
		})
	}
}

func TestRelayIdle(t *testing.T) {
	target := echo(t)
	for _, wrap := range []func(net.Conn) net.Conn{
		func(c net.Conn) net.Conn { return c },
		func(c net.Conn) net.Conn { return wrapped{c.(*net.TCPConn)} },
	} {
		results := make(chan Result, 1)
		var idled atomic.Int32
		addr := relayServer(t, target, wrap, RelayOptions{Idle: 200 * time.Millisecond, OnIdle: func() { idled.Add(1) }}, results)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("idle connection got data")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("idle connection not closed")
		}
		c.Close()
		if res := <-results; !res.Idle || idled.Load() != 1 {
			t.Fatalf("result %+v, OnIdle called %d times; want one idle close", res, idled.Load())
		}
	}
}

// A client at its cap is reset at once, and another client is still served.
func TestServerPerClientCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Kind: "test", Name: "cap", MaxConns: 4, MaxConnsPerClient: 2})
	hold := make(chan struct{})
	go s.Serve(ln, func(c net.Conn) {
		c.Write([]byte("hi"))
		<-hold
	})
	defer func() {
		close(hold)
		s.Shutdown(context.Background())
	}()
	dial := func(src string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadFull(c, make([]byte, 2))
		return c, err
	}
	for i := range 2 {
		c, err := dial("127.0.0.1")
		if err != nil {
			t.Fatalf("connection %d of the first client: %v", i, err)
		}
		defer c.Close()
	}
	if c, err := dial("127.0.0.1"); err == nil {
		c.Close()
		t.Fatal("third connection of the first client served; want it reset")
	}
	if s.RefusedPerClient() != 1 {
		t.Fatalf("RefusedPerClient = %d; want 1", s.RefusedPerClient())
	}
	c, err := dial("127.0.0.2")
	if err != nil {
		t.Fatalf("second client: %v", err)
	}
	c.Close()
}

func TestDialerSourceAndReasons(t *testing.T) {
	ln := listen(t)
	got := make(chan netip.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			got <- ClientAddr(c)
			c.Close()
		}
	}()
	src := netip.MustParseAddr("127.0.0.2")
	c, err := Dialer{Source: src}.DialContext(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if a := <-got; a != src {
		t.Fatalf("connection came from %s; want %s", a, src)
	}

	dead := testutil.FreeAddr(t)
	_, err = Dialer{}.DialContext(context.Background(), dead)
	var de *DialError
	if !errors.As(err, &de) || de.Reason != ReasonRefused || ReasonOf(err) != ReasonRefused {
		t.Fatalf("dial to a closed port: %v; want a DialError with reason refused", err)
	}
	// An address this host does not have (documentation range) as source.
	_, err = Dialer{Source: netip.MustParseAddr("192.0.2.77")}.DialContext(context.Background(), ln.Addr().String())
	if ReasonOf(err) != ReasonSource || !strings.Contains(err.Error(), "not assigned to this host") {
		t.Fatalf("dial from a foreign source: %v (reason %v); want reason source with the fix", err, ReasonOf(err))
	}
	custom := Dialer{Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, context.DeadlineExceeded
	}}
	if _, err := custom.DialContext(context.Background(), dead); ReasonOf(err) != ReasonTimeout {
		t.Fatalf("custom dial timing out: reason %v; want timeout", ReasonOf(err))
	}
}

func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		n := r.String()
		if n == "" || seen[n] || strings.HasPrefix(n, "reason(") {
			t.Fatalf("reason %d has name %q (duplicate or missing)", r, n)
		}
		seen[n] = true
	}
	var c ReasonCounter
	c.Add(ReasonTimeout)
	c.Add(ReasonTimeout)
	c.Add(Reason(200))
	if c.Total() != 3 || c.Get(ReasonTimeout) != 2 || c.Snapshot()["other"] != 1 {
		t.Fatalf("counter %v", c.Snapshot())
	}
}

// A TLS relay's records go out in one write per relay write, and the
// connection keeps no batch buffer between writes.
func TestBatchConnWritesOnceAndHoldsNothing(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var writes atomic.Int32
	bc := NewBatchConn(countWrites{a, &writes})
	got := make(chan []byte)
	go func() {
		buf, _ := io.ReadAll(b)
		got <- buf
	}()
	bc.begin(13)
	for _, rec := range []string{"one ", "two ", "three"} {
		bc.Write([]byte(rec))
	}
	if err := bc.flush(); err != nil {
		t.Fatal(err)
	}
	if bc.buf != nil {
		t.Fatal("the connection holds its batch buffer after the flush")
	}
	bc.Write([]byte(" four")) // outside a batch: through
	a.Close()
	if s := string(<-got); s != "one two three four" || writes.Load() != 2 {
		t.Fatalf("peer read %q in %d writes; want the batch in one write, then one", s, writes.Load())
	}
}

type countWrites struct {
	net.Conn
	n *atomic.Int32
}

func (c countWrites) Write(p []byte) (int, error) { c.n.Add(1); return c.Conn.Write(p) }

// blackhole is a listening socket whose accept queue is full and never
// drained: the kernel drops further SYNs, so a dial to it hangs until its
// deadline.
func blackhole(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port)).String()
	// Fill the accept queue (backlog 0 admits one); connections that
	// complete no longer mean a free slot.
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// WithDialTimeout has no timer of its own: the dial must still end at the
// deadline (with reason timeout) and at once when the parent is cancelled.
func TestWithDialTimeout(t *testing.T) {
	addr := blackhole(t)
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()

	ctx, cancel := WithDialTimeout(parent, addr, 300*time.Millisecond)
	defer cancel()
	if _, ok := ctx.(*dialCtx); !ok {
		t.Fatalf("WithDialTimeout(cancellable parent) = %T; want the timer-free context", ctx)
	}
	start := time.Now()
	c, err := Dialer{}.DialContext(ctx, addr)
	if err == nil {
		c.Close()
		t.Fatal("dial to a full accept queue succeeded; the test needs it to hang")
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > 5*time.Second || ReasonOf(err) != ReasonTimeout {
		t.Fatalf("dial ended after %v with %v (reason %v); want a timeout after ≈300ms", took, err, ReasonOf(err))
	}

	ctx, cancel = WithDialTimeout(parent, addr, time.Minute)
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancelParent)
	start = time.Now()
	if c, err := (Dialer{}).DialContext(ctx, addr); err == nil {
		c.Close()
		t.Fatal("dial succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("dial ended %v after its parent was cancelled at 100ms", took)
	}

	// Falls back to a real timeout context where it could not work.
	if ctx, cancel := WithDialTimeout(context.Background(), addr, time.Second); true {
		defer cancel()
		if _, ok := ctx.(*dialCtx); ok {
			t.Fatal("WithDialTimeout(Background) returned the timer-free context: nothing would watch its Done")
		}
	}
	if ctx, cancel := WithDialTimeout(parent, "localhost:25", time.Second); true {
		defer cancel()
		if _, ok := ctx.(*dialCtx); ok {
			t.Fatal("WithDialTimeout(a name) returned the timer-free context: the lookup would not stop at its deadline")
		}
	}
	early, cancelEarly := context.WithTimeout(parent, time.Millisecond)
	defer cancelEarly()
	if ctx, cancel := WithDialTimeout(early, addr, time.Hour); true {
		defer cancel()
		if d, _ := ctx.Deadline(); time.Until(d) > time.Second {
			t.Fatalf("deadline %v later than the parent's", d)
		}
	}
}

// idleCheck and onceCheck are watchers for the queue's own tests (a relay
// is its own watcher): idleCheck expires once idleFor reaches idle,
// onceCheck runs once.
type idleCheck struct {
	idle    time.Duration
	idleFor func() time.Duration
	expire  func()
}

func (c *idleCheck) due(*watch) bool {
	if c.idleFor() >= c.idle {
		c.expire()
		return false
	}
	return true
}

type onceCheck func()

func (f onceCheck) due(*watch) bool { f(); return false }

// watchIdle watches as a relay does: idle checks every idleStep(idle),
// and later once after the given time (when not nil), until stopped.
func watchIdle(idle time.Duration, idleFor func() time.Duration, expire func(), after time.Duration, later func()) (stop func()) {
	var iw, lw watch
	iw.start(idleStep(idle), &idleCheck{idle, idleFor, expire})
	if later != nil {
		lw.start(after, onceCheck(later))
	}
	return func() {
		iw.stop()
		if later != nil {
			lw.stop()
		}
	}
}

// The forward's target keepalive runs on the idle watch's timer: once,
// not before its time, only while the watch runs, and the idle checks
// keep their schedule.
func TestWatchIdleLater(t *testing.T) {
	never := func() time.Duration { return 0 }
	for _, tc := range []struct {
		name        string
		idle, after time.Duration
		min         time.Duration // earliest run
	}{
		{"before the first check", 2 * time.Second, 50 * time.Millisecond, 50 * time.Millisecond},
		{"between two checks", 400 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond},
	} {
		start := time.Now()
		ran := make(chan time.Duration, 2)
		stop := watchIdle(tc.idle, never, func() { t.Errorf("%s: expired", tc.name) }, tc.after, func() { ran <- time.Since(start) })
		select {
		case d := <-ran:
			if d < tc.min-5*time.Millisecond {
				t.Errorf("%s: later ran after %v; want at least %v", tc.name, d, tc.min)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: later never ran", tc.name)
		}
		time.Sleep(tc.idle / 2)
		stop()
		if len(ran) != 0 {
			t.Errorf("%s: later ran twice", tc.name)
		}
	}

	// Stopped before its time: never runs.
	ran := make(chan struct{}, 1)
	stop := watchIdle(time.Second, never, func() {}, 100*time.Millisecond, func() { ran <- struct{}{} })
	stop()
	time.Sleep(200 * time.Millisecond)
	if len(ran) != 0 {
		t.Error("later ran after the watch stopped")
	}

	// The idle timeout still fires on its schedule with a later pending.
	var quiet time.Time
	expired := make(chan time.Duration, 1)
	quiet = time.Now()
	stop = watchIdle(200*time.Millisecond, func() time.Duration { return time.Since(quiet) }, func() { expired <- time.Since(quiet) },
		time.Hour, func() { t.Error("later ran before its hour") })
	defer stop()
	select {
	case d := <-expired:
		if d < 200*time.Millisecond || d > 2*time.Second {
			t.Errorf("expired after %v; want 200-250ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("idle watch never expired")
	}
}

// Relay runs Later without an idle watch too, and not once it returned.
func TestRelayLaterWithoutIdle(t *testing.T) {
	target := echo(t)
	ran := make(chan struct{}, 1)
	results := make(chan Result, 1)
	addr := relayServer(t, target, func(c net.Conn) net.Conn { return c }, RelayOptions{
		Later: func(_, _ net.Conn) { ran <- struct{}{} }, LaterAfter: 50 * time.Millisecond}, results)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("Later never ran on an open relay without an idle timeout")
	}
	c.Close()
	<-results

	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-results
	time.Sleep(150 * time.Millisecond)
	if len(ran) != 0 {
		t.Fatal("Later ran for a relay that had ended before its time")
	}
}

// A relay direction whose reads fill its small buffer borrows a big one,
// and gives it back once the source stops, though the relay stays open:
// an idle relay holds only its small buffers. It also gives it back at
// once when a read does not fill it.
func TestRelayBigBufferOnlyWhileBusy(t *testing.T) {
	defer func(h time.Duration) { bigHold = h }(bigHold)
	bigHold = time.Second
	held0 := bigHeld.Load()
	held := func() int64 { return bigHeld.Load() - held0 }
	waitHeld := func(want int64, why string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); held() != want; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d big buffers held; want %d", why, held(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// net.Pipe hands a Read at most one Write's bytes: the test decides
	// which reads fill their buffer.
	client, a := net.Pipe()
	b, server := net.Pipe()
	done := make(chan error, 1)
	go func() { _, err := Relay(a, b, RelayOptions{}); done <- err }()
	send := func(n int) {
		t.Helper()
		p := bytes.Repeat([]byte{byte(n)}, n)
		go client.Write(p)
		got := make([]byte, n)
		if _, err := io.ReadFull(server, got); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("relayed %d bytes: %v", n, err)
		}
	}

	send(100) // a short read: no big buffer
	if held() != 0 {
		t.Fatalf("a 100-byte read took a big buffer")
	}
	send(BufferSize) // fills the small buffer
	waitHeld(1, "after a full small read")
	send(1000) // does not fill the big one: given back
	waitHeld(0, "after a short read into the big buffer")
	send(BufferSize)
	send(BigBufferSize) // fills the big buffer too: kept, then the source stops
	if held() != 1 {
		t.Fatalf("a full read into the big buffer gave it back at once")
	}
	waitHeld(0, "the source idle after filling the big buffer")
	send(5) // the relay still carries data after giving the buffer back
	if held() != 0 {
		t.Fatalf("a 5-byte read took a big buffer")
	}
	client.Close()
	server.Close()
	<-done
}

// A *tls.Conn source does not borrow a big buffer: a read returns at most
// what crypto/tls already decrypted, so the buffer would go back at once.
func TestRelayTLSSourceBorrowsNoBigBuffer(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	// Over TCP, crypto/tls reads several records at once, so reads fill
	// the small buffer.
	ln := listen(t)
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b, server := net.Pipe()
	tc := tls.Client(client, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	ts := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	held0 := bigHeld.Load()
	done := make(chan error, 1)
	go func() { _, err := Relay(ts, b, RelayOptions{}); done <- err }()
	p := bytes.Repeat([]byte("tls"), 1<<20)
	go tc.Write(p)
	got := make([]byte, len(p))
	var maxHeld, full int64
	for n := 0; n < len(got); {
		m, err := server.Read(got[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
		if m == BufferSize {
			full++
		}
		maxHeld = max(maxHeld, bigHeld.Load()-held0)
	}
	if !bytes.Equal(got, p) || maxHeld != 0 || full == 0 {
		t.Fatalf("relayed intact: %v; %d reads filled the small buffer (want some); big buffers held at most %d, want 0", bytes.Equal(got, p), full, maxHeld)
	}
	tc.Close()
	server.Close()
	<-done
}

// Busy relays borrow big buffers only up to the process-wide bound
// (clients decide how many relays are busy); past it a relay carries the
// same bytes through its small buffer.
func TestRelayBigBuffersBounded(t *testing.T) {
	defer func(h time.Duration, m int64) { bigHold, maxBigHeld = h, m }(bigHold, maxBigHeld)
	bigHold = 5 * time.Second
	held0 := bigHeld.Load()
	maxBigHeld = held0 + 1
	type relay struct{ client, server net.Conn }
	var relays []relay
	done := make(chan error, 3)
	for range 3 {
		client, a := net.Pipe()
		b, server := net.Pipe()
		go func() { _, err := Relay(a, b, RelayOptions{}); done <- err }()
		relays = append(relays, relay{client, server})
	}
	for i, r := range relays {
		p := bytes.Repeat([]byte{byte(i)}, BufferSize) // fills the small buffer: the relay asks for a big one
		go r.client.Write(p)
		got := make([]byte, len(p))
		if _, err := io.ReadFull(r.server, got); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("relay %d: %v", i, err)
		}
	}
	// Each relay asks right after writing what it read: watch a while.
	var most int64
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(time.Millisecond) {
		most = max(most, bigHeld.Load()-held0)
	}
	if h := bigHeld.Load() - held0; h != 1 || most != 1 {
		t.Errorf("3 busy relays with a bound of 1 hold %d big buffers (at most %d seen); want 1", h, most)
	}
	// The two without one still relay.
	for i, r := range relays {
		p := bytes.Repeat([]byte{byte(i + 10)}, 1000)
		go r.client.Write(p)
		got := make([]byte, len(p))
		if _, err := io.ReadFull(r.server, got); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("relay %d after the bound: %v", i, err)
		}
	}
	for _, r := range relays {
		r.client.Close()
		r.server.Close()
		<-done
	}
	if h := bigHeld.Load() - held0; h != 0 {
		t.Errorf("%d big buffers still held after the relays ended", h)
	}
}

// Watches of one duration share one queue and its timer: those stopped
// never expire and leave the queue at once (a stopped relay is not kept
// alive by it), the others expire on their schedule, whatever order they
// were stopped in.
func TestWatchQueueShared(t *testing.T) {
	const idle = 120 * time.Millisecond
	start := time.Now()
	var expired [8]atomic.Int64 // when, since start
	var stops [8]func()
	for i := range stops {
		stops[i] = watchIdle(idle, func() time.Duration { return time.Since(start) }, func() { expired[i].Store(int64(time.Since(start))) }, 0, nil)
	}
	for _, i := range []int{5, 0, 7, 2} {
		stops[i]()
	}
	time.Sleep(3 * idle)
	for i := range stops {
		got := time.Duration(expired[i].Load())
		switch stopped := i == 0 || i == 2 || i == 5 || i == 7; {
		case stopped && got != 0:
			t.Errorf("watch %d expired after it was stopped", i)
		case !stopped && (got < idle || got > 2*idle):
			t.Errorf("watch %d expired after %v; want %v-%v", i, got, idle, 2*idle)
		}
		stops[i]()
	}
	q := queueOf(idleStep(idle))
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head != nil || q.tail != nil {
		t.Error("stopped watches still queued")
	}
}

// The error of the direction that failed first is the relay's, not the
// other direction's (which fails because the first reset both).
func TestRelayFirstError(t *testing.T) {
	boom := errors.New("boom")
	a1, a2 := net.Pipe()
	b1, b2 := net.Pipe()
	defer a2.Close()
	defer b2.Close()
	_, err := Relay(failingRead{a1, boom}, b1, RelayOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("Relay: %v; want %v", err, boom)
	}
}

type failingRead struct {
	net.Conn
	err error
}

func (f failingRead) Read([]byte) (int, error) { return 0, f.err }
