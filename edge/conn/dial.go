package conn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// Dialer opens outgoing TCP connections.
type Dialer struct {
	// Source is the address to connect from, as the plan shows it; the zero
	// Addr lets the kernel choose.
	Source netip.Addr
	// KeepAlive is the TCP keepalive idle time and interval (3 probes); zero
	// or negative leaves keepalive off.
	KeepAlive time.Duration
	// Dial, when set, opens the connection instead (the runtime's, which
	// maps addresses and binds sources); KeepAlive is then set on the result.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialContext connects to addr (host:port). Its errors are *DialError.
func (d Dialer) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	if d.Dial != nil {
		c, err := d.Dial(ctx, "tcp", addr)
		if err != nil {
			return nil, asDialError(err, addr, d.Source)
		}
		SetKeepAlive(c, d.KeepAlive)
		return c, nil
	}
	nd := net.Dialer{KeepAliveConfig: keepAliveConfig(d.KeepAlive)}
	if d.KeepAlive <= 0 {
		nd.KeepAlive = -1
	}
	if d.Source.IsValid() {
		nd.LocalAddr = &net.TCPAddr{IP: d.Source.AsSlice(), Zone: d.Source.Zone()}
		nd.Control = bindNoPort
	}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, asDialError(err, addr, d.Source)
	}
	return c, nil
}

func asDialError(err error, addr string, src netip.Addr) error {
	var de *DialError
	if errors.As(err, &de) {
		return err
	}
	return &DialError{Addr: addr, Source: src, Reason: classify(err), Err: err}
}

func keepAliveConfig(period time.Duration) net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: period > 0, Idle: period, Interval: period, Count: 3}
}

// SetKeepAlive enables TCP keepalive on c (idle and interval period, 3
// probes) when it is a TCP connection and period is positive.
func SetKeepAlive(c net.Conn, period time.Duration) {
	tc, ok := c.(*net.TCPConn)
	if !ok || period <= 0 {
		return
	}
	tc.SetKeepAliveConfig(keepAliveConfig(period))
}

// WithDialTimeout returns the context of a dial to target that
// must finish within timeout and stop when parent is cancelled (a
// server's Shutdown). context.WithTimeout costs a timer, a context with
// its own done channel and a child registration in parent, about 5,000
// instructions per forwarded connection (8 % of them, callgrind). None of
// it is needed: net's connect arms the socket's write deadline from
// ctx.Deadline() (the poller's timer, there anyway) and watches
// ctx.Done() for cancellation, so this context carries the deadline and
// parent's Done. Its Err stays nil at the deadline (Done is not closed
// then); the dial fails with the poller's timeout error, ReasonTimeout.
// Only for an IP address: for a target that needs a name lookup (which
// would not stop at the deadline), or a parent with an earlier deadline or
// that cannot be cancelled, it falls back to context.WithTimeout.
func WithDialTimeout(parent context.Context, target string, timeout time.Duration) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(timeout)
	if _, err := netip.ParseAddrPort(target); err != nil {
		return context.WithTimeout(parent, timeout)
	}
	if d, ok := parent.Deadline(); ok && d.Before(deadline) || parent.Done() == nil {
		return context.WithTimeout(parent, timeout)
	}
	return &dialCtx{Context: parent, deadline: deadline}, func() {}
}

type dialCtx struct {
	context.Context
	deadline time.Time
}

func (c *dialCtx) Deadline() (time.Time, bool) { return c.deadline, true }
