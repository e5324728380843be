package conn

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// BufferSize is the size of a relay's copy buffer: two TLS records, and
// what the kernel hands out per read on a busy loopback socket.
const BufferSize = 32 << 10

// BufferPool shares copy buffers between the relays of one role. The zero
// value is ready to use.
type BufferPool struct{ p sync.Pool }

func (b *BufferPool) get() *[]byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return v
	}
	buf := make([]byte, BufferSize)
	return &buf
}

func (b *BufferPool) put(buf *[]byte) { b.p.Put(buf) }

// RelayOptions configure one [Relay].
type RelayOptions struct {
	// Idle closes both connections once no byte moved either way for this
	// long; zero disables it.
	Idle time.Duration
	// OnIdle, if set, is called once when the idle timeout closes them.
	OnIdle func()
	// Now is the clock of the idle watch; nil means time.Now.
	Now func() time.Time
	// Up and Down, when set, are a role's totals: bytes a → b and b → a.
	// Spliced bytes are added when their direction ends.
	Up, Down *atomic.Uint64
	// Buffers is the pool of copy buffers; nil allocates one per direction.
	Buffers *BufferPool
	// Later, if set, runs once LaterAfter into the relay if it is still
	// open, given the relay's connections (the forward's target
	// keepalive), on the process's shared timer of that duration, as the
	// idle watch: a connection costs no timer of its own.
	Later      func(a, b net.Conn)
	LaterAfter time.Duration
}

// Result is what one relay moved.
type Result struct {
	Up, Down uint64 // bytes a → b and b → a
	// Spliced says the relay ran in the kernel (splice between two TCP sockets).
	Spliced bool
	// Idle says the idle timeout closed the connections.
	Idle bool
}

// Relay copies a → b and b → a until both directions end, and carries
// half-closes across (EOF on one side becomes CloseWrite on the other: a
// FIN, or a TLS close_notify). Whichever direction fails first resets both
// connections ([Abort]), so that the other copy returns at once and neither
// peer mistakes a truncated stream for a complete one; the first error is
// the one returned.
//
// Between two *net.TCPConn on Linux it calls TCPConn.ReadFrom directly,
// which splices, caps the socket buffers of same-host paths, and measures
// idleness from the kernel's own last-receive timestamps (TCP_INFO), since a
// counting wrapper would defeat splice. Otherwise it copies through a pooled
// buffer; a *tls.Conn source is drained of the records it already holds
// before each write, and a *tls.Conn destination over a [BatchConn] writes
// those records in one syscall.
//
// The direction b → a runs on the calling goroutine, a → b on a pool
// worker ([Go]); the idle watch and Later run on the process's shared
// timer queues (idle.go). A relay is one allocation of its own state.
func Relay(a, b net.Conn, o RelayOptions) (Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Buffers == nil {
		o.Buffers = new(BufferPool)
	}
	r := &relay{a: a, b: b, o: o}
	r.ta, _ = a.(*net.TCPConn)
	r.tb, _ = b.(*net.TCPConn)
	r.spliced = r.ta != nil && r.tb != nil && haveTCPInfo
	if r.spliced {
		capLocalBuffers(r.ta)
		capLocalBuffers(r.tb)
	}
	if o.Idle > 0 {
		r.last, r.since = 0, o.Now()
		r.idleW.start(idleStep(o.Idle), r)
		defer r.idleW.stop()
	}
	if o.Later != nil {
		r.laterW.start(o.LaterAfter, r)
		defer r.laterW.stop()
	}
	r.wg.Add(1)
	Go(r.runUp)
	r.run(a, b, &r.down, o.Down)
	r.wg.Wait()
	return Result{Up: r.up.Load(), Down: r.down.Load(), Spliced: r.spliced, Idle: r.idled.Load()}, r.err
}

// relay is the state of one Relay.
type relay struct {
	a, b    net.Conn
	ta, tb  *net.TCPConn // a and b when they are TCP connections
	o       RelayOptions
	spliced bool

	up, down, moved atomic.Uint64
	idled           atomic.Bool
	ended           atomic.Int32 // spliced directions that reached EOF
	aborted         atomic.Bool
	err             error // of the direction that failed first

	wg sync.WaitGroup // the a → b direction

	idleW, laterW watch
	last          uint64    // moved at the last idle check (copied relays)
	since         time.Time // when moved last changed
}

func (r *relay) runUp() {
	r.run(r.b, r.a, &r.up, r.o.Up)
	r.wg.Done()
}

// run copies src to dst; the first direction to fail resets both
// connections, and its error is the relay's.
func (r *relay) run(dst, src net.Conn, n, total *atomic.Uint64) {
	if err := r.half(dst, src, n, total); err != nil && r.aborted.CompareAndSwap(false, true) {
		r.err = err
		Abort(r.a, r.b)
	}
}

func (r *relay) half(dst, src net.Conn, n, total *atomic.Uint64) error {
	if !r.spliced {
		return copyHalf(r.o.Buffers, dst, src, n, total, &r.moved)
	}
	tdst := dst.(*net.TCPConn)
	c, err := tdst.ReadFrom(src)
	n.Add(uint64(c))
	if total != nil {
		total.Add(uint64(c))
	}
	if err != nil {
		return err
	}
	if r.ended.Add(1) == 2 {
		// Both sources are at EOF, so both connections are
		// about to be closed, and close sends this FIN (no
		// unread data is left to turn it into a reset).
		return nil
	}
	return tdst.CloseWrite()
}

// due is the idle watch's check and the Later call (watcher).
func (r *relay) due(w *watch) bool {
	if w == &r.laterW {
		r.o.Later(r.a, r.b)
		return false
	}
	if r.idleFor() < r.o.Idle {
		return true
	}
	r.idled.Store(true)
	if r.o.OnIdle != nil {
		r.o.OnIdle()
	}
	r.a.Close()
	r.b.Close()
	return false
}

// idleFor is how long no byte moved either way: for a spliced relay from
// the kernel's last-receive timestamps, otherwise from the byte counter
// (called from the idle watch only).
func (r *relay) idleFor() time.Duration {
	if r.spliced {
		da, _ := sinceLastRecv(r.ta)
		db, _ := sinceLastRecv(r.tb)
		return min(da, db)
	}
	if m := r.moved.Load(); m != r.last {
		r.last, r.since = m, r.o.Now()
	}
	return r.o.Now().Sub(r.since)
}

// Aborter is a connection with its own way of telling the peer that it was
// reset rather than closed (a multiplexed stream sends a reset notice).
type Aborter interface{ Abort() }

// Abort resets connections after an error: SO_LINGER 0 on the TCP socket
// under any wrapper (a *tls.Conn, a [BatchConn]), and for TLS no
// close_notify, so that the peer sees a reset rather than a clean end. An
// [Aborter] resets itself.
func Abort(conns ...net.Conn) {
	for _, c := range conns {
		if a, ok := c.(Aborter); ok {
			a.Abort()
			continue
		}
		if tc, ok := Innermost(c).(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// Innermost is the connection under c's wrappers, each of which exposes
// the one it wraps with NetConn (as *tls.Conn does): for a connection
// accepted or dialled over TCP, its *net.TCPConn.
func Innermost(c net.Conn) net.Conn {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return c
		}
		c = u.NetConn()
	}
}

type closeWriter interface{ CloseWrite() error }

// BigBufferSize is the buffer a relay direction borrows while its source
// keeps it busy: a read that fills the small [BufferSize] buffer says more
// is queued, and the next reads go into a big one (a fraction of the
// syscalls per MiB, and of a multiplexed stream's frames) until one does
// not fill it or waits longer than bigHold. The big buffer then goes back
// to a process-wide pool, so an idle relay holds only its small buffers,
// as before. A *tls.Conn source does not borrow one: it returns what it
// has decrypted, and holds at most a few records (crypto/tls reads the
// socket into a buffer of its own).
//
// Its 261,548 bytes are four offedge-mux frames of [FrameData] bytes,
// sized so that every write a busy tunnel makes fills whole loopback
// segments ([LoopbackMSS]): a frame with its 8-byte header in four TLS
// records is one segment, a frame's data written to a same-host target is
// one, and a full big buffer written over TLS (sixteen records) is four.
// With frames of four full records (65,624 bytes in all) every frame was
// a full segment and a runt of 141 bytes, twice the segments per MiB on
// each same-host hop.
const BigBufferSize = 4 * FrameData

// LoopbackMSS is the largest TCP segment on loopback: its MTU of 65,536
// bytes less 20 of IP header, 20 of TCP header and 12 of timestamps. A
// write is cut into segments of this size, so one of 65,484 bytes costs
// two (each its own trip through the TCP stack and the receiver's wake-up).
const LoopbackMSS = 65483

// FrameData is the data of one offedge-mux frame, and what a busy relay
// direction writes to a stream at a time: with the frame's 8-byte header,
// four TLS 1.3 AES-GCM records (22 bytes each of header, content type and
// tag) fill one loopback segment exactly.
const FrameData = LoopbackMSS - 8 - 4*TLSRecordOverhead

// TLSRecordOverhead is what a TLS 1.3 AES-GCM record adds to its data: a
// 5-byte header, the 1-byte inner content type and a 16-byte tag.
const TLSRecordOverhead = 5 + 1 + 16

var bigBuffers = sync.Pool{New: func() any { b := make([]byte, BigBufferSize); return &b }}

// bigHeld counts the big buffers relays hold.
var bigHeld atomic.Int64

// maxBigHeld bounds the big buffers held at once, process-wide (64 MiB):
// clients that keep their connections busy decide how many relays want
// one, so past the bound a relay goes on with its small buffer (more
// syscalls, the same bytes). A variable for tests.
var maxBigHeld int64 = 256

// borrowBig takes a big buffer if the bound allows, else nil.
func borrowBig() *[]byte {
	if bigHeld.Add(1) > maxBigHeld {
		bigHeld.Add(-1)
		return nil
	}
	return bigBuffers.Get().(*[]byte)
}

// returnBig gives back what borrowBig lent.
func returnBig(b *[]byte) {
	bigHeld.Add(-1)
	bigBuffers.Put(b)
}

// bigHold bounds how long a read into a big buffer waits for data: a
// source that stops right after filling it gives it back after this long.
// A variable for tests.
var bigHold = 100 * time.Millisecond

// FrameWriter is a source that holds what it received in buffers of its
// own (a multiplexed stream's frames): the relay has it write them to the
// destination itself, saving the copy through a relay buffer (and the
// buffer: such a direction holds none).
type FrameWriter interface {
	WriteFramesTo(w io.Writer) (int64, error)
}

// counter is the destination of a [FrameWriter], counting what it writes.
type counter struct {
	dst             halfWriter
	n, total, moved *atomic.Uint64
}

func (c *counter) Write(p []byte) (int, error) {
	nw, err := c.dst.Write(p)
	c.n.Add(uint64(nw))
	c.moved.Add(uint64(nw))
	if c.total != nil {
		c.total.Add(uint64(nw))
	}
	return nw, err
}

// copyHalf copies src to dst through a pooled buffer (a [FrameWriter]
// writes its own), counting into n, total (if set) and moved, and
// half-closes dst at EOF.
func copyHalf(bufs *BufferPool, dst, src net.Conn, n, total, moved *atomic.Uint64) error {
	out := halfWriter{dst, NewSocket(dst)}
	if fw, ok := src.(FrameWriter); ok {
		if _, err := fw.WriteFramesTo(&counter{out, n, total, moved}); err != nil {
			return err
		}
		return endWrite(dst)
	}
	bp := bufs.get()
	defer bufs.put(bp)
	small := *bp
	buf := small
	var big *[]byte
	defer func() {
		if big != nil {
			returnBig(big)
		}
	}()
	tsrc, _ := src.(*tls.Conn)
	in := DataPath(src)
	for {
		if big != nil {
			src.SetReadDeadline(time.Now().Add(bigHold))
		}
		nr, rerr := in.Read(buf)
		if tsrc != nil && rerr == nil && nr > 0 && nr < len(buf) {
			nr, rerr = drainBuffered(tsrc, buf, nr)
		}
		if big != nil {
			derr := src.SetReadDeadline(time.Time{})
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				rerr = nil // bigHold passed: the buffer goes back below
			} else if rerr == nil {
				rerr = derr
			}
		}
		if nr > 0 {
			nw, werr := out.Write(buf[:nr])
			n.Add(uint64(nw))
			moved.Add(uint64(nw))
			if total != nil {
				total.Add(uint64(nw))
			}
			if werr != nil {
				return werr
			}
		}
		if rerr == io.EOF {
			return endWrite(dst)
		}
		if rerr != nil {
			return rerr
		}
		switch {
		case big == nil && nr == len(buf) && tsrc == nil:
			if big = borrowBig(); big != nil {
				buf = *big
			}
		case big != nil && nr < len(buf):
			returnBig(big)
			big, buf = nil, small
		}
	}
}

// halfWriter writes a relay's output: to a plain TCP socket without the
// scheduler's system call bookkeeping ([Socket]), to anything
// else with [WriteBatched].
type halfWriter struct {
	dst net.Conn
	raw *Socket
}

func (w halfWriter) Write(p []byte) (int, error) {
	if w.raw != nil {
		return w.raw.Write(p)
	}
	return WriteBatched(w.dst, p)
}

// endWrite passes a source's EOF on: a half-close of dst, or a close.
func endWrite(dst net.Conn) error {
	if cw, ok := dst.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
	return dst.Close()
}

// aLongTimeAgo is a deadline that has always passed.
var aLongTimeAgo = time.Unix(1, 0)

// drainBuffered appends to buf[:n] the records c has already received,
// without waiting for more: crypto/tls returns one record (≤16 KiB) per
// Read, and writing each on its own costs one syscall per record. With the
// read deadline in the past, a Read that would have to wait for the socket
// returns a timeout at once (without a syscall), and crypto/tls keeps the
// partial record for the next Read.
func drainBuffered(c *tls.Conn, buf []byte, n int) (int, error) {
	c.SetReadDeadline(aLongTimeAgo)
	var err error
	for n < len(buf) {
		var m int
		m, err = c.Read(buf[n:])
		n += m
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = nil
			}
			break
		}
	}
	if derr := c.SetReadDeadline(time.Time{}); err == nil {
		err = derr
	}
	return n, err
}

// BatchConn is the socket under a tunnel's *tls.Conn. crypto/tls writes
// each record (≤16 KiB) with its own Write; during a relay's write,
// BatchConn collects them so that one tls.Conn.Write costs one syscall.
// Outside a batch (handshake, alerts, close_notify) it writes through. The
// collecting buffer is taken from a pool for the batch only, so an idle
// connection holds none (it held the ~40 KiB of its largest write).
type BatchConn struct {
	net.Conn
	rw  io.ReadWriter // DataPath(Conn)
	mu  sync.Mutex
	on  bool
	big bool // the batch is more than BufferSize bytes
	buf *[]byte
}

// batchBuffers hold a batch: a relay write of BufferSize bytes and its
// records' framing; bigBatchBuffers one of up to BigBufferSize bytes.
var (
	batchBuffers    = sync.Pool{New: func() any { b := make([]byte, 0, BufferSize+BufferSize/8); return &b }}
	bigBatchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, BigBufferSize+BigBufferSize/8); return &b }}
)

// NewBatchConn wraps c; give the result to tls.Client or tls.Server.
func NewBatchConn(c net.Conn) *BatchConn { return &BatchConn{Conn: c, rw: DataPath(c)} }

// Read reads the socket ([Socket]: without waking the
// scheduler's monitor).
func (b *BatchConn) Read(p []byte) (int, error) { return b.rw.Read(p) }

func (b *BatchConn) write(p []byte) (int, error) { return b.rw.Write(p) }

// NetConn returns the wrapped connection.
func (b *BatchConn) NetConn() net.Conn { return b.Conn }

// Write collects p during a batch, and writes it through otherwise.
func (b *BatchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.on {
		if b.buf == nil {
			b.buf = b.pool().Get().(*[]byte)
		}
		*b.buf = append(*b.buf, p...)
		return len(p), nil
	}
	return b.write(p)
}

// begin starts a batch of a write of n bytes.
func (b *BatchConn) begin(n int) {
	b.mu.Lock()
	b.on, b.big = true, n > BufferSize
	b.mu.Unlock()
}

func (b *BatchConn) pool() *sync.Pool {
	if b.big {
		return &bigBatchBuffers
	}
	return &batchBuffers
}

// flush ends the batch, writes what it collected and gives the buffer back.
func (b *BatchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.on = false
	if b.buf == nil {
		return nil
	}
	var err error
	if len(*b.buf) > 0 {
		_, err = b.write(*b.buf)
	}
	*b.buf = (*b.buf)[:0]
	b.pool().Put(b.buf)
	b.buf = nil
	return err
}

// WriteBatched writes the buffers to dst in turn, as one syscall when dst
// is a tls.Conn over a BatchConn (each buffer is its own records). If the
// batched write fails, it reports nothing written: the connection is then
// aborted anyway. Only one goroutine may write to dst this way at a time.
func WriteBatched(dst net.Conn, bufs ...[]byte) (int, error) {
	tc, ok := dst.(*tls.Conn)
	var bc *BatchConn
	if ok {
		bc, ok = tc.NetConn().(*BatchConn)
	}
	if !ok {
		return writeAll(dst, bufs)
	}
	size := 0
	for _, p := range bufs {
		size += len(p)
	}
	bc.begin(size)
	n, err := writeAll(tc, bufs)
	if ferr := bc.flush(); ferr != nil {
		return 0, ferr
	}
	return n, err
}

func writeAll(dst net.Conn, bufs [][]byte) (int, error) {
	var n int
	for _, p := range bufs {
		if len(p) == 0 {
			continue
		}
		m, err := dst.Write(p)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
