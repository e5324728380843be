package httpedge

import (
	"sync"
	"time"
)

// rateLog bounds a log record that a client can cause once per request (a
// refused path, a file refused): at most one a second, the next one saying
// how many were suppressed, so that a flood of bad requests cannot flood
// the log.
type rateLog struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether a record may be written now, and how many were
// suppressed since the last one.
func (l *rateLog) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.next, l.suppressed = now.Add(time.Second), 0
	return true, n
}
