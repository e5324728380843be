// Command soak runs the whole Open Food Facts lab under mixed load while
// servers are taken down and brought back in turn, and reports what was
// sent, what failed, whether each failure is one `offedge impact`
// predicts, and memory at the start and the end. It is a bench tool, not
// a test: `go run ./bench/soak -duration 10m` (bench/soak.sh).
//
// The load is every probe of the inventory (HTTP and HTTPS sites through
// the proxies, upstream members, tunnels, forwards, services: HTTP,
// Redis, MongoDB, PostgreSQL and SMTP hellos) from every vantage point,
// run by -workers goroutines back to back. Every -interval the node taken
// down last comes back and the next one goes down. A failed probe is
// "predicted" when topology.Impact of the node down lists its client and
// target, "settling" when it ran within -settle of a change, and
// "unexpected" otherwise; the run fails when any is unexpected.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/lab"
	"github.com/offedge/offedge/observe"
	"github.com/offedge/offedge/topology"
)

func main() {
	duration := flag.Duration("duration", 10*time.Minute, "how long the soak runs")
	interval := flag.Duration("interval", 20*time.Second, "time between two node changes")
	settle := flag.Duration("settle", 5*time.Second, "failures this soon after a change are counted as settling")
	workers := flag.Int("workers", 4, "concurrent load loops")
	nodes := flag.String("nodes", "ovh1,off1,ovh3,off2,ovh2", "servers taken down in turn")
	instance := flag.Int("instance", 3, "lab instance (disjoint loopback ranges)")
	flag.Parse()
	if err := run(*duration, *interval, *settle, *workers, strings.Split(*nodes, ","), *instance); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// phase is what is down, and since when.
type phase struct {
	node      string
	since     time.Time
	predicted map[string]bool // client + " " + target
}

type tally struct {
	sent, ok, predicted, settling, unexpected atomic.Uint64
	mu                                        sync.Mutex
	examples                                  map[string]int // unexpected failures by phase and probe
}

func run(duration, interval, settle time.Duration, workers int, cycle []string, instance int) error {
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, m, lab.Options{Logger: slog.New(slog.DiscardHandler), Instance: instance})
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.WaitReady(ctx); err != nil {
		return err
	}
	runtime.GC()
	startRSS, startHeap := memory()
	fmt.Printf("lab up: %d nodes; memory at start: RSS %d MiB, heap %d MiB\n", len(m.Nodes), startRSS>>20, startHeap>>20)

	var cur atomic.Pointer[phase]
	cur.Store(&phase{since: time.Now(), predicted: map[string]bool{}})
	var t tally
	t.examples = map[string]int{}
	end := time.Now().Add(duration)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				ph := cur.Load()
				res, err := l.RunProbes(ctx, "")
				if err != nil {
					return
				}
				after := cur.Load()
				for _, r := range res {
					if r.Skipped != "" {
						continue
					}
					t.sent.Add(1)
					switch {
					case r.Success:
						t.ok.Add(1)
					case ph != after || time.Since(after.since) < settle:
						t.settling.Add(1)
					case predictedLoss(ph, r.Probe):
						t.predicted.Add(1)
					default:
						t.unexpected.Add(1)
						t.mu.Lock()
						t.examples[fmt.Sprintf("down=%s %s (%s)", orNone(ph.node), r.Probe.Name, r.Reason)]++
						t.mu.Unlock()
					}
				}
			}
		}()
	}
	changes := 0
	down := ""
	for i := 0; time.Now().Add(interval).Before(end) || i == 0; i++ {
		select {
		case <-time.After(interval):
		case <-ctx.Done():
		}
		if !time.Now().Before(end) {
			break
		}
		if down != "" {
			if err := l.Up(ctx, down); err != nil {
				return fmt.Errorf("bringing %s up: %w", down, err)
			}
			cur.Store(&phase{since: time.Now(), predicted: map[string]bool{}})
			changes++
			down = ""
			continue
		}
		next := cycle[(changes/2)%len(cycle)]
		rep, err := topology.Impact(m, next)
		if err != nil {
			return err
		}
		pred := map[string]bool{}
		for _, u := range rep.Unreachable {
			pred[u.Client+" "+u.Target] = true
		}
		for _, n := range rep.LostTunnels {
			pred["tunnel "+n] = true
		}
		for _, n := range rep.LostForwards {
			pred["forward "+n] = true
		}
		if err := l.Down(next); err != nil {
			return fmt.Errorf("taking %s down: %w", next, err)
		}
		cur.Store(&phase{node: next, since: time.Now(), predicted: pred})
		changes++
		down = next
	}
	wg.Wait()
	if down != "" {
		l.Up(ctx, down)
	}
	runtime.GC()
	endRSS, endHeap := memory()
	fmt.Printf("ran %v: %d node changes (every %v, down in turn: %s)\n", duration, changes, interval, strings.Join(cycle, ", "))
	fmt.Printf("probes sent %d: ok %d, failed where impact predicts %d, settling (< %v after a change) %d, unexpected %d\n",
		t.sent.Load(), t.ok.Load(), t.predicted.Load(), settle, t.settling.Load(), t.unexpected.Load())
	fmt.Printf("memory at end: RSS %d MiB, heap %d MiB (start: RSS %d MiB, heap %d MiB)\n", endRSS>>20, endHeap>>20, startRSS>>20, startHeap>>20)
	if n := t.unexpected.Load(); n > 0 {
		var keys []string
		for k := range t.examples {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Printf("  unexpected: %s x%d\n", k, t.examples[k])
		}
		return fmt.Errorf("%d failures impact does not predict", n)
	}
	return nil
}

// predictedLoss reports whether impact, for the phase's down node,
// predicts that the probe's client loses its target.
func predictedLoss(ph *phase, p observe.Probe) bool {
	if ph.node == "" {
		return false
	}
	switch p.Kind {
	case observe.KindSite:
		host := strings.TrimPrefix(p.Name, "site/")
		if ph.predicted["internet "+host] {
			return true
		}
		// a wildcard site ("*.openfoodfacts.net") covers every name below it
		for i := strings.IndexByte(host, '.'); i >= 0; i = strings.IndexByte(host, '.') {
			host = host[i+1:]
			if ph.predicted["internet *."+host] {
				return true
			}
		}
		return false
	case observe.KindTunnel:
		return ph.predicted["tunnel "+p.Object]
	case observe.KindForward:
		return ph.predicted["forward "+p.Object]
	case observe.KindUpstream:
		parts := strings.SplitN(p.Name, "/", 4)
		return len(parts) == 4 && ph.predicted[p.From+" "+strings.Replace(parts[3], ":", " ", 1)]
	default:
		return ph.predicted[p.From+" "+p.Object]
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// memory is the process's resident set (from /proc) and Go heap in use.
func memory() (rss, heap uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		var size, res uint64
		fmt.Sscan(string(b), &size, &res)
		rss = res * uint64(os.Getpagesize())
	}
	return rss, ms.HeapInuse
}
