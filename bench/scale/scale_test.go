// Package scale measures the inventory commands — load, check, plan for
// every node, why, impact, graph — on generated inventories at a tenth of
// and at the size the project commits to: 500 servers, 2,000 guests and
// 5,000 services, each command under a second.
//
//	go test ./bench/scale -bench . -benchtime 3x
package scale

import (
	"fmt"
	"io"
	"io/fs"
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
	for _, s := range sizes {
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
// Each figure is the best of three runs, so that a CI machine busy with
// other test packages measures the code, not the contention.
func TestFullSizeUnderASecond(t *testing.T) {
	best := func(fn func() error) time.Duration {
		var b time.Duration
		for i := 0; i < 3; i++ {
			start := time.Now()
			if err := fn(); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); i == 0 || d < b {
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
