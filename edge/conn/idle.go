package conn

import (
	"sync"
	"sync/atomic"
	"time"
)

// CounterIdle measures idleness by watching a byte counter.
func CounterIdle(moved *atomic.Uint64, now func() time.Time) func() time.Duration {
	last, since := moved.Load(), now()
	return func() time.Duration {
		if m := moved.Load(); m != last {
			last, since = m, now()
		}
		return now().Sub(since)
	}
}

// WatchIdle calls expire once idleFor reports at least idle. It checks every
// quarter of idle, so a connection is closed between idle and 1.25×idle
// after its last byte. The returned function stops the watch.
func WatchIdle(idle time.Duration, idleFor func() time.Duration, expire func()) (stop func()) {
	return watchIdle(idle, idleFor, expire, 0, nil)
}

// watchIdle is WatchIdle that also runs later once, after the given time,
// on the same timer (one more tick at that time). A watch stopped sooner
// never runs it.
func watchIdle(idle time.Duration, idleFor func() time.Duration, expire func(), after time.Duration, later func()) (stop func()) {
	var (
		mu            sync.Mutex
		stopped       bool
		t             *time.Timer
		elapsed, next time.Duration // since the start, by schedule; the pending tick's delay
	)
	step := max(idle/4, time.Millisecond)
	tick := func() time.Duration { // the delay from elapsed to the next tick
		n := (elapsed/step + 1) * step
		if later != nil && after > elapsed && after < n {
			n = after
		}
		return n - elapsed
	}
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		elapsed += next
		if later != nil && elapsed >= after {
			later()
			later = nil
		}
		if idleFor() >= idle {
			stopped = true
			expire()
			return
		}
		next = tick()
		t.Reset(next)
	}
	mu.Lock()
	next = tick()
	t = time.AfterFunc(next, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
