package pebble_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/pebble"
	"github.com/offedge/offedge/internal/testutil"
)

// script writes an executable shell script.
func script(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// A pebble that cannot bind its port (another process took it between
// the pick and the bind) exits at once: Start tries again on fresh ports
// instead of waiting out its timeout for a port nobody will open.
func TestStartRetriesWhenPebbleExits(t *testing.T) {
	real := testutil.RequireBinary(t, "pebble")
	chall := testutil.RequireBinary(t, "pebble-challtestsrv")
	count := filepath.Join(t.TempDir(), "count")
	fake := script(t, "pebble", fmt.Sprintf(`
if [ ! -e %[1]q ]; then
  touch %[1]q
  echo "listen tcp 127.0.0.1:1: bind: address already in use" >&2
  exit 1
fi
exec %[2]q "$@"`, count, real))
	out := new(testutil.SyncBuffer)
	start := time.Now()
	s, err := pebble.Start(context.Background(), pebble.Options{Dir: t.TempDir(), Pebble: fake, ChallTestSrv: chall, Output: out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	defer s.Close()
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("start took %v: the first, exited pebble was waited for", d)
	}
	if _, err := s.RootPEM(context.Background()); err != nil {
		t.Errorf("the restarted pebble does not answer: %v", err)
	}
}

// A pebble that never comes up fails Start quickly, with its own words
// and each attempt's, not a bare "connection refused" after a long wait.
func TestStartReportsWhyPebbleExited(t *testing.T) {
	chall := testutil.RequireBinary(t, "pebble-challtestsrv")
	fake := script(t, "pebble", `echo "pebble: no such config field" >&2; exit 3`)
	start := time.Now()
	_, err := pebble.Start(context.Background(), pebble.Options{Dir: t.TempDir(), Pebble: fake, ChallTestSrv: chall})
	if err == nil {
		t.Fatal("Start succeeded with a pebble that exits")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("failing took %v", d)
	}
	msg := err.Error()
	for _, want := range []string{"attempt 1", "attempt 3", "pebble exited before answering", "exit status 3", "no such config field"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

// challtestsrv's own exit is reported as such.
func TestStartReportsWhyChallTestSrvExited(t *testing.T) {
	real := testutil.RequireBinary(t, "pebble")
	fake := script(t, "pebble-challtestsrv", `echo "challtestsrv: cannot listen" >&2; exit 2`)
	_, err := pebble.Start(context.Background(), pebble.Options{Dir: t.TempDir(), Pebble: real, ChallTestSrv: fake})
	if err == nil || !strings.Contains(err.Error(), "pebble-challtestsrv exited before answering") || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("error = %v", err)
	}
}
