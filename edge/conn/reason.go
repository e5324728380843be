package conn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
)

// Reason classifies a failed dial or handshake, so that logs and metrics
// can count failures by cause without reading error text.
type Reason uint8

// Reasons. The String forms are stable: metrics use them as label values.
const (
	ReasonOther       Reason = iota // none of the below
	ReasonRefused                   // dial: nothing listens there (connection refused)
	ReasonTimeout                   // dial or handshake: no answer in time
	ReasonUnreachable               // dial: no route to the host or network
	ReasonSource                    // dial: the source address cannot be used here (not assigned to this host)
	ReasonReset                     // dial or handshake: the peer reset or closed the connection
	ReasonWrongKey                  // handshake: the peer's key or certificate is not the expected one, or it refused ours
	ReasonPeerName                  // handshake: a valid certificate naming none of the allowed peers
	ReasonProtocol                  // handshake: not TLS 1.3, garbage, an unknown server name
	ReasonPorts                     // dial: no local port left for this destination (the ephemeral range is in use or in TIME_WAIT)
	numReasons
)

var reasonNames = [numReasons]string{"other", "refused", "timeout", "unreachable", "source", "reset", "wrong_key", "peer_name", "protocol", "ports"}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

// Reasons lists every reason, in order.
func Reasons() []Reason {
	out := make([]Reason, numReasons)
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}

// ReasonCounter counts failures by reason. The zero value is ready.
type ReasonCounter struct{ n [numReasons]atomic.Uint64 }

// Add counts one failure.
func (c *ReasonCounter) Add(r Reason) {
	if r >= numReasons {
		r = ReasonOther
	}
	c.n[r].Add(1)
}

// Get returns the count of one reason.
func (c *ReasonCounter) Get(r Reason) uint64 {
	if r >= numReasons {
		return 0
	}
	return c.n[r].Load()
}

// Total is the sum over every reason.
func (c *ReasonCounter) Total() uint64 {
	var t uint64
	for i := range c.n {
		t += c.n[i].Load()
	}
	return t
}

// Snapshot returns the non-zero counts by reason name.
func (c *ReasonCounter) Snapshot() map[string]uint64 {
	m := map[string]uint64{}
	for i := range c.n {
		if v := c.n[i].Load(); v > 0 {
			m[Reason(i).String()] = v
		}
	}
	return m
}

// DialError is a failed outgoing connection: where to, from which source
// (the zero Addr when the kernel chose), and why.
type DialError struct {
	Addr   string
	Source netip.Addr
	Reason Reason
	Err    error
}

func (e *DialError) Error() string {
	hint := ""
	switch e.Reason {
	case ReasonSource:
		hint = fmt.Sprintf(" (source %s is this node's address in the inventory, but it is not assigned to this host: add it to an interface, or correct the inventory)", e.Source)
	case ReasonRefused:
		hint = " (nothing listens there)"
	case ReasonPorts:
		hint = " (no local port is free for this destination: every port of net.ipv4.ip_local_port_range is connected to it or in TIME_WAIT)"
	}
	if e.Source.IsValid() {
		return fmt.Sprintf("dial %s from %s: %v%s", e.Addr, e.Source, e.Err, hint)
	}
	return fmt.Sprintf("dial %s: %v%s", e.Addr, e.Err, hint)
}

func (e *DialError) Unwrap() error { return e.Err }

// ReasonOf classifies err: the Reason of a *DialError or *HandshakeError
// it wraps, else one read from the system error it carries.
func ReasonOf(err error) Reason {
	var de *DialError
	if errors.As(err, &de) {
		return de.Reason
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.Reason
	}
	return classify(err)
}

func classify(err error) Reason {
	var ne net.Error
	switch {
	case err == nil:
		return ReasonOther
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	case errors.Is(err, syscall.EADDRNOTAVAIL) && failedIn(err, "connect"),
		errors.Is(err, syscall.EADDRINUSE) && failedIn(err, "bind"):
		// connect finds no ephemeral port free for the destination; bind
		// (a source bound with its port, where IP_BIND_ADDRESS_NO_PORT is
		// missing) none free on the source address.
		return ReasonPorts
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return ReasonSource
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ReasonUnreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ReasonReset
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	}
	return ReasonOther
}

// HandshakeError is a failed TLS handshake with its cause classified.
type HandshakeError struct {
	Reason Reason
	Err    error
}

func (e *HandshakeError) Error() string { return "TLS handshake: " + e.Err.Error() }
func (e *HandshakeError) Unwrap() error { return e.Err }

// failedIn reports whether err is the failure of the named system call.
func failedIn(err error, syscallName string) bool {
	var se *os.SyscallError
	return errors.As(err, &se) && se.Syscall == syscallName
}
