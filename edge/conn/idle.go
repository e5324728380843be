package conn

import (
	"sync"
	"time"
)

// Timed checks of connections (idle timeouts, the forward's late
// keepalive) run on one timer per duration, not one per connection, as
// HAProxy and nginx keep their own timer trees: a time.Timer per relay
// cost its allocation and two operations on the runtime's timer heap per
// connection. Every watch of one duration is due that long after it was
// queued, so a queue of them is in due order (first in, first due) and its
// timer waits only for its head: queuing and stopping a watch are a few
// pointer moves under the queue's lock.

// watcher is what a watch checks when it is due; it reports whether to
// check again one period later.
type watcher interface{ due(w *watch) (again bool) }

// watch is one timed check, usually a field of what it watches.
type watch struct {
	q          *watchQueue
	prev, next *watch
	at         time.Duration // due, since queueEpoch
	queued     bool
	w          watcher

	mu      sync.Mutex // held while due runs, so that stop waits for it
	stopped bool
}

// watchQueue holds the watches of one duration.
type watchQueue struct {
	d          time.Duration
	mu         sync.Mutex
	head, tail *watch
	t          *time.Timer
	armed      bool // t is set for the head, or the queue is being run
}

var (
	queueEpoch = time.Now()
	queuesMu   sync.Mutex
	queues     = map[time.Duration]*watchQueue{}
)

// queueOf returns the queue of duration d (at least a millisecond). There
// is one per duration a configuration uses, kept for the process's life.
func queueOf(d time.Duration) *watchQueue {
	d = max(d, time.Millisecond)
	queuesMu.Lock()
	defer queuesMu.Unlock()
	q := queues[d]
	if q == nil {
		q = &watchQueue{d: d}
		q.t = time.AfterFunc(time.Hour, q.run)
		q.t.Stop()
		queues[d] = q
	}
	return q
}

// start queues w on the queue of d, to run w.w's due after d.
func (w *watch) start(d time.Duration, wr watcher) {
	w.w, w.q = wr, queueOf(d)
	w.q.push(w)
}

// stop ends the watch: once it returns, due does not run (again).
func (w *watch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.q.remove(w)
	w.mu.Unlock()
}

func (q *watchQueue) push(w *watch) {
	q.mu.Lock()
	w.at = time.Since(queueEpoch) + q.d
	w.prev, w.next, w.queued = q.tail, nil, true
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	if !q.armed {
		q.armed = true
		q.t.Reset(q.d)
	}
	q.mu.Unlock()
}

func (q *watchQueue) remove(w *watch) {
	q.mu.Lock()
	if w.queued {
		q.unlinkLocked(w)
	}
	q.mu.Unlock()
}

func (q *watchQueue) unlinkLocked(w *watch) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
}

// run checks the watches that are due, queues again those that ask for
// it, and sets the timer for the new head.
func (q *watchQueue) run() {
	q.mu.Lock()
	now := time.Since(queueEpoch)
	var due []*watch
	for q.head != nil && q.head.at <= now {
		w := q.head
		q.unlinkLocked(w)
		due = append(due, w)
	}
	q.mu.Unlock()
	for _, w := range due {
		w.mu.Lock()
		if !w.stopped {
			if w.w.due(w) {
				q.push(w)
			} else {
				w.stopped = true
			}
		}
		w.mu.Unlock()
	}
	q.mu.Lock()
	if q.head != nil {
		q.t.Reset(max(q.head.at-time.Since(queueEpoch), 0))
	} else {
		q.armed = false
	}
	q.mu.Unlock()
}

// idleStep is how often a watch of idle checks.
func idleStep(idle time.Duration) time.Duration { return max(idle/4, time.Millisecond) }
