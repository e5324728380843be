// Package testutil holds helpers shared by offedge's tests: finding the real
// engines (nginx, stunnel4, redis-server, ...) the integration tests drive,
// and waiting on conditions instead of sleeping.
package testutil

import (
	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/internal/netwait"

	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// engine is a failure, not a skip.
func InCI() bool { return os.Getenv("CI") != "" && os.Getenv("CI") != "false" }

// RequireBinary returns the path of an engine binary, looking in PATH and in
// the sbin directories Debian installs daemons into. When it is missing the
// test is skipped on a developer machine and fails in CI, so that no test
// skips silently where the engines must be installed.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if InCI() {
		t.Fatalf("%s is not installed; CI must install it (see .ci/run / scripts/test.sh)", name)
	}
	t.Skipf("%s is not installed; run scripts/test.sh to install the test engines", name)
	return ""
}

// RequireReference returns the path of the read-only Open Food Facts
// reference files (../shared/reference/openfoodfacts-infrastructure beside
// the checkout), or skips when they are absent. In CI, where they always
// exist, their absence is a failure. OFFEDGE_REFERENCE overrides the path.
func RequireReference(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("OFFEDGE_REFERENCE"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "..", "shared", "reference", "openfoodfacts-infrastructure")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if InCI() {
		t.Fatalf("the reference files (../shared/reference/openfoodfacts-infrastructure) are missing; CI always has them")
	}
	t.Skip("reference files not present beside the checkout (../shared)")
	return ""
}

// WaitTCP waits until addr accepts a TCP connection or the timeout expires.
func WaitTCP(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	if err := WaitTCPErr(context.Background(), addr, timeout); err != nil {
		t.Fatalf("waiting for %s: %v", addr, err)
	}
}

// WaitTCPErr is WaitTCP returning an error instead of failing a test.
func WaitTCPErr(ctx context.Context, addr string, timeout time.Duration) error {
	return netwait.TCP(ctx, addr, timeout)
}

// Eventually polls cond until it returns true or the timeout expires.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(delay)
	}
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// RefusedAddr returns a loopback address where connections are refused
// for the whole test: its port is held by a socket bound and never
// listening (closed at cleanup). A listener closed at once would give its
// port back, and the next listener of the test, or of a package running
// beside it, may take it: a "dead" address that then answers.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// Netns creates a network namespace for the test and removes it at the end.
// Without root (or iproute2) the test is skipped on a developer machine and
// fails in CI, which runs as root.
func Netns(t testing.TB, prefix string) *netns.NS {
	t.Helper()
	if err := netns.Available(); err != nil {
		if InCI() {
			t.Fatalf("%v; CI runs the firewall tests as root", err)
		}
		t.Skip(err)
	}
	ns, err := netns.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	return ns
}
