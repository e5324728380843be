package check_test

import (
	"bytes"
	"testing"

	"github.com/offedge/offedge/check"
	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/inventory"
)

// TestOpenFoodFacts: the embedded Open Food Facts inventory has no error.
// Its warnings are listed in the log (and pinned below), so that a new one
// is a decision, not an accident.
func TestOpenFoodFacts(t *testing.T) {
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatalf("loading the Open Food Facts inventory:\n%v", err)
	}
	fs := check.Run(m)
	var b bytes.Buffer
	if err := check.WriteText(&b, fs); err != nil {
		t.Fatal(err)
	}
	t.Logf("offedge check on the Open Food Facts inventory:\n%s", b.String())
	errs, _, _ := check.Counts(fs)
	if errs != 0 {
		t.Errorf("%d errors, want none:\n%s", errs, b.String())
	}
	got := map[string]int{}
	for _, f := range fs {
		if f.Severity == check.Warning && f.Suppressed == "" {
			got[f.Rule+" "+f.Object]++
		}
	}
	// The example is clean: no warning either (off1's images origin has
	// its own certificate name since OE304 pointed at the shared one).
	for k, n := range got {
		t.Errorf("unexpected warning %s (%d)", k, n)
	}
}
