package check

import (
	"testing"
	"time"

	"github.com/offedge/offedge/internal/gen"
	"github.com/offedge/offedge/inventory"
)

func generated(tb testing.TB, c gen.Config) *inventory.Model {
	tb.Helper()
	fsys, err := gen.FS(c)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := inventory.Load(fsys, "inventory.yaml")
	if err != nil {
		tb.Fatalf("loading the generated inventory: %v", err)
	}
	return m
}

// TestGeneratedIsClean: generated inventories pass every rule, so that the
// benchmark measures a full clean run, and their uses: are real paths.
func TestGeneratedIsClean(t *testing.T) {
	for _, c := range []gen.Config{{Servers: 3, Guests: 9, Services: 20}, {Servers: 120, Guests: 240, Services: 700}} {
		m := generated(t, c)
		uses := 0
		for _, n := range m.Nodes {
			uses += len(n.Uses)
		}
		if len(m.Tunnels) == 0 && c.Servers > perProviderForTest || uses == 0 {
			t.Fatalf("%+v: %d tunnels, %d uses: the generator lays out too little", c, len(m.Tunnels), uses)
		}
		for _, f := range Run(m) {
			t.Errorf("%+v: %s", c, f)
		}
	}
}

const perProviderForTest = 50

// TestLargeRunIsFast: the size the design promises stays well under a
// second (the bound here is loose, for slow and shared machines; the
// benchmark gives the real figure).
func TestLargeRunIsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("large model")
	}
	m := generated(t, gen.Large)
	start := time.Now()
	fs := Run(m)
	d := time.Since(start)
	if len(fs) != 0 {
		t.Errorf("%d findings on the generated model, first: %s", len(fs), fs[0])
	}
	t.Logf("Run on %d nodes, %d services, %d sites, %d tunnels: %v", len(m.Nodes), len(m.Services), len(m.Sites), len(m.Tunnels), d)
	if d > 3*time.Second {
		t.Errorf("Run took %v on %+v; want well under a second", d, gen.Large)
	}
}

func BenchmarkRun(b *testing.B) {
	m := generated(b, gen.Large)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Run(m)
	}
}
