package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/reach"
)

// dialService connects from a node to a service the way the inventory says
// it does: the first path offedge why would show (directly, through a
// tunnel entrance, or through a forward), dialed by dial (the loopback
// lab's map or a namespace). It fails when no path is open.
func dialService(ctx context.Context, m *inventory.Model, e *reach.Engine, from, service string,
	dial func(ctx context.Context, from, network string, target netip.AddrPort) (net.Conn, error)) (net.Conn, reach.Path, error) {
	n, s := m.Node(from), m.Service(service)
	if n == nil || s == nil {
		return nil, reach.Path{}, fmt.Errorf("unknown node %q or service %q", from, service)
	}
	paths, _ := e.ServicePaths(n, s)
	var errs []error
	for _, p := range paths {
		if !p.Open() {
			continue
		}
		h := p.Hops[0]
		network := h.Target.Network
		if h.Target.Loopback {
			network = plan.LoopbackNetwork
		}
		c, err := dial(ctx, from, network, h.Target.Addr)
		if err == nil {
			return c, p, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, reach.Path{}, fmt.Errorf("%s has no open path to %s", from, service)
	}
	return nil, reach.Path{}, errors.Join(errs...)
}

// siteAddr returns the socket (through addr) of a node's public HTTP
// listener on port, IPv4 first: the address a DNS name would point to.
func siteAddr(p *plan.Plan, node string, port int, addr func(plan.Listener) (netip.AddrPort, error)) (netip.AddrPort, error) {
	if p == nil {
		return netip.AddrPort{}, fmt.Errorf("unknown node %q", node)
	}
	for _, v4 := range []bool{true, false} {
		for _, li := range p.Listeners {
			if li.HTTP != nil && li.Public && int(li.Addr.Port()) == port && (!v4 || li.Addr.Addr().Is4()) {
				return addr(li)
			}
		}
	}
	return netip.AddrPort{}, fmt.Errorf("node %q has no public HTTP listener on port %d", node, port)
}
