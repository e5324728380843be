package conn

import (
	"sync/atomic"
	"time"
)

// Worker pool limits: a worker waits this long for its next function, and
// no more than maxIdleWorkers wait at once (a burst of connections leaves
// at most that many parked goroutines behind, each with the stack it grew).
const (
	workerIdle     = 10 * time.Second
	maxIdleWorkers = 256
)

// workers is the process's pool of goroutines for connection handlers and
// relay directions.
var workers struct {
	work chan func()
	idle atomic.Int32
}

func init() { workers.work = make(chan func()) }

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

func worker(f func()) {
	f()
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		if workers.idle.Add(1) > maxIdleWorkers {
			workers.idle.Add(-1)
			return
		}
		select {
		case f = <-workers.work:
			workers.idle.Add(-1)
			f()
			t.Reset(workerIdle)
		case <-t.C:
			workers.idle.Add(-1)
			return
		}
	}
}
