package conn

import (
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
	work chan func()
	idle atomic.Int32
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
		go worker(f)
	}
}

// worker runs f, then the pool's functions until it has been idle for a
// whole period of its timer. The timer is not reset per function (two
// resets per forwarded connection, its handler and a relay direction):
// when it fires, a worker that ran something since the last tick waits
// another period.
func worker(f func()) {
	f()
	idle := time.Duration(workerIdle.Load())
	t := time.NewTimer(idle)
	defer t.Stop()
	busy := false
	for {
		if workers.idle.Add(1) > maxIdleWorkers {
			workers.idle.Add(-1)
			return
		}
		select {
		case f = <-workers.work:
			workers.idle.Add(-1)
			f()
			busy = true
		case <-t.C:
			workers.idle.Add(-1)
			if !busy {
				return
			}
			busy = false
			t.Reset(idle)
		}
	}
}
