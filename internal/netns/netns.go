// Package netns creates named Linux network namespaces (as `ip netns add`
// does) and runs code or commands inside them. The firewall tests and
// `offedge lab --netns` use it; it needs root (CAP_SYS_ADMIN).
package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Dir is where named namespaces are bind-mounted, as iproute2 does.
const Dir = "/run/netns"

// NS is a named network namespace.
type NS struct {
	Name string
	Path string
}

var counter atomic.Int64

// New creates a namespace named prefix + a suffix unique to this process,
// with its loopback up. Namespaces New made under prefix for a process
// that is gone (a test binary killed at its timeout never ran its
// cleanup) are deleted first.
func New(prefix string) (*NS, error) {
	if err := ReapOrphans(prefix); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), counter.Add(1))
	return Create(name)
}

// ReapOrphans deletes the namespaces named under prefix as New and the
// lab tests name them (prefix, a process ID, "-", the rest) whose process
// no longer exists. A name whose process ID is alive again, or any other
// name, is left alone.
func ReapOrphans(prefix string) error {
	names, err := List(prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		pid, ok := orphanPID(strings.TrimPrefix(name, prefix))
		if !ok || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		errs = append(errs, (&NS{Name: name, Path: filepath.Join(Dir, name)}).Close())
	}
	return errors.Join(errs...)
}

// orphanPID parses the suffix "PID-rest" (rest not empty).
func orphanPID(suffix string) (int, bool) {
	p, rest, ok := strings.Cut(suffix, "-")
	if !ok || rest == "" {
		return 0, false
	}
	pid, err := strconv.ParseUint(p, 10, 31) // digits only: no sign, no space
	return int(pid), err == nil && pid > 0
}

// Create creates the namespace called name, with its loopback up.
func Create(name string) (*NS, error) {
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	ns := &NS{Name: name, Path: filepath.Join(Dir, name)}
	if _, err := ns.Run("ip", "link", "set", "lo", "up"); err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// Close deletes the namespace (its interfaces go with it).
func (n *NS) Close() error {
	out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Run runs a command inside the namespace and returns its output.
func (n *NS) Run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in %s: %s %s: %v: %s", n.Name, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Do runs fn on an OS thread switched into the namespace. Sockets fn opens
// (listeners, dials) belong to the namespace for their whole life, even
// when used from other goroutines afterwards.
func (n *NS) Do(fn func() error) error {
	target, err := os.Open(n.Path)
	if err != nil {
		return err
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering %s: %w", n.Name, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime discards it when the
		// goroutine exits, instead of reusing a thread in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("leaving %s: %w", n.Name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// List returns the names of existing namespaces starting with prefix.
func List(prefix string) ([]string, error) {
	ents, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Available reports why namespaces cannot be created here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("ip (iproute2) is not installed")
	}
	return nil
}
