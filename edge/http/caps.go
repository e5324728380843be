package httpedge

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// Connection caps (nginx's server max_conns with the upstream queue):
// a server with MaxConns never has more requests in flight than that, each
// holding one connection from the moment it is sent until its response
// body is closed (or its WebSocket tunnel ends). When every server that
// could take a request is at its cap, the request waits in the pool's
// queue, first come first served, at most Upstream.Queue of them and each
// at most QueueTimeout; beyond that the client gets 503 (see proxy).
//
// A slot is taken by acquire or tryAcquire and given back by release,
// which hands it straight to the oldest waiter that may use that server.

var (
	errQueueFull    = errors.New("every server is at max_conns and the queue is full")
	errQueueTimeout = errors.New("every server stayed at max_conns for the whole queue timeout")
)

// waiter is one request in a pool's queue. release hands it a slot
// directly (got), so that a request arriving later cannot take the slot
// first: the queue is served in order.
type waiter struct {
	tried uint64        // servers the request must not be sent to again
	got   chan *backend // the server whose slot it was given; buffered (1)
}

// acquire picks a server for a request and takes a slot on it, waiting in
// the queue when every candidate is at its cap. It returns errNoServer
// when no server is left to try.
// The listener's counters (stats) count refusals: pools are shared.
func (p *pool) acquire(ctx context.Context, tried uint64, stats *counters, now time.Time) (*backend, error) {
	p.mu.Lock()
	b, full := p.pickLocked(tried, now)
	if b != nil {
		b.active++
		p.mu.Unlock()
		return b, nil
	}
	if !full {
		p.mu.Unlock()
		return nil, errNoServer
	}
	if len(p.queue) >= p.cfg.Queue {
		p.mu.Unlock()
		if stats != nil {
			stats.queueRejected.Add(1)
		}
		return nil, errQueueFull
	}
	w := &waiter{tried: tried, got: make(chan *backend, 1)}
	p.queue = append(p.queue, w)
	p.mu.Unlock()
	timer := time.NewTimer(p.cfg.QueueTimeout)
	defer timer.Stop()
	select {
	case b := <-w.got:
		return b, nil
	case <-timer.C:
		p.leave(w)
		if stats != nil {
			stats.queueTimeouts.Add(1)
		}
		return nil, errQueueTimeout
	case <-ctx.Done():
		p.leave(w)
		return nil, ctx.Err()
	}
}

// leave takes w out of the queue; a slot handed to it meanwhile is given
// back (to the next waiter).
func (p *pool) leave(w *waiter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.queue {
		if x == w {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			return
		}
	}
	select {
	case b := <-w.got:
		p.releaseLocked(b)
	default:
	}
}

// tryAcquire takes a slot on b if it has one free, without queueing (health
// probes: a server at its cap is busy, not down).
func (p *pool) tryAcquire(b *backend) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.maxConns > 0 && b.active >= b.maxConns {
		return false
	}
	b.active++
	return true
}

// release gives b's slot back: to the oldest waiter that may use b, else
// to the pool.
func (p *pool) release(b *backend) {
	p.mu.Lock()
	p.releaseLocked(b)
	p.mu.Unlock()
}

func (p *pool) releaseLocked(b *backend) {
	i := p.index(b)
	for j, w := range p.queue {
		if i < 64 && w.tried&(1<<i) != 0 {
			continue
		}
		p.queue = append(p.queue[:j], p.queue[j+1:]...)
		w.got <- b // the slot changes hands: active stays
		return
	}
	b.active--
}

// releaseOnClose gives b's slot back when the response (or the WebSocket
// tunnel it became) is closed.
func (p *pool) releaseOnClose(b *backend, resp *http.Response) {
	switch body := resp.Body.(type) {
	case *upBody: // closes once: no closure per request
		body.pool, body.backend = p, b
	case *upgradedConn:
		var once sync.Once
		body.onClose = func() { once.Do(func() { p.release(b) }) }
	default:
		p.release(b)
	}
}
