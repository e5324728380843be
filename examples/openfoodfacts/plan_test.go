package openfoodfacts_test

import (
	"testing"

	"github.com/offedge/offedge/plan"
)

// TestEveryNodeCompiles: every node's plan builds (listeners placed,
// upstreams and tunnel hops reachable, no two listeners on one socket).
func TestEveryNodeCompiles(t *testing.T) {
	m := load(t)
	for _, n := range m.Nodes {
		if _, err := plan.Compile(m, n.Name, plan.Options{}); err != nil {
			t.Error(err)
		}
	}
}
