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
		return nil, fmt.Errorf("the inventory fails check with %d error(s):\n%s", errs, b.String())
	}
	return plan.Compile(m, node, opts)
}
