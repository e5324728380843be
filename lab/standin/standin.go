package standin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// Info describes what a stand-in stands for.
type Info struct {
	// Service is the inventory name of the service (e.g. "po-off", "mongodb").
	Service string
	// Node is the node the service runs on (e.g. "off1").
	Node string
	// Title is a human title for HTML pages; Service is used when empty.
	Title string
	// Flavor is the Product Opener flavor (off, obf, opf, opff, off-pro); when
	// set, an http service gets the Product Opener stand-in.
	Flavor string
}

// label is "<service>@<node>", the value of X-Offedge-Standin.
func (i Info) label() string { return i.Service + "@" + i.Node }

func (i Info) title() string {
	if i.Title != "" {
		return i.Title
	}
	return i.Service
}

// Server is a running stand-in.
type Server interface {
	// Serve accepts connections on ln until Close; it may be called for
	// several listeners concurrently. It returns nil once the server is
	// closed, ErrClosed when called after Close, and the listener's error if
	// accepting fails otherwise.
	Serve(ln net.Listener) error
	// Close stops all listeners and open connections and waits for the
	// connection goroutines to finish.
	Close() error
	// Kind names the stand-in: "product-opener", "http", "influxdb",
	// "mongodb", "redis", "smtp" or "tcp".
	Kind() string
}

// Options tunes a stand-in. The zero value is usable.
type Options struct {
	// Logger receives connection errors and protocol violations; nil discards.
	Logger *slog.Logger
	// Now is the clock (hello's localTime, Redis expiry, SMTP receipt
	// times); nil means time.Now.
	Now func() time.Time
	// IdleTimeout closes TCP connections (SMTP, Redis, MongoDB, generic TCP,
	// WebSocket) that send nothing for this long; zero means 60 s.
	IdleTimeout time.Duration
}

// ErrClosed is returned by Serve when the server has been closed.
var ErrClosed = errors.New("standin: server closed")

const defaultIdle = 60 * time.Second

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultIdle
	}
	return o
}

// New returns the stand-in for a service protocol: "http" and "https" (the
// Product Opener stand-in when info.Flavor is set, a generic web application
// otherwise; TLS, if any, is the listener's business), "influxdb",
// "mongodb", "redis", "smtp"; "tcp", "nfs" and any other protocol get the
// generic TCP line echo.
func New(protocol string, info Info, opts Options) (Server, error) {
	if info.Service == "" {
		return nil, errors.New("standin: Info.Service is empty; a stand-in must say what it stands for")
	}
	if info.Node == "" {
		return nil, fmt.Errorf("standin: service %q: Info.Node is empty; a stand-in must say where it runs", info.Service)
	}
	opts = opts.withDefaults()
	proto := strings.ToLower(protocol)
	switch proto {
	case "http", "https":
		if info.Flavor != "" {
			if _, ok := flavors[info.Flavor]; !ok {
				return nil, fmt.Errorf("standin: service %q: unknown Product Opener flavor %q (want one of off, obf, opf, opff, off-pro)", info.Service, info.Flavor)
			}
			return newHTTP("product-opener", info, opts), nil
		}
		return newHTTP("http", info, opts), nil
	case "influxdb":
		return newHTTP("influxdb", info, opts), nil
	case "mongodb":
		return newMongo(info, opts), nil
	case "redis":
		return newRedis(info, opts), nil
	case "smtp":
		return newSMTP(info, opts), nil
	default:
		if proto == "" {
			proto = "tcp"
		}
		return newTCP(proto, info, opts), nil
	}
}

// connServer is the listener and connection bookkeeping shared by the TCP
// stand-ins: every connection runs in a tracked goroutine and Close closes
// listeners and connections, then waits for the goroutines.
type connServer struct {
	kind   string
	info   Info
	opts   Options
	handle func(ctx context.Context, c net.Conn)

	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newConnServer(kind string, info Info, opts Options) *connServer {
	ctx, cancel := context.WithCancel(context.Background())
	return &connServer{kind: kind, info: info, opts: opts, ctx: ctx, cancel: cancel,
		lns: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}}
}

func (s *connServer) Kind() string { return s.kind }

func (s *connServer) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.lns[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("standin %s: accept on %s: %w", s.info.label(), ln.Addr(), err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.handle(s.ctx, c)
		}()
	}
}

func (s *connServer) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cancel()
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// logConnErr logs a connection-level error unless it is the ordinary end of
// a connection (EOF, closed by Close).
func (s *connServer) logConnErr(c net.Conn, err error) {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
		return
	}
	s.opts.Logger.Debug("stand-in connection ended", "standin", s.info.label(), "kind", s.kind, "remote", c.RemoteAddr().String(), "err", err)
}

// readLine reads one line ending in LF from r, at most max bytes including
// the line ending, and returns a copy without the line ending. A longer
// line is reported with errLineTooLong, right away; resyncLine also
// consumes the rest of it (without keeping it) so that the caller can
// answer and carry on.
func readLine(r *bufio.Reader, max int) ([]byte, error) { return readLineOpt(r, max, false) }

func resyncLine(r *bufio.Reader, max int) ([]byte, error) { return readLineOpt(r, max, true) }

func readLineOpt(r *bufio.Reader, max int, resync bool) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		// Look at what has arrived (waiting for at least one byte), so that
		// an overlong line is noticed as soon as its bytes are there.
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil {
				return nil, err
			}
		}
		buf, _ := r.Peek(r.Buffered())
		end := bytes.IndexByte(buf, '\n')
		frag := buf
		if end >= 0 {
			frag = buf[:end+1]
		}
		if !tooLong && len(line)+len(frag) > max {
			if !resync {
				return nil, errLineTooLong
			}
			tooLong, line = true, nil
		}
		if !tooLong {
			line = append(line, frag...)
		}
		r.Discard(len(frag))
		if end >= 0 {
			break
		}
	}
	if tooLong {
		return nil, errLineTooLong
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

var errLineTooLong = errors.New("line too long")
