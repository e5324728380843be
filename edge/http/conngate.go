package httpedge

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/offedge/offedge/edge/acl"
)

// connGate bounds the connections of one Server (all its sockets): at most
// max open, taken before Accept so that excess connections wait in the
// kernel's backlog and hold no descriptor, and at most perClient per
// client address (none when perClient <= 0), beyond which a connection is
// reset at once.
type connGate struct {
	sem       chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	perClient int

	mu      sync.Mutex
	clients map[netip.Addr]int

	refused atomic.Uint64
}

func newConnGate(max, perClient int) *connGate {
	return &connGate{sem: make(chan struct{}, max), closed: make(chan struct{}), perClient: perClient, clients: map[netip.Addr]int{}}
}

// acquire takes a slot, waiting for one; false once the gate is closed.
func (g *connGate) acquire() bool {
	select {
	case g.sem <- struct{}{}:
		return true
	case <-g.closed:
		return false
	}
}

func (g *connGate) releaseSlot() { <-g.sem }

func (g *connGate) close() { g.closeOnce.Do(func() { close(g.closed) }) }

// admit counts c against its client; the returned release gives back the
// client's count and the slot. ok is false (the slot already given back)
// when the client is at its bound.
func (g *connGate) admit(c net.Conn) (release func(), ok bool) {
	ip := acl.PeerAddr(c).Addr()
	if !ip.IsValid() || g.perClient <= 0 {
		return g.releaseSlot, true
	}
	g.mu.Lock()
	if g.clients[ip] >= g.perClient {
		g.mu.Unlock()
		g.refused.Add(1)
		g.releaseSlot()
		return nil, false
	}
	g.clients[ip]++
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		if g.clients[ip]--; g.clients[ip] <= 0 {
			delete(g.clients, ip)
		}
		g.mu.Unlock()
		g.releaseSlot()
	}, true
}
