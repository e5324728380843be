// Package zfs runs the real zfs and zpool commands and parses their
// scripted output (-H: no header, tab-separated; -p: exact numbers, bytes
// and Unix seconds). Every command runs with a timeout and a bound on its
// output: syncoid hung with no timeout in 2023-05-23, and a listing of an
// unbounded number of snapshots must not grow a node's memory without end.
//
// The commands, exactly (DATASET and POOL from the node's plan):
//
//	zfs list -Hp -t snapshot -o name,guid,creation -s creation -d 1 DATASET
//	zfs list -Hp -o name,used,available DATASET
//	zfs get -Hp -o name,value,source sharenfs DATASET
//	zpool list -Hp -o name,size,allocated,free POOL
package zfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults for a Runner's zero fields.
const (
	DefaultTimeout   = 30 * time.Second
	DefaultMaxOutput = 16 << 20 // about 200k snapshot lines
)

// Runner runs zfs and zpool. The zero value looks both up on PATH with the
// defaults above.
type Runner struct {
	ZFS, ZPool string        // executables; "zfs" and "zpool" when empty
	Timeout    time.Duration // per command
	MaxOutput  int           // bytes of standard output per command
}

// NoDatasetError is the answer when the dataset named does not exist: an
// inventory typo (opf was left unreplicated for six months in 2023 by one)
// or a dataset that was destroyed.
type NoDatasetError struct{ Dataset string }

func (e *NoDatasetError) Error() string {
	return fmt.Sprintf("dataset %q does not exist", e.Dataset)
}

// Snapshot is one line of a snapshot listing.
type Snapshot struct {
	Dataset, Name string // DATASET@NAME split at the @
	GUID          uint64
	Created       time.Time
}

// Space is a dataset's used and available bytes.
type Space struct {
	Dataset         string
	Used, Available uint64
}

// Pool is a pool's size, allocated and free bytes.
type Pool struct {
	Name                  string
	Size, Allocated, Free uint64
}

// Property is one value of zfs get, with where it comes from: "local",
// "default", "inherited from PARENT", "-" (none), "received".
type Property struct {
	Dataset, Value, Source string
}

// Inherited reports the parent a property is inherited from, if it is.
func (p Property) Inherited() (string, bool) {
	return strings.CutPrefix(p.Source, "inherited from ")
}

// Snapshots lists the snapshots of dataset itself (not of its children),
// oldest first.
func (r Runner) Snapshots(ctx context.Context, dataset string) ([]Snapshot, error) {
	out, err := r.run(ctx, r.zfs(), dataset, "list", "-Hp", "-t", "snapshot", "-o", "name,guid,creation", "-s", "creation", "-d", "1", dataset)
	if err != nil {
		return nil, err
	}
	return ParseSnapshots(out)
}

// Space reads a dataset's used and available bytes.
func (r Runner) Space(ctx context.Context, dataset string) (Space, error) {
	out, err := r.run(ctx, r.zfs(), dataset, "list", "-Hp", "-o", "name,used,available", dataset)
	if err != nil {
		return Space{}, err
	}
	return ParseSpace(out, dataset)
}

// ShareNFS reads a dataset's sharenfs property and its source.
func (r Runner) ShareNFS(ctx context.Context, dataset string) (Property, error) {
	out, err := r.run(ctx, r.zfs(), dataset, "get", "-Hp", "-o", "name,value,source", "sharenfs", dataset)
	if err != nil {
		return Property{}, err
	}
	return ParseProperty(out, dataset)
}

// Pool reads a pool's size and allocation.
func (r Runner) Pool(ctx context.Context, pool string) (Pool, error) {
	out, err := r.run(ctx, r.zpool(), pool, "list", "-Hp", "-o", "name,size,allocated,free", pool)
	if err != nil {
		return Pool{}, err
	}
	return ParsePool(out, pool)
}

func (r Runner) zfs() string {
	if r.ZFS != "" {
		return r.ZFS
	}
	return "zfs"
}

func (r Runner) zpool() string {
	if r.ZPool != "" {
		return r.ZPool
	}
	return "zpool"
}

// capped keeps the first max bytes written and cancels the command when
// more come.
type capped struct {
	buf    bytes.Buffer
	max    int
	over   bool
	cancel context.CancelFunc
}

func (c *capped) Write(p []byte) (int, error) {
	if c.buf.Len()+len(p) > c.max {
		c.over = true
		c.cancel()
		return 0, errors.New("output too long")
	}
	return c.buf.Write(p)
}

// head keeps the first max bytes written and discards the rest.
type head struct {
	buf bytes.Buffer
	max int
}

func (h *head) Write(p []byte) (int, error) {
	if room := h.max - h.buf.Len(); room > 0 {
		h.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// run runs one command and returns its standard output. The command and
// every process it starts are killed at the timeout (it runs in its own
// process group), and its output is bounded.
func (r Runner) run(ctx context.Context, bin, dataset string, args ...string) ([]byte, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	max := r.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	stdout := &capped{max: max, cancel: cancel}
	stderr := &head{max: 4096}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	err := cmd.Run()
	name := bin + " " + strings.Join(args, " ")
	switch {
	case stdout.over:
		return nil, fmt.Errorf("%s: more than %d bytes of output", name, max)
	case ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("%s: no answer within %s", name, timeout)
	case err != nil:
		msg := strings.TrimSpace(stderr.buf.String())
		if strings.Contains(msg, "dataset does not exist") || strings.Contains(msg, "no such pool") {
			return nil, &NoDatasetError{Dataset: dataset}
		}
		if msg != "" {
			return nil, fmt.Errorf("%s: %v: %s", name, err, msg)
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return stdout.buf.Bytes(), nil
}

// fields splits the scripted output into lines of exactly n tab-separated
// fields.
func fields(out []byte, n int) ([][]string, error) {
	var rows [][]string
	for i, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != n {
			return nil, fmt.Errorf("line %d: %d fields, want %d: %q", i+1, len(f), n, line)
		}
		rows = append(rows, f)
	}
	return rows, nil
}

func num(line int, what, s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("line %d: %s %q is not a number (was -p given?)", line, what, s)
	}
	return v, nil
}

// ParseSnapshots parses `zfs list -Hp -t snapshot -o name,guid,creation`,
// returning the snapshots oldest first.
func ParseSnapshots(out []byte) ([]Snapshot, error) {
	rows, err := fields(out, 3)
	if err != nil {
		return nil, err
	}
	snaps := make([]Snapshot, 0, len(rows))
	for i, f := range rows {
		ds, name, ok := strings.Cut(f[0], "@")
		if !ok || ds == "" || name == "" {
			return nil, fmt.Errorf("line %d: %q is not a snapshot name (DATASET@NAME)", i+1, f[0])
		}
		guid, err := num(i+1, "guid", f[1])
		if err != nil {
			return nil, err
		}
		created, err := num(i+1, "creation", f[2])
		if err != nil {
			return nil, err
		}
		if created > 1<<40 {
			return nil, fmt.Errorf("line %d: creation %d is out of range", i+1, created)
		}
		snaps = append(snaps, Snapshot{Dataset: ds, Name: name, GUID: guid, Created: time.Unix(int64(created), 0).UTC()})
	}
	sort.SliceStable(snaps, func(i, j int) bool { return snaps[i].Created.Before(snaps[j].Created) })
	return snaps, nil
}

func one(out []byte, n int, want string) ([]string, error) {
	rows, err := fields(out, n)
	if err != nil {
		return nil, err
	}
	for _, f := range rows {
		if f[0] == want {
			return f, nil
		}
	}
	return nil, fmt.Errorf("no line for %q in the output", want)
}

// ParseSpace parses `zfs list -Hp -o name,used,available` for one dataset.
func ParseSpace(out []byte, dataset string) (Space, error) {
	f, err := one(out, 3, dataset)
	if err != nil {
		return Space{}, err
	}
	used, err := num(1, "used", f[1])
	if err != nil {
		return Space{}, err
	}
	avail, err := num(1, "available", f[2])
	if err != nil {
		return Space{}, err
	}
	return Space{Dataset: dataset, Used: used, Available: avail}, nil
}

// ParsePool parses `zpool list -Hp -o name,size,allocated,free` for one pool.
func ParsePool(out []byte, pool string) (Pool, error) {
	f, err := one(out, 4, pool)
	if err != nil {
		return Pool{}, err
	}
	var v [3]uint64
	for i, what := range []string{"size", "allocated", "free"} {
		if v[i], err = num(1, what, f[i+1]); err != nil {
			return Pool{}, err
		}
	}
	return Pool{Name: pool, Size: v[0], Allocated: v[1], Free: v[2]}, nil
}

// ParseProperty parses `zfs get -Hp -o name,value,source PROP` for one
// dataset.
func ParseProperty(out []byte, dataset string) (Property, error) {
	f, err := one(out, 3, dataset)
	if err != nil {
		return Property{}, err
	}
	return Property{Dataset: dataset, Value: f[1], Source: f[2]}, nil
}

// ShareNFSClients returns the clients a sharenfs value exports to, as
// written (without the @ of a network): none for "off" (and "-", no
// value), "*" for "on", and for an option list (Linux: "rw=@10.0.0.0/28,
// no_root_squash", several clients joined by ":") the hosts and networks
// of its rw= and ro= options, or "*" when it names none (exportfs then
// exports to everyone).
func ShareNFSClients(value string) []string {
	switch v := strings.TrimSpace(value); v {
	case "off", "-", "":
		return nil
	case "on":
		return []string{"*"}
	}
	var clients []string
	for _, opt := range strings.Split(value, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if !ok || (k != "rw" && k != "ro") {
			continue
		}
		for _, c := range strings.Split(v, ":") {
			if c = strings.TrimPrefix(strings.TrimSpace(c), "@"); c != "" {
				clients = append(clients, c)
			}
		}
	}
	if len(clients) == 0 {
		return []string{"*"}
	}
	return clients
}
