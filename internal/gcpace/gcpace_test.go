package gcpace

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{2 << 20, 16 << 20, 800},   // goal 2 + 16 MiB
		{3 << 20, 16 << 20, 534},   // rounded up: the goal is never under the floor
		{0, 16 << 20, 1600},        // before the first cycle: 1 MiB assumed
		{16 << 20, 16 << 20, 100},  // as GOGC=100
		{200 << 20, 16 << 20, 100}, // a big live heap: never below 100
	} {
		if got := Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
		if c.live >= minLive {
			if goal := c.live * uint64(100+Percent(c.live, c.floor)) / 100; goal < c.live+c.floor && goal < 2*c.live {
				t.Errorf("live %d: goal %d under live+floor", c.live, goal)
			}
		}
	}
}

// keep follows the live heap: a large live heap brings GOGC back down,
// a small one raises it, and small moves change nothing.
func TestKeepFollowsLiveHeap(t *testing.T) {
	var mu sync.Mutex
	var sets []int
	set := func(p int) int {
		mu.Lock()
		defer mu.Unlock()
		sets = append(sets, p)
		return 0
	}
	last := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		if len(sets) == 0 {
			return 0, 0
		}
		return sets[len(sets)-1], len(sets)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { keep(ctx, 10*time.Millisecond, 64<<20, set); close(done) }()
	defer func() { cancel(); <-done }()

	// A small live heap: GOGC well above 100.
	runtime.GC()
	waitFor(t, func() bool { p, _ := last(); return p > 400 }, "GOGC raised for a small live heap")

	// A live heap above the floor: GOGC back to 100.
	big := make([][]byte, 0, 128)
	for range 96 {
		big = append(big, make([]byte, 1<<20))
	}
	runtime.GC()
	waitFor(t, func() bool { p, _ := last(); return p == 100 }, "GOGC back to 100 for a 96 MiB live heap")
	_, n := last()
	time.Sleep(50 * time.Millisecond)
	if _, m := last(); m != n {
		t.Errorf("GOGC set %d more times with the live heap unchanged", m-n)
	}
	runtime.KeepAlive(big)
}

func waitFor(t *testing.T, ok func() bool, what string) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("not seen within 5 s: " + what)
}

// With GOGC in the environment Keep returns at once, touching nothing.
func TestKeepLeavesGOGCAlone(t *testing.T) {
	t.Setenv("GOGC", "100")
	done := make(chan struct{})
	go func() { Keep(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Keep ran with GOGC set")
	}
}
