package conn

import (
	"sync"
	"time"
)

// LogLimiter lets at most one line per interval through for noisy events
// (handshake failures from scanners), counting the ones it suppresses. The
// zero value allows one line per second.
type LogLimiter struct {
	// Every is the minimum interval between two lines; zero means 1s.
	Every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether a line may be logged at now, and how many lines were
// suppressed since the last one allowed.
func (l *LogLimiter) Allow(now time.Time) (bool, int) {
	every := l.Every
	if every <= 0 {
		every = time.Second
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.suppressed = 0
	l.last = now
	return true, n
}
