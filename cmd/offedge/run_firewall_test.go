package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/firewall"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

const runFirewallInventory = `providers: [{name: p}]
networks: [{name: lan, kind: private, prefixes: [10.9.0.0/16]}]
servers:
  - name: db
    provider: p
    firewall: {}
%s
    addresses: [{network: lan, ip: 10.9.0.1}]
  - {name: app, provider: p, addresses: [{network: lan, ip: 10.9.0.2}]}
services:
  - {name: pg, node: db, port: %d, protocol: postgresql, bind: [lan], allow: [app]}
`

const withSSH = "    management: [{name: ssh, allow: [10.9.0.0/24]}]"

// TestRunFirewall: offedge run --firewall applies the table at start and on
// a reload, a reload check refuses changes nothing, stop leaves the table,
// and --firewall-remove removes it. The process runs in a namespace of the
// test's own.
func TestRunFirewall(t *testing.T) {
	ns := testutil.Netns(t, "oefw-run")
	bin := buildBinary(t)
	dir := t.TempDir()
	write := func(mgmt string, port int) *plan.Firewall {
		y := fmt.Sprintf(runFirewallInventory, mgmt, port)
		if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := inventory.LoadPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		p, err := plan.Compile(m, "db", plan.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Firewall
	}
	c, err := firewall.Open(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inSync := func(fw *plan.Firewall) {
		t.Helper()
		live, err := c.Read("offedge")
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := firewall.Diff(fw, live); !ok {
			t.Fatalf("live table is not the plan:\n%s", d)
		}
	}
	start := func(extra ...string) (*exec.Cmd, chan string) {
		args := append([]string{"netns", "exec", ns.Name, bin, "run", "--node", "db", "--inventory", dir, "--firewall"}, extra...)
		cmd := exec.Command("ip", args...)
		return cmd, startLogged(t, cmd)
	}
	waitLog := func(lines chan string, want string) { t.Helper(); waitLine(t, lines, want) }

	v1 := write(withSSH, 5432)
	cmd, lines := start()
	waitLog(lines, `msg="firewall applied"`)
	inSync(v1)

	v2 := write(withSSH, 5433)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(lines, `msg=reloaded`)
	inSync(v2)

	write("", 5434) // no management: OE601 refuses it
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(lines, "reload refused")
	inSync(v2)

	cmd.Process.Signal(syscall.SIGTERM)
	waitLog(lines, "firewall left in place")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run exited with %v", err)
	}
	inSync(v2)

	v3 := write(withSSH, 5435)
	cmd, lines = start("--firewall-remove")
	waitLog(lines, `msg="firewall applied"`)
	inSync(v3)
	cmd.Process.Signal(syscall.SIGTERM)
	waitLog(lines, "firewall removed")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run exited with %v", err)
	}
	if _, err := c.Read("offedge"); err != firewall.ErrNoTable {
		t.Fatalf("after --firewall-remove: %v", err)
	}
}

// TestRunFirewallExportsBans: with --firewall, a ban made through the
// admin endpoint is written to the table's ban set, and lifting it removes
// it. The process runs in a namespace of the test's own.
func TestRunFirewallExportsBans(t *testing.T) {
	ns := testutil.Netns(t, "oefw-ban")
	bin := buildBinary(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(fmt.Sprintf(runFirewallInventory, withSSH, 5432)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := firewall.Open(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const admin = "127.0.0.1:9901" // inside the test's namespace
	cmd := exec.Command("ip", "netns", "exec", ns.Name, bin, "run", "--node", "db", "--inventory", dir, "--firewall", "--admin", admin)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	inNS := func(args ...string) (string, error) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns.Name, bin}, args...)...).CombinedOutput()
		return string(out), err
	}
	testutil.Eventually(t, 60*time.Second, "the admin endpoint", func() bool {
		_, err := inNS("ban", "list", "--admin", admin)
		return err == nil
	})
	banned := func() int {
		live, err := c.Read("offedge")
		if err != nil {
			t.Fatal(err)
		}
		return live.Banned[plan.BanSet4]
	}
	if out, err := inNS("ban", "add", "10.9.0.99", "--for", "1h", "--admin", admin); err != nil {
		t.Fatalf("ban add: %v\n%s\n%s", err, out, logs.String())
	}
	if n := banned(); n != 1 {
		t.Fatalf("%d elements in ban4 after a ban; want 1\n%s", n, logs.String())
	}
	if out, err := inNS("ban", "del", "10.9.0.99", "--admin", admin); err != nil {
		t.Fatalf("ban del: %v\n%s", err, out)
	}
	if n := banned(); n != 0 {
		t.Fatalf("%d elements in ban4 after lifting the ban; want 0\n%s", n, logs.String())
	}
}

// startLogged starts cmd with its standard error's lines on the returned
// channel (closed when it ends); the process is killed at the test's end.
func startLogged(t *testing.T, cmd *exec.Cmd) chan string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

// waitLine logs lines until one contains want, failing the test if the
// process ends first or 60 s pass.
func waitLine(t *testing.T, lines chan string, want string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("offedge exited before logging %q", want)
			}
			t.Log(l)
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q in the log", want)
		}
	}
}
