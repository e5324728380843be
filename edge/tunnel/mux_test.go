package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xtaci/smux"

	"github.com/offedge/offedge/edge/conn"
	"github.com/offedge/offedge/internal/testutil"
)

// cutProxy relays TCP between the entrance and the exit, counts the
// connections (one per TLS connection: sessions, or legacy connections)
// and can cut them all, as a network failure would.
type cutProxy struct {
	ln       net.Listener
	target   atomic.Value // string
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
}

func startCutProxy(t *testing.T) *cutProxy {
	p := &cutProxy{ln: listen(t)}
	go func() {
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			up, err := net.Dial("tcp", p.target.Load().(string))
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close(); c.Close() }()
			go func() { io.Copy(c, up); up.Close(); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// cut resets every connection relayed so far.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	p.conns = nil
}

// startMuxPair is startPair with the entrance reaching the exit through a cutProxy.
func startMuxPair(t *testing.T, target string, tweak func(*EntranceConfig, *ExitConfig)) (*pair, *cutProxy) {
	px := startCutProxy(t)
	p := startPair(t, "redis", target, secretA, secretA, func(e *EntranceConfig, x *ExitConfig) {
		e.Exits = []string{px.addr()}
		if tweak != nil {
			tweak(e, x)
		}
	})
	px.target.Store(p.exitAddr)
	return p, px
}

// heldClient is a client connection kept open across a test step.
type heldClient struct {
	t *testing.T
	c net.Conn
}

func dialHeld(t *testing.T, addr string) *heldClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &heldClient{t: t, c: c}
}

// echo writes msg and reads it back.
func (h *heldClient) echo(msg string) error {
	h.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(h.c, msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(h.c, got); err != nil {
		return err
	}
	if string(got) != msg {
		return errors.New("echo mismatch: " + string(got))
	}
	return nil
}

func TestMuxCarriesClientsAsStreams(t *testing.T) {
	target := startEcho(t, "")
	p, px := startMuxPair(t, target, nil)
	for i := range 40 {
		msg := strings.Repeat("x", i*1000+1)
		if got, err := roundTrip(t, p.entranceAddr, msg); err != nil || got != msg {
			t.Fatalf("round trip %d: %d bytes, %v", i, len(got), err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if got, err := roundTrip(t, p.entranceAddr, "concurrent"); err != nil || got != "concurrent" {
				errs <- errors.Join(errors.New("concurrent round trip: "+got), err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := px.accepted.Load(); n < 1 || n > maxSessions {
		t.Fatalf("%d TLS connections carried 60 clients; want 1..%d sessions", n, maxSessions)
	}
	testutil.Eventually(t, 5*time.Second, "streams counted and closed", func() bool {
		xs, es := p.exit.Stats(), p.entrance.Stats()
		return xs.Streams == 60 && xs.Accepted == 60 && xs.Active == 0 && es.Streams == 60 && es.Active == 0 &&
			xs.Sessions == int64(px.accepted.Load()) && es.Sessions == xs.Sessions
	})
	if xs := p.exit.Stats(); xs.HandshakeFailures != 0 || xs.RefusedStreams != 0 {
		t.Fatalf("exit stats %+v", xs)
	}
}

// TestMuxStaysOffWhenDisabled: mux: false is today's one TLS connection per client.
func TestMuxStaysOffWhenDisabled(t *testing.T) {
	target := startEcho(t, "")
	p, px := startMuxPair(t, target, func(e *EntranceConfig, _ *ExitConfig) { e.Mux = false })
	for range 5 {
		if got, err := roundTrip(t, p.entranceAddr, "hi"); err != nil || got != "hi" {
			t.Fatalf("round trip: %q, %v", got, err)
		}
	}
	if n := px.accepted.Load(); n != 5 {
		t.Fatalf("%d TLS connections for 5 clients without mux; want 5", n)
	}
	if s := p.exit.Stats(); s.Sessions != 0 || s.Streams != 0 || s.Accepted != 5 {
		t.Fatalf("exit stats %+v", s)
	}
}

// TestMuxKilledSession: a session cut under an open client fails that
// client, and the next client is carried by a new session.
func TestMuxKilledSession(t *testing.T) {
	target := startEcho(t, "")
	p, px := startMuxPair(t, target, nil)
	h := dialHeld(t, p.entranceAddr)
	if err := h.echo("before"); err != nil {
		t.Fatal(err)
	}
	px.cut()
	h.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := h.c.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client read after its session was cut: %v; want the connection ended", err)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("client still open 5 s after its session was cut")
	}
	before := px.accepted.Load()
	// A session that dies within a second of its start makes the next
	// clients fail for a short backoff; then a new session carries them.
	testutil.Eventually(t, 10*time.Second, "a new session", func() bool {
		got, err := roundTrip(t, p.entranceAddr, "after")
		return err == nil && got == "after"
	})
	if px.accepted.Load() <= before {
		t.Fatal("no new TLS connection after the cut")
	}
	testutil.Eventually(t, 5*time.Second, "both ends counting no active stream", func() bool {
		return p.entrance.Stats().Active == 0 && p.exit.Stats().Active == 0
	})
}

// TestMuxReloadDrains: an entrance reload moves new clients to new
// sessions while open streams carry on; the old session closes with its
// last stream. Exit shutdown tells the entrance to stop opening streams
// and waits for the open ones.
func TestMuxReloadDrains(t *testing.T) {
	target := startEcho(t, "")
	var ecfg EntranceConfig
	p, px := startMuxPair(t, target, func(e *EntranceConfig, _ *ExitConfig) { ecfg = *e })
	old := dialHeld(t, p.entranceAddr)
	if err := old.echo("old"); err != nil {
		t.Fatal(err)
	}
	sessions := px.accepted.Load()
	ecfg.IdleTimeout = time.Hour
	if err := p.entrance.Update(fullEntrance(ecfg)); err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(t, p.entranceAddr, "new"); err != nil || got != "new" {
		t.Fatalf("client after reload: %q, %v", got, err)
	}
	if px.accepted.Load() <= sessions {
		t.Fatal("the reloaded entrance reused the old state's session")
	}
	if err := old.echo("old still works"); err != nil {
		t.Fatalf("stream opened before the reload: %v", err)
	}
	withOld := p.exit.Stats().Sessions
	old.c.Close()
	testutil.Eventually(t, 5*time.Second, "the old session closed with its last stream", func() bool {
		return p.exit.Stats().Sessions == withOld-1
	})

	// Exit shutdown: the open stream is served to its end.
	h := dialHeld(t, p.entranceAddr)
	if err := h.echo("held"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- p.exit.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	if err := h.echo("during shutdown"); err != nil {
		t.Fatalf("stream open during exit shutdown: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("exit shutdown returned %v with a stream open", err)
	default:
	}
	h.c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exit shutdown still waiting after its last stream closed")
	}
	if s := p.exit.Stats(); s.Sessions != 0 || s.Active != 0 {
		t.Fatalf("exit after shutdown %+v", s)
	}
}

// TestMuxExitReloadNewSecretClosesSessions: a session authenticated with
// a secret the exit no longer holds carries no new stream.
func TestMuxExitReloadNewSecretClosesSessions(t *testing.T) {
	target := startEcho(t, "")
	var xcfg ExitConfig
	p, _ := startMuxPair(t, target, func(_ *EntranceConfig, x *ExitConfig) { xcfg = *x })
	for range maxSessions { // one client per session slot
		if got, err := roundTrip(t, p.entranceAddr, "a"); err != nil || got != "a" {
			t.Fatalf("first: %q, %v", got, err)
		}
	}
	xcfg = fullExit(xcfg)
	xcfg.Tunnels[0].Auth = Auth{PSKFile: writeSecret(t, secretB)}
	if err := p.exit.Update(xcfg); err != nil {
		t.Fatal(err)
	}
	if got, _ := roundTrip(t, p.entranceAddr, "b"); got != "" {
		t.Fatalf("a session made with the old secret carried a stream after the reload: %q", got)
	}
	testutil.Eventually(t, 5*time.Second, "exit logs the refusal", func() bool {
		return strings.Contains(p.exitLog.String(), "no longer passes the tunnel's authentication")
	})
	if s := p.exit.Stats(); s.AuthFailures == 0 {
		t.Fatalf("exit stats %+v", s)
	}
}

// TestMuxStreamsCountAsConnections: the exit's max_conns_per_client holds
// for streams (the session counts as one of the entrance's connections).
func TestMuxStreamsCountAsConnections(t *testing.T) {
	target := startEcho(t, "")
	p, _ := startMuxPair(t, target, func(_ *EntranceConfig, x *ExitConfig) { x.MaxConnsPerClient = 6 })
	var ok int
	for range 10 {
		c, err := net.DialTimeout("tcp", p.entranceAddr, 5*time.Second)
		if err != nil {
			continue // reset before connect returned
		}
		t.Cleanup(func() { c.Close() })
		if (&heldClient{t: t, c: c}).echo("x") == nil {
			ok++
		}
	}
	s := p.exit.Stats()
	if ok+int(s.Sessions) != 6 || s.RefusedStreams == 0 || s.RefusedPerClient == 0 {
		t.Fatalf("%d clients served over %d sessions with max_conns_per_client 6; exit stats %+v", ok, s.Sessions, s)
	}
}

// hostileSession opens a session to the exit as a peer holding the
// secret may, and returns it with a channel of the resets it receives.
func hostileSession(t *testing.T, exitAddr string) (*smux.Session, <-chan uint32) {
	t.Helper()
	m, resets, err := hostileSessionErr(t, exitAddr)
	if err != nil {
		t.Fatal(err)
	}
	return m, resets
}

func hostileSessionErr(t *testing.T, exitAddr string) (*smux.Session, <-chan uint32, error) {
	k, err := DerivePSKKey("redis", []byte(secretA))
	if err != nil {
		return nil, nil, err
	}
	tc, err := tls.Dial("tcp", exitAddr, &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "redis",
		Certificates: []tls.Certificate{k.Certificate}, InsecureSkipVerify: true, NextProtos: []string{MuxALPN}})
	if err != nil {
		return nil, nil, err
	}
	if tc.ConnectionState().NegotiatedProtocol != MuxALPN {
		return nil, nil, errors.New("the exit did not take the mux protocol")
	}
	m, err := smux.Client(tc, muxConfig())
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { m.Close() })
	ctl, err := m.OpenStream()
	if err != nil {
		return nil, nil, err
	}
	resets := make(chan uint32, 4*MuxMaxStreams)
	go func() {
		var msg [ctlMsgSize]byte
		for {
			if _, err := io.ReadFull(ctl, msg[:]); err != nil {
				close(resets)
				return
			}
			if msg[0] == ctlReset {
				resets <- uint32(msg[1]) | uint32(msg[2])<<8 | uint32(msg[3])<<16 | uint32(msg[4])<<24
			}
		}
	}()
	return m, resets, nil
}

// TestMuxHostilePeer: a peer with the secret that opens streams beyond the
// session's limit gets them reset, and one that writes to a stream whose
// target does not read is held by the stream window, not buffered.
func TestMuxHostilePeer(t *testing.T) {
	silent := listen(t)
	var held sync.Mutex
	var svc []net.Conn
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held.Lock()
			svc = append(svc, c) // never read
			held.Unlock()
		}
	}()
	t.Cleanup(func() {
		held.Lock()
		defer held.Unlock()
		for _, c := range svc {
			c.Close()
		}
	})
	p, _ := startMuxPair(t, silent.Addr().String(), func(_ *EntranceConfig, x *ExitConfig) { x.MaxConnsPerClient = testMaxConns })
	m, resets := hostileSession(t, p.exitAddr)

	const extra = 50
	var streams []*smux.Stream
	for range MuxMaxStreams + extra {
		st, err := m.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	got := 0
	timeout := time.After(20 * time.Second)
	for got < extra {
		select {
		case _, ok := <-resets:
			if !ok {
				t.Fatalf("the exit closed the session after %d resets; want the extra streams reset and the session kept", got)
			}
			got++
		case <-timeout:
			t.Fatalf("%d of %d streams over the limit reset; exit stats %+v", got, extra, p.exit.Stats())
		}
	}
	testutil.Eventually(t, 10*time.Second, "the exit holding at most the limit", func() bool {
		s := p.exit.Stats()
		return s.Active == MuxMaxStreams && s.RefusedStreams >= extra
	})

	// Flow control: 64 MiB to a target that reads nothing.
	st := streams[0]
	st.SetWriteDeadline(time.Now().Add(3 * time.Second))
	n, err := st.Write(make([]byte, 64<<20))
	if err == nil {
		t.Fatal("64 MiB written to a stream whose target reads nothing")
	}
	if n > 32<<20 {
		t.Fatalf("%d bytes accepted by a stream whose target reads nothing; want the window (%d) plus socket buffers", n, MuxStreamWindow)
	}
}

// TestMuxSessionsPerPeerBounded: an entrance address gets at most
// MuxMaxSessionsPerPeer sessions of one tunnel.
func TestMuxSessionsPerPeerBounded(t *testing.T) {
	target := startEcho(t, "")
	p, _ := startMuxPair(t, target, nil)
	for range MuxMaxSessionsPerPeer {
		hostileSession(t, p.exitAddr)
	}
	testutil.Eventually(t, 5*time.Second, "sessions open", func() bool {
		return p.exit.Stats().Sessions == MuxMaxSessionsPerPeer
	})
	_, resets, err := hostileSessionErr(t, p.exitAddr)
	if err != nil {
		return // closed during the handshake's last flight: refused all the same
	}
	select {
	case _, ok := <-resets:
		if ok {
			t.Fatal("a control message on a session over the limit")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the session over the limit is still open")
	}
	if s := p.exit.Stats(); s.Sessions != MuxMaxSessionsPerPeer {
		t.Fatalf("exit stats %+v", s)
	}
}

// TestMuxFallsBackToAnExitWithoutIt: an exit that does not accept
// offedge-mux/1 (an older offedge; stunnel4 is tested in interop/stunnel)
// gets one TLS connection per client, and the entrance says so once.
func TestMuxFallsBackToAnExitWithoutIt(t *testing.T) {
	target := startEcho(t, "")
	var xcfg ExitConfig
	p, px := startMuxPair(t, target, func(_ *EntranceConfig, x *ExitConfig) { xcfg = *x })
	st, err := buildExit(fullExit(xcfg), p.exit.opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, et := range st.tunnels {
		et.tls.NextProtos = nil // as before multiplexing
	}
	p.exit.cur.Store(st)
	for range 4 {
		if got, err := roundTrip(t, p.entranceAddr, "old exit"); err != nil || got != "old exit" {
			t.Fatalf("round trip: %q, %v", got, err)
		}
	}
	if n := px.accepted.Load(); n != 4 {
		t.Fatalf("%d TLS connections for 4 clients to an exit without mux; want 4", n)
	}
	if s := p.entrance.Stats(); s.Sessions != 0 || s.Streams != 0 || s.Accepted != 4 {
		t.Fatalf("entrance stats %+v", s)
	}
	if n := strings.Count(p.entranceLog.String(), "exit does not multiplex"); n < 1 || n > maxSessions {
		t.Fatalf("fallback logged %d times; want once per session slot:\n%s", n, p.entranceLog)
	}
}

// TestMuxExitReloadKeepsOpenStreams: a reload that changes the secret
// refuses new streams on the old session but lets the open ones finish,
// as open connections keep the configuration they started with.
func TestMuxExitReloadKeepsOpenStreams(t *testing.T) {
	target := startEcho(t, "")
	var xcfg ExitConfig
	p, _ := startMuxPair(t, target, func(_ *EntranceConfig, x *ExitConfig) { xcfg = *x })
	var held []*heldClient
	for range maxSessions { // one client on each session
		h := dialHeld(t, p.entranceAddr)
		if err := h.echo("before"); err != nil {
			t.Fatal(err)
		}
		held = append(held, h)
	}
	xcfg = fullExit(xcfg)
	xcfg.Tunnels[0].Auth = Auth{PSKFile: writeSecret(t, secretB)}
	if err := p.exit.Update(xcfg); err != nil {
		t.Fatal(err)
	}
	if got, _ := roundTrip(t, p.entranceAddr, "new"); got != "" {
		t.Fatalf("a new client was carried by a session made with the old secret: %q", got)
	}
	if s := p.exit.Stats(); s.AuthFailures == 0 || s.Sessions == 0 {
		t.Fatalf("exit stats %+v; want the old sessions refused new streams, and still open for theirs", s)
	}
	for _, h := range held {
		if err := h.echo("after"); err != nil {
			t.Fatalf("a stream opened before the reload: %v", err)
		}
		h.c.Close()
	}
	testutil.Eventually(t, 5*time.Second, "the drained sessions closed", func() bool {
		return p.exit.Stats().Sessions == 0
	})
}

// TestMuxFailsBackToTheFirstExit: a session on a failover exit is
// replaced, after failbackAfter, by one to the first exit once it answers.
func TestMuxFailsBackToTheFirstExit(t *testing.T) {
	defer func(d time.Duration) { failbackAfter = d }(failbackAfter)
	failbackAfter = 200 * time.Millisecond
	target := startEcho(t, "")
	first := startCutProxy(t)
	first.target.Store(testutil.FreeAddr(t)) // nothing listens: the first exit is down
	var exit string
	p := startPair(t, "redis", target, secretA, secretA, func(e *EntranceConfig, _ *ExitConfig) {
		exit = e.Exits[0]
		e.Exits = []string{first.addr(), exit}
		e.ConnectTimeout = time.Second
		e.HandshakeTimeout = time.Second
	})
	if got, err := roundTrip(t, p.entranceAddr, "failover"); err != nil || got != "failover" {
		t.Fatalf("through the second exit: %q, %v", got, err)
	}
	first.target.Store(exit) // the first exit is back
	time.Sleep(2 * failbackAfter)
	tried := first.accepted.Load()
	testutil.Eventually(t, 10*time.Second, "a session through the first exit", func() bool {
		got, err := roundTrip(t, p.entranceAddr, "failback")
		return err == nil && got == "failback" && first.accepted.Load() > tried
	})
}

// A frame given to the session's connection as header and data (smux's
// send loop, WriteBuffers) is four TLS records in one write of one
// loopback segment: the header shares the first record. A relay's full
// big buffer is four such frames, and over TLS four segments.
func TestMuxFrameIsFourRecordsInOneWrite(t *testing.T) {
	if conn.BigBufferSize != 4*muxFrameSize {
		t.Fatalf("conn.BigBufferSize %d; want four frames, %d", conn.BigBufferSize, 4*muxFrameSize)
	}
	if muxFrameSize > conn.LoopbackMSS {
		t.Fatalf("a frame's data (%d bytes) is more than a loopback segment (%d)", muxFrameSize, conn.LoopbackMSS)
	}
	key, err := DerivePSKKey("frames", []byte("a secret of the test"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := &countingConn{Conn: a}
	// Without dynamic record sizing, which starts a connection's first
	// 128 KB with short records.
	client := tls.Client(conn.NewBatchConn(w), &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, DynamicRecordSizingDisabled: true})
	server := tls.Server(b, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{key.Certificate}})
	go server.Handshake()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	head := []byte{2, 2, 0, 0, 7, 0, 0, 0}
	data := make([]byte, muxFrameSize)
	for i := range data {
		data[i] = byte(i)
	}
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, len(head)+len(data))
		io.ReadFull(server, buf)
		got <- buf
	}()
	w.writes.Store(0)
	w.bytes.Store(0)
	rc := &recordConn{Conn: client}
	n, err := rc.WriteBuffers([][]byte{head, data})
	if err != nil || n != len(head)+len(data) {
		t.Fatalf("WriteBuffers: %d, %v", n, err)
	}
	if !bytes.Equal(<-got, append(head, data...)) {
		t.Fatal("the peer read another frame than was written")
	}
	// A TLS 1.3 AES-GCM record adds 5 bytes of header, 1 of content type
	// and 16 of tag: four records of header and data are one segment.
	if want := len(head) + len(data) + 4*22; w.writes.Load() != 1 || w.bytes.Load() != int64(want) || want != conn.LoopbackMSS {
		t.Fatalf("frame sent in %d writes, %d bytes; want 1 write of four records, %d bytes, a loopback segment (%d)",
			w.writes.Load(), w.bytes.Load(), want, conn.LoopbackMSS)
	}

	// A full big buffer written over TLS (a tunnel's entrance without
	// multiplexing) is sixteen records in one write of four segments.
	big := make([]byte, conn.BigBufferSize)
	go func() {
		buf := make([]byte, len(big))
		io.ReadFull(server, buf)
		got <- buf
	}()
	w.writes.Store(0)
	w.bytes.Store(0)
	if n, err := conn.WriteBatched(client, big); err != nil || n != len(big) {
		t.Fatalf("WriteBatched: %d, %v", n, err)
	}
	<-got
	if records := (len(big) + tlsRecord - 1) / tlsRecord; w.writes.Load() != 1 || w.bytes.Load() != int64(len(big)+records*22) || w.bytes.Load() > 4*conn.LoopbackMSS {
		t.Fatalf("big buffer sent in %d writes, %d bytes; want 1 write of %d records within four loopback segments (%d bytes)",
			w.writes.Load(), w.bytes.Load(), records, 4*conn.LoopbackMSS)
	}
}

// The stream window is updated once half of it was written out: half the
// window holds several full big buffers, so a busy stream's writer seldom
// waits for the update (and sends no short frame meanwhile), and a session
// still has room for other streams when four of its streams' targets read
// nothing.
func TestMuxWindowHoldsBigBuffers(t *testing.T) {
	if MuxStreamWindow/2 < 4*conn.BigBufferSize {
		t.Fatalf("half the stream window (%d) holds fewer than four big buffers (%d each)", MuxStreamWindow/2, conn.BigBufferSize)
	}
	if MuxSessionBuffer < 4*MuxStreamWindow {
		t.Fatalf("the session buffer (%d) holds fewer than four stream windows (%d)", MuxSessionBuffer, MuxStreamWindow)
	}
	if err := smux.VerifyConfig(muxConfig()); err != nil {
		t.Fatal(err)
	}
}

type countingConn struct {
	net.Conn
	writes, bytes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	c.bytes.Add(int64(len(p)))
	return c.Conn.Write(p)
}
