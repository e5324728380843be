package observe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// Failure reasons: a bounded set, used as a metric label.
const (
	ReasonDNS      = "dns"      // the hostname did not resolve
	ReasonConnect  = "connect"  // the TCP connection was refused or unroutable
	ReasonDenied   = "denied"   // connected, then closed before any answer (an access list)
	ReasonTLS      = "tls"      // handshake or certificate verification failed
	ReasonTimeout  = "timeout"  // no answer within the probe's timeout
	ReasonStatus   = "status"   // HTTP answered with an unexpected status
	ReasonProtocol = "protocol" // the answer is not the protocol expected
)

// Reasons lists every failure reason, in documentation order.
var Reasons = []string{ReasonDNS, ReasonConnect, ReasonDenied, ReasonTLS, ReasonTimeout, ReasonStatus, ReasonProtocol}

// Dialer connects a probe to its target from its vantage point. The
// runtime dials from the node (and opens tunnels as the entrance does);
// the lab dials from the node's loopback addresses; `offedge probe` dials
// from the machine it runs on.
type Dialer interface {
	DialProbe(ctx context.Context, p *Probe) (net.Conn, error)
}

// DialerFunc adapts a function to Dialer.
type DialerFunc func(ctx context.Context, p *Probe) (net.Conn, error)

// DialProbe calls f.
func (f DialerFunc) DialProbe(ctx context.Context, p *Probe) (net.Conn, error) { return f(ctx, p) }

// ReasonError lets a Dialer say why it failed when the error alone does not
// (a tunnel whose exit refused the handshake is a tls failure).
type ReasonError struct {
	Reason string
	Err    error
}

func (e *ReasonError) Error() string { return e.Err.Error() }
func (e *ReasonError) Unwrap() error { return e.Err }

// Result is the outcome of one run of a probe.
type Result struct {
	Probe   Probe     `json:"probe"`
	Success bool      `json:"success"`
	Reason  string    `json:"reason,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	At      time.Time `json:"at"`
	// Duration is how long the whole probe took, connection included.
	Duration time.Duration `json:"duration"`
	// Status is the HTTP status of an http(s) probe that got an answer.
	Status int `json:"status,omitempty"`
	// NotAfter is the earliest expiry of the certificates a TLS peer sent.
	NotAfter time.Time `json:"not_after,omitzero"`
	// Skipped says why the probe did not run (its vantage node is down);
	// such a result is neither a success nor a failure.
	Skipped string `json:"skipped,omitempty"`
}

// RunOptions tune one probe run.
type RunOptions struct {
	// Timeout bounds the whole probe (default 5s).
	Timeout time.Duration
	// RootCAs verifies TLS targets; nil is the system pool.
	RootCAs *x509.CertPool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultTimeout bounds a probe when RunOptions leave it unset.
const DefaultTimeout = 5 * time.Second

// Run runs p once through d and says whether the target answered as
// expected, and if not, why.
func Run(ctx context.Context, p Probe, d Dialer, opts RunOptions) Result {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	start := opts.Now()
	r := Result{Probe: p, At: start}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	err := run(ctx, &p, d, opts, &r)
	r.Duration = opts.Now().Sub(start)
	if err != nil {
		r.Reason, r.Detail = classify(err), err.Error()
		if r.Reason == ReasonDenied && p.Tunnel == "" && (strings.HasPrefix(p.Via, "tunnel ") || strings.HasPrefix(p.Via, "forward ")) {
			// A tunnel entrance or a forward accepts, then closes when it
			// cannot connect onwards: on a path the inventory admits, that
			// is far likelier than its access list refusing us.
			r.Reason = ReasonConnect
			r.Detail = fmt.Sprintf("%s closed the connection before any answer: it could not connect onwards (or its access list refused us): %v", p.Via, err)
		}
		return r
	}
	r.Success = true
	return r
}

func run(ctx context.Context, p *Probe, d Dialer, opts RunOptions, r *Result) error {
	raw, err := d.DialProbe(ctx, p)
	if err != nil {
		return &dialError{err}
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	c := &countingConn{Conn: raw}
	var conn net.Conn = c
	if p.Protocol == ProtoHTTPS {
		name := p.ServerName
		if name == "" {
			name = p.Host
		}
		tc := tls.Client(c, &tls.Config{ServerName: name, RootCAs: opts.RootCAs, NextProtos: []string{"http/1.1"}})
		if err := tc.HandshakeContext(ctx); err != nil {
			if c.read == 0 && closedEarly(err) {
				return deniedErr(err)
			}
			return &ReasonError{ReasonTLS, fmt.Errorf("TLS handshake: %w", err)}
		}
		for _, cert := range tc.ConnectionState().PeerCertificates {
			if r.NotAfter.IsZero() || cert.NotAfter.Before(r.NotAfter) {
				r.NotAfter = cert.NotAfter
			}
		}
		conn = tc
	}
	switch p.Protocol {
	case ProtoHTTP, ProtoHTTPS:
		return helloHTTP(conn, c, p, r)
	case ProtoRedis:
		return helloRedis(conn, c)
	case ProtoMongoDB:
		return helloMongo(conn, c)
	case ProtoPostgreSQL:
		return helloPostgres(conn, c)
	case ProtoSMTP:
		return helloSMTP(conn, c)
	}
	return helloTCP(conn, c)
}

// countingConn counts the bytes read, to tell an access list closing the
// connection (nothing read) from a broken answer.
type countingConn struct {
	net.Conn
	read int
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read += n
	return n, err
}

type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func closedEarly(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func deniedErr(err error) error {
	return &ReasonError{ReasonDenied, fmt.Errorf("connected, then closed before any answer (an access list refusing this source?): %w", err)}
}

// answerErr classifies an error while reading the answer.
func answerErr(c *countingConn, what string, err error) error {
	if c.read == 0 && closedEarly(err) {
		return deniedErr(err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// classify maps an error to one of Reasons.
func classify(err error) string {
	var re *ReasonError
	if errors.As(err, &re) {
		return re.Reason
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && !dns.IsTimeout {
		return ReasonDNS
	}
	if isTimeout(err) {
		return ReasonTimeout
	}
	var de *dialError
	if errors.As(err, &de) {
		if isTLSFailure(err) {
			return ReasonTLS
		}
		return ReasonConnect
	}
	return ReasonProtocol
}

func helloHTTP(conn net.Conn, c *countingConn, p *Probe, r *Result) error {
	path := p.Path
	if path == "" {
		path = "/"
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: offedge-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n", path, p.Host); err != nil {
		return answerErr(c, "sending the request", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return answerErr(c, "reading the response", err)
	}
	resp.Body.Close()
	r.Status = resp.StatusCode
	switch {
	case p.Status != 0 && resp.StatusCode != p.Status:
		return &ReasonError{ReasonStatus, fmt.Errorf("status %d, want %d", resp.StatusCode, p.Status)}
	case p.Status == 0 && p.MaxStatus != 0 && resp.StatusCode >= p.MaxStatus:
		return &ReasonError{ReasonStatus, fmt.Errorf("status %d, want below %d", resp.StatusCode, p.MaxStatus)}
	}
	return nil
}

func readLine(conn net.Conn, c *countingConn, what string) (string, error) {
	line, err := bufio.NewReaderSize(conn, 512).ReadString('\n')
	if err != nil {
		return "", answerErr(c, what, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// helloRedis sends PING. An error reply asking for authentication is a
// Redis answering: the service is up.
func helloRedis(conn net.Conn, c *countingConn) error {
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return answerErr(c, "sending PING", err)
	}
	line, err := readLine(conn, c, "reading the PING reply")
	if err != nil {
		return err
	}
	if line == "+PONG" || strings.HasPrefix(line, "-NOAUTH") {
		return nil
	}
	return fmt.Errorf("PING answered %q, want +PONG", trim(line))
}

// helloSMTP reads the 220 greeting and says QUIT.
func helloSMTP(conn net.Conn, c *countingConn) error {
	line, err := readLine(conn, c, "reading the SMTP greeting")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("SMTP greeting %q, want 220", trim(line))
	}
	io.WriteString(conn, "QUIT\r\n")
	return nil
}

// helloPostgres sends a startup message; an authentication request or an
// error message (no such role, no pg_hba entry) are both PostgreSQL
// answering.
func helloPostgres(conn net.Conn, c *countingConn) error {
	var body bytes.Buffer
	binary.Write(&body, binary.BigEndian, int32(196608)) // protocol 3.0
	body.WriteString("user\x00offedge-probe\x00database\x00postgres\x00application_name\x00offedge-probe\x00\x00")
	msg := binary.BigEndian.AppendUint32(nil, uint32(body.Len()+4))
	msg = append(msg, body.Bytes()...)
	if _, err := conn.Write(msg); err != nil {
		return answerErr(c, "sending the startup message", err)
	}
	var head [5]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return answerErr(c, "reading the startup reply", err)
	}
	if head[0] != 'R' && head[0] != 'E' {
		return fmt.Errorf("startup answered message type %q, want R or E", head[0])
	}
	conn.Write([]byte{'X', 0, 0, 0, 4})
	return nil
}

// tcpSettle is how long a TCP probe waits after connecting to see whether
// the peer closes at once (an access list) rather than waiting for a client
// that speaks first.
const tcpSettle = 300 * time.Millisecond

// helloTCP connects and waits briefly: a peer that closes before sending
// anything refused the connection; one that waits or greets is up.
func helloTCP(conn net.Conn, c *countingConn) error {
	conn.SetReadDeadline(time.Now().Add(tcpSettle))
	var b [1]byte
	_, err := conn.Read(b[:])
	if err == nil || isTimeout(err) {
		return nil
	}
	return answerErr(c, "after connecting", err)
}

func trim(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
