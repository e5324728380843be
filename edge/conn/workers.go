package conn

import (
	"sync"
	"sync/atomic"
	"time"
)

// Worker pool limits: a worker that ran no function for between
// workerIdle and twice that ends, and no more than maxIdleWorkers wait at
// once (a burst of connections leaves at most that many parked goroutines
// behind, each with the stack it grew).
const maxIdleWorkers = 256

// workerIdle is 10 s (a variable for tests).
var workerIdle atomic.Int64

// workers is the process's pool of goroutines for connection handlers and
// relay directions.
var workers struct {
	work chan func() // a nil function tells the worker that takes it to end
	idle atomic.Int32
	// low is the fewest idle workers since the reaper's last tick: that
	// many ran nothing for a whole period.
	low atomic.Int32

	mu      sync.Mutex
	n       int         // workers alive
	started int         // workers ever started (for tests)
	reaper  *time.Timer // runs reap every workerIdle while workers live
	armed   bool
}

func init() {
	workers.work = make(chan func())
	workerIdle.Store(int64(10 * time.Second))
}

// Go runs f on a goroutine of a pool shared by every server of the
// process: an idle worker if one waits, a new one otherwise. A goroutine
// starts with a small stack, and a connection's handler (a dial, a TLS
// handshake, a splice) grows it several times before the first byte
// moves: copying stacks was a third of the instructions a forwarded
// connection cost (callgrind, bench/tunnel.sh's connection loop). A
// worker keeps its grown stack for the next connection.
func Go(f func()) {
	select {
	case workers.work <- f:
	default:
		workers.mu.Lock()
		workers.n++
		workers.started++
		if !workers.armed {
			workers.armed = true
			if workers.reaper == nil {
				workers.reaper = time.AfterFunc(time.Duration(workerIdle.Load()), reap)
			} else {
				workers.reaper.Reset(time.Duration(workerIdle.Load()))
			}
		}
		workers.mu.Unlock()
		go worker(f)
	}
}

// worker runs f, then the pool's functions until it takes a nil one (the
// reaper's) or too many others are idle. It waits on the work channel
// alone: a timer of its own in that select was armed and disarmed each
// time the worker parked (two per forwarded connection, its handler and
// a relay direction).
func worker(f func()) {
	defer func() {
		workers.mu.Lock()
		workers.n--
		workers.mu.Unlock()
	}()
	for f != nil {
		f()
		if workers.idle.Add(1) > maxIdleWorkers {
			workers.idle.Add(-1)
			return
		}
		f = <-workers.work
		n := workers.idle.Add(-1)
		for l := workers.low.Load(); n < l && !workers.low.CompareAndSwap(l, n); l = workers.low.Load() {
		}
	}
}

// reap ends as many workers as stayed idle through the period since its
// last run, and runs again after another period while any worker lives.
func reap() {
	for n := workers.low.Swap(workers.idle.Load()); n > 0; n-- {
		select {
		case workers.work <- nil:
		default:
			n = 0
		}
	}
	workers.mu.Lock()
	defer workers.mu.Unlock()
	if workers.n == 0 {
		workers.armed = false
		return
	}
	workers.reaper.Reset(time.Duration(workerIdle.Load()))
}

// setWorkerIdle changes the period (for tests), from now on.
func setWorkerIdle(d time.Duration) {
	workerIdle.Store(int64(d))
	workers.mu.Lock()
	defer workers.mu.Unlock()
	if workers.armed {
		workers.reaper.Reset(d)
	}
}
