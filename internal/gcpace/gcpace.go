// Package gcpace paces Go's garbage collector for a long-running edge
// process. With GOGC=100 the collector starts a cycle each time the heap
// doubles; an edge's live heap is a few MiB, so under load a cycle starts
// every thousand or so requests, and each cycle's mark assists land on
// whichever requests allocate while it runs. Keep lets the heap grow by
// at least a floor (16 MiB) past what is live before a cycle: the cycles
// are fewer by the ratio of the floor to the live heap, and the process
// holds at most the floor more memory than with GOGC=100. A live heap
// larger than the floor is collected as GOGC=100 collects it.
package gcpace

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Floor is the heap growth Keep allows before a collection.
const Floor = 16 << 20

// interval is how often Keep reads the live heap.
const interval = time.Second

// minLive is the live heap Percent assumes when less is measured (before
// the first cycle the runtime reports none).
const minLive = 1 << 20

// Percent is the GOGC value whose heap goal is at least floor bytes above
// a live heap of live bytes, never less than 100.
func Percent(live, floor uint64) int {
	live = max(live, minLive)
	return max(100, int((floor*100+live-1)/live))
}

// Keep paces the collector until ctx ends: every second it sets GOGC to
// Percent of the live heap (only when that moves it by more than an
// eighth). It does nothing when the GOGC environment variable is set: the
// operator's choice stands. GOMEMLIMIT, when set, still bounds the heap.
func Keep(ctx context.Context) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	keep(ctx, interval, Floor, debug.SetGCPercent)
}

func keep(ctx context.Context, every time.Duration, floor uint64, set func(int) int) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := 100
	apply := func() {
		metrics.Read(sample)
		var live uint64
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = sample[0].Value.Uint64()
		}
		p := Percent(live, floor)
		if d := p - current; d > current/8 || -d > current/8 {
			set(p)
			current = p
		}
	}
	apply()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			apply()
		}
	}
}
