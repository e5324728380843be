package observe

import (
	"context"
	"fmt"
	"net"
)

// NetDialer dials from the machine it runs on, as the probe's vantage
// point: an internet-side probe resolves its hostname by DNS (so a DNS
// failure is reported as one); every other probe dials the inventory
// address. A tunnel probe opens the tunnel with OpenTunnel when set (the
// runtime of the entrance node does); without it, it connects to the
// entrance like a client, which the entrance's allow list may refuse.
type NetDialer struct {
	Dialer     net.Dialer
	OpenTunnel func(ctx context.Context, name string) (net.Conn, error)
}

// DialProbe implements Dialer.
func (d NetDialer) DialProbe(ctx context.Context, p *Probe) (net.Conn, error) {
	if p.Tunnel != "" && d.OpenTunnel != nil {
		return d.OpenTunnel(ctx, p.Tunnel)
	}
	if p.From == Internet && p.Host != "" {
		return d.Dialer.DialContext(ctx, "tcp", net.JoinHostPort(p.Host, fmt.Sprint(p.Addr.Port())))
	}
	if !p.Addr.IsValid() {
		return nil, fmt.Errorf("probe %s has no address to dial", p.Name)
	}
	return d.Dialer.DialContext(ctx, "tcp", p.Addr.String())
}
