package testutil

import (
	"context"
	"testing"

	"github.com/offedge/offedge/internal/pebble"
)

// StartPebble runs pebble and pebble-challtestsrv (package pebble) for
// the test, stopped at its end; their output is shown when it fails.
// Missing binaries skip the test, or fail it in CI.
func StartPebble(t *testing.T, o pebble.Options) *pebble.Server {
	t.Helper()
	o.Pebble = RequireBinary(t, "pebble")
	o.ChallTestSrv = RequireBinary(t, "pebble-challtestsrv")
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	out := new(SyncBuffer)
	o.Output = out
	s, err := pebble.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("pebble output:\n%s", out)
		}
	})
	return s
}
