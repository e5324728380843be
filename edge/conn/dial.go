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
