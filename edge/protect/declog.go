package protect

import (
	"log/slog"
	"sync"
	"time"
)

// DecisionLog logs the protections' decisions: each decision once, with
// the rule that made it, and at most one line a second per rule, the next
// line saying how many were suppressed meanwhile, so that a flood of
// refused requests cannot flood the log.
type DecisionLog struct {
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	rules map[string]*logGate
}

type logGate struct {
	next       time.Time
	suppressed int
}

// maxLoggedRules bounds the gates kept (rule names come from the plan, but
// ban reasons name prefixes): beyond it, gates are reset.
const maxLoggedRules = 4096

// NewDecisionLog logs to log (nil: nowhere).
func NewDecisionLog(log *slog.Logger, now func() time.Time) *DecisionLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &DecisionLog{log: log, now: now, rules: map[string]*logGate{}}
}

// Log records that rule decided action for client; attrs add context
// (site, route, key).
func (d *DecisionLog) Log(rule, action, client string, attrs ...any) {
	now := d.now()
	d.mu.Lock()
	g, ok := d.rules[rule]
	if !ok {
		if len(d.rules) >= maxLoggedRules {
			clear(d.rules)
		}
		g = &logGate{}
		d.rules[rule] = g
	}
	if now.Before(g.next) {
		g.suppressed++
		d.mu.Unlock()
		return
	}
	n := g.suppressed
	g.next, g.suppressed = now.Add(time.Second), 0
	d.mu.Unlock()
	args := append([]any{"rule", rule, "action", action, "client", client, "suppressed_since_last", n}, attrs...)
	d.log.Warn("protection", args...)
}
