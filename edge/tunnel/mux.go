package tunnel

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xtaci/smux"

	"github.com/offedge/offedge/edge/conn"
)

// MuxALPN is the ALPN protocol by which two offedge ends agree to carry a
// tunnel's client connections as streams of one long-lived TLS connection
// (a session) instead of one TLS connection each. A peer that does not
// offer it (stunnel4, an older offedge) gets one TLS connection per client.
const MuxALPN = "offedge-mux/1"

// Session limits. Both ends bound what the other may make them hold: a
// session buffers at most MuxSessionBuffer received bytes in all (smux
// stops reading the TLS connection beyond it), a stream at most
// MuxStreamWindow (the peer's flow-control window, smux protocol v2), and
// at most MuxMaxStreams streams are open at once on one session (the exit
// resets the ones beyond, and they also count against max_conns and
// max_conns_per_client).
// An exit keeps at most MuxMaxSessionsPerPeer sessions of one tunnel from
// one entrance address (an entrance opens up to 4); beyond, a new session
// is closed at once. With MuxSessionBuffer, that bounds what one entrance
// node can make an exit buffer for a tunnel.
//
// The receiver of a stream sends a window update once it wrote out half
// the window, and a writer that runs out of window before it arrives sends
// a short frame and waits: at 1 MiB a busy stream did so about twice per
// MiB (a short frame, a parked writer, its wake-up). At 2 MiB it seldom
// does, and four streams whose targets read nothing still leave a session
// room for the others (the session stops reading only at MuxSessionBuffer).
const (
	MuxMaxSessionsPerPeer = 16
	MuxMaxStreams         = 1024
	MuxStreamWindow       = 2 << 20
	MuxSessionBuffer      = 8 << 20
	// A frame's 8-byte header and its data, in four TLS records, fill one
	// loopback TCP segment (smux allows up to 65,535 bytes); a relay's big
	// buffer holds four (conn.BigBufferSize).
	muxFrameSize = conn.FrameData
	tlsRecord    = 16 << 10 // the largest TLS plaintext record
	muxHeader    = 8        // smux's frame header
	// A session whose peer sends nothing for muxKeepAliveTimeout (smux
	// sends a no-op every muxKeepAlive) is closed, failing its streams.
	muxKeepAlive        = 10 * time.Second
	muxKeepAliveTimeout = 30 * time.Second
	// ctlWriteTimeout bounds a control message; a peer that does not read
	// its control stream loses the session.
	ctlWriteTimeout = 10 * time.Second
)

func muxConfig() *smux.Config {
	return &smux.Config{
		Version:           2,
		KeepAliveInterval: muxKeepAlive,
		KeepAliveTimeout:  muxKeepAliveTimeout,
		MaxFrameSize:      muxFrameSize,
		MaxReceiveBuffer:  MuxSessionBuffer,
		MaxStreamBuffer:   MuxStreamWindow,
	}
}

// Control messages travel on the first stream of a session, which the
// entrance opens: a type byte and a stream id (little-endian uint32).
const (
	ctlHello   = 'H' // exit → entrance once the session is accepted
	ctlReset   = 'R' // the sender reset stream id: the receiver resets its end
	ctlGoAway  = 'G' // the sender opens or accepts no new stream; the session closes once its streams end
	ctlMsgSize = 5
)

// errStreamReset is what a stream's reads and writes return once the peer
// reset it; it wraps ECONNRESET so that conn.ReasonOf says "reset".
var errStreamReset = fmt.Errorf("tunnel stream reset by peer: %w", syscall.ECONNRESET)

// errSessionGone is returned when a stream cannot be opened on a session
// that is closed or draining.
var errSessionGone = errors.New("tunnel session closed")

// recordConn is the TLS connection under a session; it keeps the first
// read error, which smux does not report, so that a refusal of our
// certificate (an alert on the first read, in TLS 1.3) can be told apart.
type recordConn struct {
	*tls.Conn
	mu  sync.Mutex
	err error
}

func (r *recordConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if err != nil {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
	return n, err
}

// Write sends one smux frame (header and data, up to muxFrameSize) in one
// syscall: crypto/tls cuts it into records of 16 KiB, each otherwise its
// own write. smux's send loop is the only writer.
func (r *recordConn) Write(p []byte) (int, error) { return conn.WriteBatched(r.Conn, p) }

// recordHeads hold a frame's header and the start of its data, one TLS
// record's worth.
var recordHeads = sync.Pool{New: func() any { b := make([]byte, 0, tlsRecord); return &b }}

// WriteBuffers sends one smux frame given as its header v[0] and data v[1]
// (smux's send loop uses it instead of copying the two into a frame buffer
// for Write): the header and the data's first bytes are copied into one
// record, the rest is encrypted from the stream's own buffer, and the
// records go out in one syscall.
func (r *recordConn) WriteBuffers(v [][]byte) (int, error) {
	if len(v) != 2 || len(v[0]) >= tlsRecord {
		return conn.WriteBatched(r.Conn, v...)
	}
	hp := recordHeads.Get().(*[]byte)
	defer recordHeads.Put(hp)
	head, data := v[0], v[1]
	k := min(len(data), tlsRecord-len(head))
	first := append(append((*hp)[:0], head...), data[:k]...)
	*hp = first[:0]
	return conn.WriteBatched(r.Conn, first, data[k:])
}

func (r *recordConn) readErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// session is one multiplexed TLS connection, on either end.
type session struct {
	mux  *smux.Session
	conn *recordConn
	raw  net.Conn // the TCP connection, for aborting
	ctl  *smux.Stream
	born time.Time
	exit int // entrance: the index of the exit in the tunnel's list

	ctlMu sync.Mutex // serialises control messages

	mu      sync.Mutex
	streams map[uint32]*stream
	// early holds resets that arrived before their stream was registered
	// (the control stream and the accept loop run apart); bounded.
	early    map[uint32]struct{}
	draining bool // no new streams; close once the last one ends
	closed   bool
}

func newSession(m *smux.Session, c *recordConn, raw net.Conn, now time.Time) *session {
	return &session{mux: m, conn: c, raw: raw, born: now, streams: map[uint32]*stream{}, early: map[uint32]struct{}{}}
}

// stream is one client connection carried by a session.
type stream struct {
	*smux.Stream
	s     *session
	reset atomic.Bool
	once  sync.Once
	// other is the connection the stream is relayed to; a reset from the
	// peer aborts it too, since the relay may be blocked reading it (the
	// stream's FIN can arrive before the reset notice, ending the
	// stream's direction cleanly).
	other atomic.Pointer[net.Conn]
}

// relayTo records the connection relayed with ms, and aborts it at once if
// the peer already reset the stream.
func (ms *stream) relayTo(c net.Conn) {
	ms.other.Store(&c)
	if ms.reset.Load() {
		conn.Abort(c)
	}
}

// peerReset handles the peer's reset notice.
func (ms *stream) peerReset() {
	ms.reset.Store(true)
	ms.Stream.Close()
	if c := ms.other.Load(); c != nil {
		conn.Abort(*c)
	}
}

// register adds a stream; it reports false when the session takes no new
// streams or already has MuxMaxStreams.
func (s *session) register(st *smux.Stream) (*stream, bool) {
	ms := &stream{Stream: st, s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.early[st.ID()]; ok {
		delete(s.early, st.ID())
		ms.reset.Store(true)
		return ms, false
	}
	if s.closed || s.draining || len(s.streams) >= MuxMaxStreams {
		return ms, false
	}
	s.streams[st.ID()] = ms
	return ms, true
}

// unregister forgets a stream, and closes a draining session left empty.
func (s *session) unregister(ms *stream) {
	s.mu.Lock()
	if s.streams[ms.ID()] == ms {
		delete(s.streams, ms.ID())
	}
	empty := s.draining && len(s.streams) == 0
	s.mu.Unlock()
	if empty {
		s.close()
	}
}

// drain stops new streams and closes the session once its streams ended
// (at once if it has none).
func (s *session) drain() {
	s.mu.Lock()
	s.draining = true
	empty := len(s.streams) == 0
	s.mu.Unlock()
	if empty {
		s.close()
	}
}

func (s *session) isUsable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closed && !s.draining && !s.mux.IsClosed()
}

// close ends the session: its streams fail, the TLS connection closes.
func (s *session) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.mux.Close()
	s.conn.Close()
}

// send writes a control message; failing to, the session is closed.
func (s *session) send(kind byte, id uint32) {
	var m [ctlMsgSize]byte
	m[0] = kind
	binary.LittleEndian.PutUint32(m[1:], id)
	s.ctlMu.Lock()
	s.ctl.SetWriteDeadline(time.Now().Add(ctlWriteTimeout))
	_, err := s.ctl.Write(m[:])
	s.ctlMu.Unlock()
	if err != nil {
		s.close()
	}
}

// readControl handles the peer's control messages until the session ends.
// onGoAway runs when the peer says it takes no new streams.
func (s *session) readControl(onGoAway func()) {
	defer s.close()
	var m [ctlMsgSize]byte
	for {
		if _, err := io.ReadFull(s.ctl, m[:]); err != nil {
			return
		}
		id := binary.LittleEndian.Uint32(m[1:])
		switch m[0] {
		case ctlReset:
			s.mu.Lock()
			ms := s.streams[id]
			if ms == nil && len(s.early) < MuxMaxStreams {
				s.early[id] = struct{}{}
			}
			s.mu.Unlock()
			if ms != nil {
				ms.peerReset()
			}
		case ctlGoAway:
			s.drain()
			if onGoAway != nil {
				onGoAway()
			}
		default: // a hello after the first, or garbage: a broken peer
			return
		}
	}
}

// Read returns errStreamReset once the peer reset the stream.
func (ms *stream) Read(p []byte) (int, error) {
	n, err := ms.Stream.Read(p)
	if err != nil && ms.reset.Load() {
		err = errStreamReset
	}
	return n, err
}

// WriteFramesTo writes the stream's received frames to w until EOF
// (conn.FrameWriter: a relay writes them straight from smux's buffers);
// errStreamReset once the peer reset the stream.
func (ms *stream) WriteFramesTo(w io.Writer) (int64, error) {
	n, err := ms.Stream.WriteTo(w)
	if err != nil && ms.reset.Load() {
		err = errStreamReset
	}
	return n, err
}

// Write returns errStreamReset once the peer reset the stream.
func (ms *stream) Write(p []byte) (int, error) {
	n, err := ms.Stream.Write(p)
	if err != nil && ms.reset.Load() {
		err = errStreamReset
	}
	return n, err
}

// Close ends the stream (after a relay's half-closes, a clean end).
func (ms *stream) Close() error {
	err := ms.Stream.Close()
	ms.once.Do(func() { ms.s.unregister(ms) })
	return err
}

// Abort resets the stream: the peer resets its end (and the connection
// it relays to) instead of seeing a clean end of stream.
func (ms *stream) Abort() {
	if !ms.reset.Load() {
		ms.s.send(ctlReset, ms.ID())
	}
	ms.Close()
}

// CloseWrite half-closes the stream (FIN): the peer reads EOF.
func (ms *stream) CloseWrite() error { return ms.Stream.CloseWrite() }
