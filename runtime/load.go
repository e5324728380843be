package runtime

import (
	"fmt"
	"strings"

	"github.com/offedge/offedge/check"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

// Load checks a loaded inventory and compiles node's plan from it: the one
// path that `offedge run` at start-up, every reload (SIGHUP, POST
// /-/reload) and `offedge lab` take, so that a reload can never accept what
// start-up would refuse and the lab runs what production would. An
// inventory with check errors (unsuppressed) is refused with them listed;
// warnings do not block.
func Load(m *inventory.Model, node string, opts plan.Options) (*plan.Plan, error) {
	c, err := Check(m)
	if err != nil {
		return nil, err
	}
	return c.Plan(node, opts)
}

// Checked is an inventory that passed check: the first half of Load, for
// the lab, which checks a model once and compiles every node of it.
type Checked struct{ m *inventory.Model }

// Check refuses an inventory with check errors, listing them.
func Check(m *inventory.Model) (Checked, error) {
	findings := check.Run(m)
	if errs, _, _ := check.Counts(findings); errs > 0 {
		var only []check.Finding
		for _, f := range findings {
			if f.Severity == check.Error && f.Suppressed == "" {
				only = append(only, f)
			}
		}
		var b strings.Builder
		check.WriteText(&b, only)
		return Checked{}, fmt.Errorf("the inventory fails check with %d error(s):\n%s", errs, b.String())
	}
	return Checked{m}, nil
}

// Plan compiles node's plan: the second half of Load.
func (c Checked) Plan(node string, opts plan.Options) (*plan.Plan, error) {
	if c.m == nil {
		return nil, fmt.Errorf("node %q: the inventory was not checked", node)
	}
	return plan.Compile(c.m, node, opts)
}
