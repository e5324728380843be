// Package scale measures the inventory commands — load, check, plan for
// every node, why, impact, graph — on generated inventories at a tenth of
// and at the size the project commits to: 500 servers, 2,000 guests and
// 5,000 services, each command under a second; and at ten times that
// (5,000 servers, 20,000 guests, 50,000 services), each under two seconds.
//
//	go test ./bench/scale -bench . -benchtime 3x
//	OFFEDGE_SCALE_10X=1 go test ./bench/scale -run TestTenTimes -v
//
// CI runs TestFullSizeUnderASecond and TestLinear (every command's cost
// grows in proportion to the inventory); the ten-times run takes tens of
// seconds of generating and loading, so it is asked for by name.
package scale

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/check"
	"github.com/offedge/offedge/internal/gen"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/reach"
	"github.com/offedge/offedge/topology"
)

var sizes = []struct {
	name string
	c    gen.Config
}{
	{"tenth", gen.Config{Servers: 50, Guests: 200, Services: 500}},
	{"full", gen.Large},
}

// tenTimes is the size issue 17 holds every command to two seconds at.
var tenTimes = gen.Config{Servers: 5000, Guests: 20000, Services: 50000}

// commands are what the CLI runs after loading, by name.
func commands(m *inventory.Model, from, to string) []struct {
	name string
	run  func() error
} {
	return []struct {
		name string
		run  func() error
	}{
		{"check", func() error {
			if errs, _, _ := check.Counts(check.Run(m)); errs > 0 {
				return fmt.Errorf("%d check errors on a generated inventory", errs)
			}
			return nil
		}},
		{"plan-every-node", func() error {
			for _, n := range m.Nodes {
				if _, err := plan.Compile(m, n.Name, plan.Options{}); err != nil {
					return err
				}
			}
			return nil
		}},
		{"why", func() error { _, err := topology.Why(m, from, to); return err }},
		{"impact", func() error { _, err := topology.Impact(m, "s0"); return err }},
		{"graph-svg", func() error { return topology.Build(m).WriteSVG(io.Discard) }},
	}
}

func load(tb testing.TB, c gen.Config) (fs.FS, *inventory.Model) {
	tb.Helper()
	fsys, err := gen.FS(c)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := inventory.Load(fsys, "inventory.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return fsys, m
}

// tunneledUse finds a node using a service through a tunnel, for why (any
// use when the inventory has no tunnel: a tenth-size one has one provider).
func tunneledUse(tb testing.TB, m *inventory.Model) (string, string) {
	from, to := "", ""
	e := reach.New(m)
	for _, n := range m.Nodes {
		for _, u := range n.Uses {
			if s := m.Service(u); s != nil {
				if p, _ := e.ServicePaths(n, s); len(p) > 0 && p[0].Hops[0].Kind == "entrance" {
					return n.Name, u
				}
				if from == "" {
					from, to = n.Name, u
				}
			}
		}
	}
	if from == "" {
		tb.Fatal("no use in the generated inventory")
	}
	return from, to
}

func BenchmarkCommands(b *testing.B) {
	all := sizes
	if os.Getenv("OFFEDGE_SCALE_10X") != "" {
		all = append(all[:len(all):len(all)], struct {
			name string
			c    gen.Config
		}{"ten-times", tenTimes})
	}
	for _, s := range all {
		fsys, m := load(b, s.c)
		b.Run("load/"+s.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := inventory.Load(fsys, "inventory.yaml"); err != nil {
					b.Fatal(err)
				}
			}
		})
		from, to := tunneledUse(b, m)
		for _, c := range commands(m, from, to) {
			b.Run(c.name+"/"+s.name, func(b *testing.B) {
				for b.Loop() {
					if err := c.run(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestFullSizeUnderASecond holds every command, load included, under a
// second on the full-size inventory, and logs the figures at both sizes.
// Each figure is the CPU time of a run (best of three), so that a CI
// machine busy with other test packages measures the code, not the
// contention: the wall clock's best of three once read 967 ms for a load
// that takes 130 ms, with eight test suites sharing two cores.
func TestFullSizeUnderASecond(t *testing.T) {
	best := func(fn func() error) time.Duration {
		var b time.Duration
		for i := 0; i < 3; i++ {
			start := cpuTime(t)
			if err := fn(); err != nil {
				t.Fatal(err)
			}
			if d := cpuTime(t) - start; i == 0 || d < b {
				b = d
			}
		}
		return b
	}
	for _, s := range sizes {
		fsys, m := load(t, s.c)
		loadTime := best(func() error { _, err := inventory.Load(fsys, "inventory.yaml"); return err })
		from, to := tunneledUse(t, m)
		line := fmt.Sprintf("%s (%d nodes, %d services): load %v", s.name, len(m.Nodes), len(m.Services), loadTime.Round(time.Millisecond))
		for _, c := range commands(m, from, to) {
			d := best(c.run)
			line += fmt.Sprintf(", %s %v", c.name, d.Round(time.Millisecond))
			if s.name == "full" && loadTime+d > time.Second {
				t.Errorf("%s at full size: load %v + %v; want under 1s", c.name, loadTime, d)
			}
		}
		t.Log(line)
	}
}

// cpuTime is the CPU time the process has used, user and system: unlike
// the wall clock, it does not grow when other processes share the machine.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cost returns the CPU time of one run of fn: repeated until the repeats
// take at least 20 ms (CPU accounting is coarse), best of three.
func cost(tb testing.TB, fn func() error) time.Duration {
	n := 1
	for {
		var best time.Duration
		for trial := 0; trial < 3; trial++ {
			start := cpuTime(tb)
			for i := 0; i < n; i++ {
				if err := fn(); err != nil {
					tb.Fatal(err)
				}
			}
			if d := cpuTime(tb) - start; trial == 0 || d < best {
				best = d
			}
		}
		if best >= 20*time.Millisecond || n >= 1<<20 {
			return best / time.Duration(n)
		}
		n *= 2
	}
}

// TestLinear holds every command's cost in proportion to the inventory:
// from a fifth of the full size to the full size (five times the servers,
// guests, services, providers and tunnels), a linear command costs about
// five times more and a quadratic one twenty-five times. The bound, twelve,
// leaves room for the noise of a busy machine, not for a quadratic step.
// A per-node command is held closer: compiling one ordinary guest must cost
// the same whatever the size of the inventory around it (plan for every
// node was quadratic because each compile scanned every tunnel, site and
// forward). Costs are CPU time, so the test does not depend on the machine
// being idle.
func TestLinear(t *testing.T) {
	// perNodeBound: one guest's compile measured 1.8-2.1x on a quiet
	// machine and 2.8x under a loaded CI run (larger maps, colder caches);
	// the code that scanned every site, tunnel and forward measured 3.7x.
	const factor, bound, perNodeBound = 5, 12.0, 3.2
	small := gen.Config{Servers: gen.Large.Servers / factor, Guests: gen.Large.Guests / factor, Services: gen.Large.Services / factor}
	type measured struct {
		fsys fs.FS
		m    *inventory.Model
		from string
		to   string
	}
	var at [2]measured
	for i, c := range []gen.Config{small, gen.Large} {
		fsys, m := load(t, c)
		from, to := tunneledUse(t, m)
		at[i] = measured{fsys, m, from, to}
	}
	loadCost := func(i int) func() error {
		return func() error { _, err := inventory.Load(at[i].fsys, "inventory.yaml"); return err }
	}
	check := func(name string, small, full time.Duration) {
		ratio := float64(full) / float64(max(small, time.Nanosecond))
		t.Logf("%s: %v at a fifth, %v at full size: %.1fx", name, small, full, ratio)
		// check measured 11.7-13.7x once (OE703 looked for monitoring
		// nodes by scanning every service for every node); 5.6-7.3x since.
		if ratio > bound || (strings.HasPrefix(name, "plan one node") && ratio > perNodeBound) {
			t.Errorf("%s costs %.1fx more for %dx the inventory (%v -> %v): not linear", name, ratio, factor, small, full)
		}
	}
	// g1 is an ordinary guest in both sizes: neither a proxy nor a tunnel
	// client, with the same few services.
	compileOne := func(i int) func() error {
		return func() error { _, err := plan.Compile(at[i].m, "g1", plan.Options{}); return err }
	}
	check("plan one node (g1)", cost(t, compileOne(0)), cost(t, compileOne(1)))
	check("load", cost(t, loadCost(0)), cost(t, loadCost(1)))
	cmds := [2][]struct {
		name string
		run  func() error
	}{commands(at[0].m, at[0].from, at[0].to), commands(at[1].m, at[1].from, at[1].to)}
	for i := range cmds[0] {
		check(cmds[0][i].name, cost(t, cmds[0][i].run), cost(t, cmds[1][i].run))
	}
}

// TestTenTimes holds every command, load included, under two seconds at ten
// times the full size. It takes tens of seconds (generating and loading
// 75,000 objects several times), so CI does not run it; TestLinear guards
// the growth there.
func TestTenTimes(t *testing.T) {
	if os.Getenv("OFFEDGE_SCALE_10X") == "" {
		t.Skip("set OFFEDGE_SCALE_10X=1 to run the ten-times inventory")
	}
	fsys, m := load(t, tenTimes)
	from, to := tunneledUse(t, m)
	loadTime := cost(t, func() error { _, err := inventory.Load(fsys, "inventory.yaml"); return err })
	line := fmt.Sprintf("ten times (%d nodes, %d services): load %v", len(m.Nodes), len(m.Services), loadTime.Round(time.Millisecond))
	for _, c := range commands(m, from, to) {
		d := cost(t, c.run)
		line += fmt.Sprintf(", %s %v", c.name, d.Round(time.Millisecond))
		if loadTime+d > 2*time.Second {
			t.Errorf("%s at ten times: load %v + %v of CPU; want under 2s", c.name, loadTime, d)
		}
	}
	t.Log(line)
}
