package h1

import (
	"context"
	"sync"
	"time"
)

// reqCtx is a request's context: its connection's context, cancelled
// when the client goes away or the handler returns. It is made per request
// (one allocation, where context.WithCancel costs three and AfterFunc five
// more), makes its Done channel only when asked for one, and carries one
// cancellation hook run without a goroutine ([reqCtx.OnCancel]: the
// upstream client's abort of its exchange). Contexts derived from it do
// not need a goroutine either: it has the AfterFunc method that
// context's propagation looks for.
type reqCtx struct {
	parent context.Context // never cancelled (checked by newReqCtx's caller)
	mu     sync.Mutex
	done   chan struct{} // made by Done; closed by cancel
	err    error
	hook   func() // OnCancel's
	after  []afterFunc
	nextID int
}

// canceler cancels a request's context: a reqCtx, or a context.WithCancel
// one when the connection's context can be cancelled itself.
type canceler interface{ cancel() }

type cancelFunc context.CancelFunc

func (f cancelFunc) cancel() { f() }

type afterFunc struct {
	id int
	f  func()
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *reqCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }
func (c *reqCtx) Value(key any) any           { return c.parent.Value(key) }

func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			c.done = closedChan
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

func (c *reqCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *reqCtx) String() string { return "h1.requestContext" }

// cancel cancels c once: Done closes, the hook runs in the caller's
// goroutine, AfterFunc functions in their own.
func (c *reqCtx) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	hook, after := c.hook, c.after
	c.hook, c.after = nil, nil
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	for _, a := range after {
		go a.f()
	}
}

// OnCancel sets f to run (in the cancelling goroutine, so it must be
// quick) when c is cancelled, at once when it already is. It reports false,
// and sets nothing, when a hook is already set: the caller then uses
// context.AfterFunc.
func (c *reqCtx) OnCancel(f func()) bool {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		f()
		return true
	}
	if c.hook != nil {
		c.mu.Unlock()
		return false
	}
	c.hook = f
	c.mu.Unlock()
	return true
}

// StopOnCancel removes the hook OnCancel set; false when it has run
// (c was cancelled), as the stop function of context.AfterFunc.
func (c *reqCtx) StopOnCancel() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.hook = nil
	return true
}

// AfterFunc is context.AfterFunc's contract for c (context's cancellation
// propagation uses it for contexts derived from c, instead of a goroutine
// watching Done).
func (c *reqCtx) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.nextID++
	id := c.nextID
	c.after = append(c.after, afterFunc{id, f})
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, a := range c.after {
			if a.id == id {
				c.after = append(c.after[:i], c.after[i+1:]...)
				return true
			}
		}
		return false
	}
}
