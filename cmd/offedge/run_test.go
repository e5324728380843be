package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

// buildBinary builds the offedge binary once for the process tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "offedge")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveRunApp serves the "app" node's web service of runInventory on
// 127.0.0.32 until the test ends, and returns its port.
func serveRunApp(t *testing.T) string {
	t.Helper()
	appLn, err := net.Listen("tcp", "127.0.0.32:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(appLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "app") }))
	t.Cleanup(func() { appLn.Close() })
	_, appPort, _ := net.SplitHostPort(appLn.Addr().String())
	return appPort
}

const runInventory = `providers: [{name: local}]
networks: [{name: lan, kind: private, prefixes: [127.0.0.0/8]}]
servers:
  - {name: edge, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.31}]}
  - {name: app, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.32}]}
services:
  - {name: web, node: app, port: %s, protocol: http, bind: [lan], allow: [edge]}
upstreams: [{name: web, servers: [{service: web}]}]
sites:
  - name: www
    node: edge
    hosts: [www.example.org]
    listen: [{network: lan, port: %s}]
    headers: {X-Version: "%s"}
    routes: [{path: /, upstream: web}]
`

// TestRunProcess drives the real binary: it serves, a reload to an
// inventory that fails loading is refused while the old configuration keeps
// serving, a good reload applies, and SIGTERM drains and exits 0.
func TestRunProcess(t *testing.T) {
	bin := buildBinary(t)
	appPort := serveRunApp(t)
	site := testutil.FreeAddr(t)
	_, sitePort, _ := net.SplitHostPort(site)
	site = "127.0.0.31:" + sitePort
	admin := testutil.FreeAddr(t)

	dir := t.TempDir()
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(runInventory, appPort, sitePort, "1"))
	cmd := exec.Command(bin, "run", "--node", "edge", "--inventory", dir, "--admin", admin)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testutil.WaitTCP(t, admin, 10*time.Second)

	version := func() string {
		req, _ := http.NewRequest("GET", "http://"+site+"/", nil)
		req.Host = "www.example.org"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET: %v\nlogs:\n%s", err, logs.String())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Version")
	}
	status := func() map[string]any {
		resp, err := http.Get("http://" + admin + "/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st map[string]any
		json.NewDecoder(resp.Body).Decode(&st)
		return st
	}
	if v := version(); v != "1" {
		t.Fatalf("version %q; want 1", v)
	}
	// The admin endpoint serves the dashboard: the page, and this node's
	// state with its listeners in the dashboard's JSON.
	for path, want := range map[string]string{"/": "<title>offedge dashboard</title>", "/api/dashboard": `"listeners"`, "/api/topology.svg": `data-node="edge"`, "/api/node": `"node":"edge"`} {
		resp, err := http.Get("http://" + admin + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s on the admin endpoint: %d, no %q in %.300s", path, resp.StatusCode, want, body)
		}
	}

	// A broken inventory: refused, the old one keeps serving.
	write("servers: [{name: edge, bogus: true}]\n")
	cmd.Process.Signal(syscall.SIGHUP)
	testutil.Eventually(t, 10*time.Second, "the refused reload to be logged", func() bool {
		return strings.Contains(logs.String(), "reload refused")
	})
	if v := version(); v != "1" {
		t.Fatalf("after a refused reload: version %q; want 1 still", v)
	}
	out, _, code := run("reload", "--admin", admin)
	if code != 1 || out != "" {
		t.Fatalf("offedge reload with a broken inventory: exit %d out %q; want 1", code, out)
	}

	// A good one: applied.
	write(fmt.Sprintf(runInventory, appPort, sitePort, "2"))
	out, errOut, code := run("reload", "--admin", admin)
	if code != 0 || !strings.Contains(out, "reloaded") {
		t.Fatalf("offedge reload: exit %d out %q err %q", code, out, errOut)
	}
	if v := version(); v != "2" {
		t.Fatalf("after reload: version %q; want 2", v)
	}
	if st := status(); st["reloads"].(float64) < 1 {
		t.Fatalf("status %v", st)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("offedge run exited with %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("offedge run did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), "draining") {
		t.Fatalf("no drain in the logs:\n%s", logs.String())
	}
}

// TestLabProcess runs `offedge lab` for a moment and checks the tour and
// the status page.
func TestLabProcess(t *testing.T) {
	testutil.RequireBinary(t, "redis-server")
	bin := buildBinary(t)
	status := testutil.FreeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Instance 2: the lab package's tests may run a lab (instance 1) meanwhile.
	cmd := exec.CommandContext(ctx, bin, "lab", "--status", status, "--instance", "2")
	stdout, _ := cmd.StdoutPipe()
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	var tour strings.Builder
	for sc.Scan() {
		tour.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	for _, want := range []string{"offedge lab: 18 nodes started", "stand-in product-opener", "redis-server", "curl -sS --cacert", "Status page: http://" + status} {
		if !strings.Contains(tour.String(), want) {
			t.Fatalf("tour lacks %q:\n%s\nstderr:\n%s", want, tour.String(), logs.String())
		}
	}
	resp, err := http.Post("http://"+status+"/api/nodes/ovh1/down", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("drill down: %v %v", resp, err)
	}
	resp, err = http.Get("http://" + status + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	var nodes []struct {
		Node string `json:"node"`
		Down bool   `json:"down"`
	}
	json.NewDecoder(resp.Body).Decode(&nodes)
	resp.Body.Close()
	down := 0
	for _, n := range nodes {
		if n.Down {
			down++
		}
	}
	if down != 7 {
		t.Fatalf("%d nodes down after taking ovh1 down; want 7 (ovh1 and its 6 guests)", down)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("offedge lab exited with %v\n%s", err, logs.String())
	}
}

// TestRunNotify drives systemd's notify protocol against a real unixgram
// NOTIFY_SOCKET, as systemd would for the Type=notify unit the package
// installs: READY=1 only once the site answers, watchdog pings at half
// WATCHDOG_USEC, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a
// SIGHUP, STOPPING=1 on SIGTERM.
func TestRunNotify(t *testing.T) {
	bin := buildBinary(t)
	appPort := serveRunApp(t)
	_, sitePort, _ := net.SplitHostPort(testutil.FreeAddr(t))
	site := "127.0.0.31:" + sitePort
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(fmt.Sprintf(runInventory, appPort, sitePort, "1")), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	cmd := exec.Command(bin, "run", "--node", "edge", "--inventory", dir)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=300000")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// next returns the next message containing want, failing after 10 s.
	next := func(want string) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed waiting for %q\nlogs:\n%s", want, logs.String())
				}
				if strings.Contains(m, want) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %q on the notify socket in 10 s\nlogs:\n%s", want, logs.String())
			}
		}
	}
	m := next("READY=1")
	if !strings.Contains(m, "STATUS=serving 1 listeners") {
		t.Errorf("READY message %q; want a STATUS line", m)
	}
	// Ready means serving: no wait, no retry.
	c, err := net.DialTimeout("tcp", site, time.Second)
	if err != nil {
		t.Fatalf("READY=1 sent before the site listens: %v", err)
	}
	c.Close()
	next("WATCHDOG=1")
	cmd.Process.Signal(syscall.SIGHUP)
	if m := next("RELOADING=1"); !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING message %q; want MONOTONIC_USEC", m)
	}
	if m := next("READY=1"); !strings.Contains(m, "reloaded") {
		t.Errorf("READY after reload %q; want its STATUS to say reloaded", m)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("offedge run: %v\n%s", err, logs.String())
	}
}

// TestPlanDiff: `offedge plan --diff` compares the plan the running node
// serves (GET /plan on its admin endpoint) with the inventory's, through
// the path a reload takes.
func TestPlanDiff(t *testing.T) {
	bin := buildBinary(t)
	_, sitePort, _ := net.SplitHostPort(testutil.FreeAddr(t))
	admin := testutil.FreeAddr(t)
	dir := t.TempDir()
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(runInventory, "9", sitePort, "1"))
	cmd := exec.Command(bin, "run", "--node", "edge", "--inventory", dir, "--admin", admin)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	testutil.WaitTCP(t, admin, 10*time.Second)

	out, errOut, code := run("plan", "--node", "edge", "--inventory", dir, "--diff", "--admin", admin)
	if code != 0 || !strings.Contains(out, "no changes") {
		t.Fatalf("unchanged inventory: exit %d out %q err %q", code, out, errOut)
	}
	// The upstream moves to another port.
	write(fmt.Sprintf(runInventory, "10", sitePort, "1"))
	out, errOut, code = run("plan", "--node", "edge", "--inventory", dir, "--diff", "--admin", admin)
	if code != 0 || !strings.Contains(out, "--- running ("+admin+")\n+++ inventory\n@@ ") {
		t.Fatalf("changed inventory: exit %d out %q err %q", code, out, errOut)
	}
	var minus, plus bool
	for _, l := range strings.Split(out, "\n") {
		minus = minus || strings.HasPrefix(l, "-") && strings.Contains(l, "127.0.0.32:9")
		plus = plus || strings.HasPrefix(l, "+") && strings.Contains(l, "127.0.0.32:10")
	}
	if !minus || !plus {
		t.Fatalf("diff does not show the upstream's new port:\n%s", out)
	}
	write("servers: [{name: edge, bogus: true}]\n")
	_, errOut, code = run("plan", "--node", "edge", "--inventory", dir, "--diff", "--admin", admin)
	if code != 1 || !strings.Contains(errOut, "a reload would be refused") {
		t.Fatalf("broken inventory: exit %d err %q", code, errOut)
	}
	_, errOut, code = run("plan", "--node", "edge", "--diff")
	if code != 2 || !strings.Contains(errOut, "--diff needs --admin") {
		t.Fatalf("--diff without --admin: exit %d err %q", code, errOut)
	}
}
