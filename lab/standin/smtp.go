package standin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds of the SMTP stand-in.
const (
	// MaxSMTPMessage is the SIZE the stand-in announces and enforces.
	MaxSMTPMessage = 10485760
	// MaxSMTPLine is the longest command or text line, CRLF included
	// (RFC 5321, 4.5.3.1.4 and 4.5.3.1.6).
	MaxSMTPLine = 1000
	// MaxSMTPRecipients bounds RCPT TO per message.
	MaxSMTPRecipients = 100
	// MaxSMTPKept is how many accepted messages Messages keeps.
	MaxSMTPKept = 100
	// maxSMTPErrors closes a session after this many bad commands, as
	// Postfix's smtpd_hard_error_limit does.
	maxSMTPErrors = 20
)

// Message is a message the SMTP stand-in accepted.
type Message struct {
	Helo     string    // the HELO/EHLO argument
	From     string    // the MAIL FROM reverse-path, without brackets
	To       []string  // the RCPT TO forward-paths, without brackets
	Data     []byte    // the message, dot-unstuffed, lines ending in CRLF
	Remote   string    // the client's address
	Received time.Time // from Options.Now
}

// SMTPServer is the stand-in for the Proxmox Mail Gateway: an SMTP server
// that accepts every well-formed message and keeps the last MaxSMTPKept in
// memory (see Messages). New("smtp", ...) returns one.
type SMTPServer struct {
	*connServer
	mu   sync.Mutex
	msgs []Message
	seq  int
}

func newSMTP(info Info, opts Options) *SMTPServer {
	s := &SMTPServer{connServer: newConnServer("smtp", info, opts)}
	s.handle = s.serveConn
	return s
}

// Messages returns a copy of the messages accepted so far, oldest first
// (at most MaxSMTPKept).
func (s *SMTPServer) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		m.To = slices.Clone(m.To)
		m.Data = slices.Clone(m.Data)
		out[i] = m
	}
	return out
}

func (s *SMTPServer) record(m Message) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if len(s.msgs) >= MaxSMTPKept {
		s.msgs = slices.Delete(s.msgs, 0, len(s.msgs)-MaxSMTPKept+1)
	}
	s.msgs = append(s.msgs, m)
	return fmt.Sprintf("OFFEDGE%06d", s.seq)
}

// smtpSession is the state of one SMTP conversation.
type smtpSession struct {
	helo   string
	inMail bool
	from   string
	rcpts  []string
}

func (t *smtpSession) reset() { t.inMail, t.from, t.rcpts = false, "", nil }

// parsePath parses "FROM:<a@b> PARAMS" after the given prefix, returning the
// address without brackets and the parameters.
func parsePath(arg, prefix string) (addr string, params []string, ok bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, false
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if !strings.HasPrefix(rest, "<") {
		return "", nil, false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", nil, false
	}
	return rest[1:end], strings.Fields(rest[end+1:]), true
}

func (s *SMTPServer) serveConn(ctx context.Context, c net.Conn) {
	br := bufio.NewReaderSize(c, 4096)
	bw := bufio.NewWriterSize(c, 4096)
	node := s.info.Node
	reply := func(lines ...string) {
		for _, l := range lines {
			bw.WriteString(l + "\r\n")
		}
	}
	// next flushes the replies when the client has nothing pipelined, then
	// reads one line.
	next := func() ([]byte, error) {
		if br.Buffered() == 0 {
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := bw.Flush(); err != nil {
				return nil, err
			}
		}
		c.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		return resyncLine(br, MaxSMTPLine)
	}
	defer func() {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		bw.Flush()
	}()
	reply(fmt.Sprintf("220 %s ESMTP offedge stand-in for %s", node, s.info.Service))
	var t smtpSession
	errs := 0
	bad := func(line string) bool {
		reply(line)
		errs++
		if errs >= maxSMTPErrors {
			reply("421 4.7.0 " + node + " Error: too many errors")
			return true
		}
		return false
	}
	for ctx.Err() == nil {
		line, err := next()
		if errors.Is(err, errLineTooLong) {
			if bad(fmt.Sprintf("500 5.5.2 Error: line too long (limit %d)", MaxSMTPLine)) {
				return
			}
			continue
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				reply("421 4.4.2 " + node + " Error: timeout exceeded")
			}
			s.logConnErr(c, err)
			return
		}
		verb, arg, _ := strings.Cut(string(line), " ")
		arg = strings.TrimSpace(arg)
		switch strings.ToUpper(verb) {
		case "HELO", "EHLO":
			if arg == "" {
				if bad("501 5.5.4 Syntax: " + strings.ToUpper(verb) + " hostname") {
					return
				}
				continue
			}
			t.reset()
			t.helo = arg
			if strings.EqualFold(verb, "HELO") {
				reply("250 " + node)
			} else {
				reply("250-"+node+" offedge stand-in for "+s.info.Service,
					"250-PIPELINING",
					"250-SIZE "+strconv.Itoa(MaxSMTPMessage),
					"250 8BITMIME")
			}
		case "MAIL":
			if t.helo == "" {
				if bad("503 5.5.1 Error: send HELO/EHLO first") {
					return
				}
				continue
			}
			if t.inMail {
				if bad("503 5.5.1 Error: nested MAIL command") {
					return
				}
				continue
			}
			addr, params, ok := parsePath(arg, "FROM:")
			if !ok {
				if bad("501 5.5.4 Syntax: MAIL FROM:<address>") {
					return
				}
				continue
			}
			tooBig := false
			for _, p := range params {
				if k, v, _ := strings.Cut(p, "="); strings.EqualFold(k, "SIZE") {
					if n, err := strconv.ParseInt(v, 10, 64); err != nil || n > MaxSMTPMessage {
						tooBig = true
					}
				}
			}
			if tooBig {
				reply("552 5.3.4 Message size exceeds fixed limit")
				continue
			}
			t.inMail, t.from = true, addr
			reply("250 2.1.0 Ok")
		case "RCPT":
			if !t.inMail {
				if bad("503 5.5.1 Error: need MAIL command") {
					return
				}
				continue
			}
			addr, _, ok := parsePath(arg, "TO:")
			if !ok || addr == "" {
				if bad("501 5.5.4 Syntax: RCPT TO:<address>") {
					return
				}
				continue
			}
			if len(t.rcpts) >= MaxSMTPRecipients {
				reply("452 4.5.3 Error: too many recipients")
				continue
			}
			t.rcpts = append(t.rcpts, addr)
			reply("250 2.1.5 Ok")
		case "DATA":
			if arg != "" {
				if bad("501 5.5.4 Syntax: DATA") {
					return
				}
				continue
			}
			if !t.inMail {
				if bad("503 5.5.1 Error: need MAIL command") {
					return
				}
				continue
			}
			if len(t.rcpts) == 0 {
				if bad("503 5.5.1 Error: need RCPT command") {
					return
				}
				continue
			}
			reply("354 End data with <CR><LF>.<CR><LF>")
			data, status, err := s.readData(next)
			if err != nil {
				s.logConnErr(c, err)
				return
			}
			if status != "" {
				reply(status)
			} else {
				id := s.record(Message{Helo: t.helo, From: t.from, To: t.rcpts, Data: data,
					Remote: c.RemoteAddr().String(), Received: s.opts.Now()})
				reply("250 2.0.0 Ok: queued as " + id)
			}
			t.reset()
		case "RSET":
			t.reset()
			reply("250 2.0.0 Ok")
		case "NOOP":
			reply("250 2.0.0 Ok")
		case "VRFY":
			reply("252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery")
		case "QUIT":
			reply("221 2.0.0 Bye")
			return
		default:
			if bad("502 5.5.2 Error: command not recognized") {
				return
			}
		}
	}
}

// readData reads the message text up to the lone dot, unstuffing dots. It
// returns a failure reply instead of the data when a line or the message is
// too long (having consumed the text anyway, so the session goes on).
func (s *SMTPServer) readData(next func() ([]byte, error)) ([]byte, string, error) {
	var data []byte
	status := ""
	for {
		line, err := next()
		if errors.Is(err, errLineTooLong) {
			if status == "" {
				status = fmt.Sprintf("500 5.5.2 Error: message line longer than %d bytes", MaxSMTPLine)
			}
			data = nil
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if len(line) == 1 && line[0] == '.' {
			return data, status, nil
		}
		if status != "" {
			continue
		}
		if len(line) > 0 && line[0] == '.' {
			line = line[1:]
		}
		if len(data)+len(line)+2 > MaxSMTPMessage {
			status, data = "552 5.3.4 Message size exceeds fixed limit", nil
			continue
		}
		data = append(append(data, line...), '\r', '\n')
	}
}
