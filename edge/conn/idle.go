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
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	step := max(idle/4, time.Millisecond)
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if idleFor() >= idle {
			stopped = true
			expire()
			return
		}
		t.Reset(step)
	}
	mu.Lock()
	t = time.AfterFunc(step, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
