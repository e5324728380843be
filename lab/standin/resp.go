package standin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds of the Redis stand-in.
const (
	// MaxRedisBulk is the largest bulk string the stand-in accepts (Redis
	// itself allows 512 MiB; the lab never needs more than this).
	MaxRedisBulk = 1 << 20
	// MaxRedisArgs is the largest command array the stand-in accepts.
	MaxRedisArgs = 1024
	// MaxRedisCommand bounds the sum of a command's bulk strings.
	MaxRedisCommand = 4 << 20
	// maxRedisInline bounds inline commands and protocol lines.
	maxRedisInline = 64 << 10
	// maxRedisKeys and maxRedisMemory bound the store; beyond them writes
	// get an OOM error, as with Redis's maxmemory.
	maxRedisKeys   = 100000
	maxRedisMemory = 64 << 20
	// maxRedisKeysReply bounds the reply of KEYS.
	maxRedisKeysReply = 10000
	// maxReplyDepth bounds the nesting of replies RedisCommand reads.
	maxReplyDepth = 32
	// maxClientBulk and maxClientArray bound replies RedisCommand reads.
	maxClientBulk  = 512 << 20
	maxClientArray = 1 << 20
)

// RedisError is an error reply ("-ERR ...") from a Redis server.
type RedisError string

func (e RedisError) Error() string { return string(e) }

// errRedisProtocol is a request the server cannot parse; the connection is
// answered with -ERR Protocol error and closed, as Redis does.
type errRedisProtocol string

func (e errRedisProtocol) Error() string { return "Protocol error: " + string(e) }

// readRESPCommand reads one command: a RESP array of bulk strings or an
// inline command line. It returns nil args for an empty inline line.
func readRESPCommand(r *bufio.Reader) ([][]byte, error) {
	first, err := r.Peek(1)
	if err != nil {
		return nil, err
	}
	if first[0] != '*' {
		line, err := readLine(r, maxRedisInline)
		if errors.Is(err, errLineTooLong) {
			return nil, errRedisProtocol("too big inline request")
		}
		if err != nil {
			return nil, err
		}
		return splitInline(line)
	}
	line, err := readLine(r, 64)
	if errors.Is(err, errLineTooLong) {
		return nil, errRedisProtocol("invalid multibulk length")
	}
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseInt(string(line[1:]), 10, 64)
	if err != nil || n > MaxRedisArgs {
		return nil, errRedisProtocol("invalid multibulk length")
	}
	if n <= 0 {
		return nil, nil
	}
	args := make([][]byte, 0, n)
	total := int64(0)
	for range n {
		line, err := readLine(r, 64)
		if errors.Is(err, errLineTooLong) {
			return nil, errRedisProtocol("invalid bulk length")
		}
		if err != nil {
			return nil, err
		}
		if len(line) == 0 || line[0] != '$' {
			got := "EOF"
			if len(line) > 0 {
				got = strconv.QuoteRune(rune(line[0]))
			}
			return nil, errRedisProtocol("expected '$', got " + got)
		}
		size, err := strconv.ParseInt(string(line[1:]), 10, 64)
		if err != nil || size < 0 || size > MaxRedisBulk {
			return nil, errRedisProtocol(fmt.Sprintf("invalid bulk length (this stand-in refuses bulk strings over %d bytes)", MaxRedisBulk))
		}
		if total += size; total > MaxRedisCommand {
			return nil, errRedisProtocol(fmt.Sprintf("command larger than %d bytes", MaxRedisCommand))
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		if buf[size] != '\r' || buf[size+1] != '\n' {
			return nil, errRedisProtocol("bulk string not followed by CRLF")
		}
		args = append(args, buf[:size])
	}
	return args, nil
}

// splitInline splits an inline command on blanks, honouring double and
// single quotes as redis-cli does (without escapes).
func splitInline(line []byte) ([][]byte, error) {
	var args [][]byte
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			break
		}
		if q := line[i]; q == '"' || q == '\'' {
			end := bytes.IndexByte(line[i+1:], q)
			if end < 0 {
				return nil, errRedisProtocol("unbalanced quotes in request")
			}
			args = append(args, slices.Clone(line[i+1:i+1+end]))
			i += end + 2
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		args = append(args, slices.Clone(line[i:j]))
		i = j
	}
	if len(args) > MaxRedisArgs {
		return nil, errRedisProtocol("too many arguments in inline request")
	}
	return args, nil
}

// redisServer is the Redis stand-in: one keyspace shared by all
// connections.
type redisServer struct {
	*connServer
	mu    sync.Mutex
	data  map[string]redisEntry
	bytes int
}

type redisEntry struct {
	val     []byte
	expires time.Time // zero: no expiry
}

func newRedis(info Info, opts Options) *redisServer {
	s := &redisServer{connServer: newConnServer("redis", info, opts), data: map[string]redisEntry{}}
	s.handle = s.serveConn
	return s
}

func (s *redisServer) serveConn(ctx context.Context, c net.Conn) {
	br := bufio.NewReaderSize(c, 16<<10)
	bw := bufio.NewWriterSize(c, 16<<10)
	for ctx.Err() == nil {
		c.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		args, err := readRESPCommand(br)
		if err != nil {
			var pe errRedisProtocol
			if errors.As(err, &pe) {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				bw.WriteString("-ERR " + pe.Error() + "\r\n")
				bw.Flush()
			}
			s.logConnErr(c, err)
			return
		}
		if len(args) == 0 {
			continue
		}
		quit := s.exec(bw, args)
		// Flush once the pipeline is drained, as Redis does.
		if br.Buffered() == 0 || quit || bw.Buffered() > 64<<10 {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := bw.Flush(); err != nil {
				s.logConnErr(c, err)
				return
			}
		}
		if quit {
			return
		}
	}
}

func writeBulk(w *bufio.Writer, b []byte) {
	w.WriteString("$" + strconv.Itoa(len(b)) + "\r\n")
	w.Write(b)
	w.WriteString("\r\n")
}

func writeInt(w *bufio.Writer, n int64) { w.WriteString(":" + strconv.FormatInt(n, 10) + "\r\n") }

// safeErr keeps user bytes out of the protocol framing of an error line:
// at most 128 bytes, CR and LF as spaces.
func safeErr(b []byte) string {
	out := []byte(string(b[:min(len(b), 128)]))
	for i, c := range out {
		if c == '\r' || c == '\n' {
			out[i] = ' '
		}
	}
	return string(out)
}

// exec runs one command and writes its reply; it reports QUIT.
func (s *redisServer) exec(w *bufio.Writer, args [][]byte) (quit bool) {
	name := strings.ToLower(string(args[0]))
	argc := len(args)
	arity := func(ok bool) bool {
		if !ok {
			w.WriteString("-ERR wrong number of arguments for '" + safeErr([]byte(name)) + "' command\r\n")
		}
		return ok
	}
	now := s.opts.Now()
	switch name {
	case "ping":
		if !arity(argc <= 2) {
			return
		}
		if argc == 2 {
			writeBulk(w, args[1])
		} else {
			w.WriteString("+PONG\r\n")
		}
	case "echo":
		if arity(argc == 2) {
			writeBulk(w, args[1])
		}
	case "set":
		if !arity(argc == 3 || argc == 5) {
			return
		}
		var exp time.Time
		if argc == 5 {
			if !strings.EqualFold(string(args[3]), "ex") {
				w.WriteString("-ERR syntax error\r\n")
				return
			}
			secs, err := strconv.ParseInt(string(args[4]), 10, 64)
			if err != nil {
				w.WriteString("-ERR value is not an integer or out of range\r\n")
				return
			}
			if secs <= 0 || secs > 100*365*24*3600 {
				w.WriteString("-ERR invalid expire time in 'set' command\r\n")
				return
			}
			exp = now.Add(time.Duration(secs) * time.Second)
		}
		if err := s.set(string(args[1]), slices.Clone(args[2]), exp, now); err != nil {
			w.WriteString("-" + err.Error() + "\r\n")
			return
		}
		w.WriteString("+OK\r\n")
	case "get":
		if !arity(argc == 2) {
			return
		}
		if v, ok := s.get(string(args[1]), now); ok {
			writeBulk(w, v)
		} else {
			w.WriteString("$-1\r\n")
		}
	case "del", "exists":
		if !arity(argc >= 2) {
			return
		}
		n := int64(0)
		s.mu.Lock()
		for _, k := range args[1:] {
			if _, ok := s.liveLocked(string(k), now); ok {
				n++
				if name == "del" {
					s.deleteLocked(string(k))
				}
			}
		}
		s.mu.Unlock()
		writeInt(w, n)
	case "incr":
		if !arity(argc == 2) {
			return
		}
		n, err := s.incr(string(args[1]), now)
		if err != nil {
			w.WriteString("-" + err.Error() + "\r\n")
			return
		}
		writeInt(w, n)
	case "keys":
		if !arity(argc == 2) {
			return
		}
		keys := s.keys(args[1], now)
		w.WriteString("*" + strconv.Itoa(len(keys)) + "\r\n")
		for _, k := range keys {
			writeBulk(w, []byte(k))
		}
	case "info":
		if !arity(argc <= 2) {
			return
		}
		s.mu.Lock()
		nkeys := len(s.data)
		s.mu.Unlock()
		info := "# Server\r\nredis_version:0.0.0-offedge-standin\r\nredis_mode:standalone\r\n" +
			"offedge_standin:" + s.info.label() + "\r\n\r\n# Keyspace\r\n"
		if nkeys > 0 {
			info += fmt.Sprintf("db0:keys=%d,expires=0,avg_ttl=0\r\n", nkeys)
		}
		writeBulk(w, []byte(info))
	case "select":
		if !arity(argc == 2) {
			return
		}
		if string(args[1]) != "0" {
			w.WriteString("-ERR DB index is out of range\r\n")
			return
		}
		w.WriteString("+OK\r\n")
	case "client":
		if argc == 3 && strings.EqualFold(string(args[1]), "setname") {
			w.WriteString("+OK\r\n")
			return
		}
		w.WriteString("-ERR unknown subcommand or wrong number of arguments for 'client' command (this stand-in knows only CLIENT SETNAME)\r\n")
	case "quit":
		w.WriteString("+OK\r\n")
		return true
	case "command":
		w.WriteString("*0\r\n")
	default:
		w.WriteString("-ERR unknown command '" + safeErr(args[0]) + "', with args beginning with: (offedge Redis stand-in)\r\n")
	}
	return false
}

func (s *redisServer) liveLocked(k string, now time.Time) (redisEntry, bool) {
	e, ok := s.data[k]
	if ok && !e.expires.IsZero() && !now.Before(e.expires) {
		s.deleteLocked(k)
		return redisEntry{}, false
	}
	return e, ok
}

func (s *redisServer) deleteLocked(k string) {
	if e, ok := s.data[k]; ok {
		s.bytes -= len(k) + len(e.val)
		delete(s.data, k)
	}
}

func (s *redisServer) setLocked(k string, v []byte, exp time.Time, now time.Time) error {
	old, exists := s.liveLocked(k, now)
	grow := len(k) + len(v)
	if exists {
		grow -= len(k) + len(old.val)
	}
	if (!exists && len(s.data) >= maxRedisKeys) || s.bytes+grow > maxRedisMemory {
		return RedisError("OOM command not allowed when used memory > 'maxmemory' (offedge stand-in limit)")
	}
	s.data[k] = redisEntry{val: v, expires: exp}
	s.bytes += grow
	return nil
}

func (s *redisServer) set(k string, v []byte, exp, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setLocked(k, v, exp, now)
}

func (s *redisServer) get(k string, now time.Time) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(k, now)
	return e.val, ok
}

func (s *redisServer) incr(k string, now time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(k, now)
	n := int64(0)
	if ok {
		var err error
		if n, err = strconv.ParseInt(string(e.val), 10, 64); err != nil {
			return 0, RedisError("ERR value is not an integer or out of range")
		}
	}
	if n == 1<<63-1 {
		return 0, RedisError("ERR increment or decrement would overflow")
	}
	n++
	return n, s.setLocked(k, []byte(strconv.FormatInt(n, 10)), e.expires, now)
}

func (s *redisServer) keys(pattern []byte, now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.data {
		if _, ok := s.liveLocked(k, now); !ok {
			continue
		}
		if globMatch(pattern, []byte(k)) {
			out = append(out, k)
			if len(out) >= maxRedisKeysReply {
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// globMatch is Redis's glob: * ? [abc] [^a-z] and \ escapes. It runs in
// O(len(pattern)·len(s)) by backtracking only to the last star.
func globMatch(p, s []byte) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch p[pi] {
			case '*':
				starP, starS = pi, si
				pi++
				continue
			case '?':
				pi++
				si++
				continue
			case '[':
				if ok, next := matchClass(p, pi, s[si]); ok {
					pi, si = next, si+1
					continue
				}
			case '\\':
				if pi+1 < len(p) && p[pi+1] == s[si] {
					pi, si = pi+2, si+1
					continue
				}
			default:
				if p[pi] == s[si] {
					pi++
					si++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchClass matches c against the class starting at p[i] == '[' and
// returns the index after the class.
func matchClass(p []byte, i int, c byte) (bool, int) {
	i++
	negate := i < len(p) && p[i] == '^'
	if negate {
		i++
	}
	matched := false
	for i < len(p) && p[i] != ']' {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			matched = matched || p[i+1] == c
			i += 2
		case i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']':
			lo, hi := p[i], p[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			matched = matched || (c >= lo && c <= hi)
			i += 3
		default:
			matched = matched || p[i] == c
			i++
		}
	}
	if i < len(p) {
		i++ // the ']'
	}
	return matched != negate, i
}

// RedisCommand sends one command over c as a RESP array of bulk strings and
// reads the reply: a simple or bulk string as string, an integer as int64,
// an array as []any (elements of the same types, error elements as
// RedisError), a nil bulk or array as nil, and an error reply as a
// RedisError error. ctx bounds the exchange. It speaks real RESP2, so it
// works against redis-server too.
func RedisCommand(ctx context.Context, c net.Conn, args ...string) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("redis: empty command")
	}
	var b []byte
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
		defer c.SetDeadline(time.Time{})
	}
	if _, err := c.Write(b); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("redis %s: %w", args[0], err))
	}
	// The reader must not consume bytes past the reply: read byte-exactly
	// through a small buffer sized to each need.
	v, err := readRESPReply(&exactReader{r: c}, 0)
	if err != nil {
		var re RedisError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, ctxErr(ctx, fmt.Errorf("redis %s: %w", args[0], err))
	}
	return v, nil
}

// exactReader reads lines byte by byte and bulk payloads exactly, so that
// RedisCommand never reads ahead into the next reply on a connection it
// does not own.
type exactReader struct {
	r   io.Reader
	one [1]byte
}

func (e *exactReader) line(max int) ([]byte, error) {
	var line []byte
	for {
		if _, err := io.ReadFull(e.r, e.one[:]); err != nil {
			return nil, err
		}
		if e.one[0] == '\n' {
			if n := len(line); n > 0 && line[n-1] == '\r' {
				return line[:n-1], nil
			}
			return nil, errors.New("reply line not ended by CRLF")
		}
		if len(line) >= max {
			return nil, fmt.Errorf("reply line longer than %d bytes", max)
		}
		line = append(line, e.one[0])
	}
}

// readRESPReply reads one RESP2 reply; an error reply at the top level is
// returned as a RedisError error.
func readRESPReply(r *exactReader, depth int) (any, error) {
	if depth > maxReplyDepth {
		return nil, fmt.Errorf("reply nested deeper than %d", maxReplyDepth)
	}
	line, err := r.line(maxRedisInline)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, errors.New("empty reply line")
	}
	body := string(line[1:])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, RedisError(body)
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad integer reply %q", body)
		}
		return n, nil
	case '$':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil || n < -1 || n > maxClientBulk {
			return nil, fmt.Errorf("bad bulk length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r.r, buf); err != nil {
			return nil, err
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return nil, errors.New("bulk reply not followed by CRLF")
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil || n < -1 || n > maxClientArray {
			return nil, fmt.Errorf("bad array length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		out := make([]any, 0, min(n, 1024))
		for range n {
			v, err := readRESPReply(r, depth+1)
			var re RedisError
			if errors.As(err, &re) {
				v, err = re, nil
			}
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown reply type %q", line[0])
}
