package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/internal/testutil"
)

// TestLabNetnsCommand runs `offedge lab --netns` as a user would, with the
// inventory given by path (the node processes load it themselves): the
// status page sees every node's own offedge run, a tour line works, and
// SIGTERM stops the nodes and removes every namespace.
func TestLabNetnsCommand(t *testing.T) {
	if err := netns.Available(); err != nil {
		if testutil.InCI() {
			t.Fatalf("%v; CI runs as root", err)
		}
		t.Skip(err)
	}
	testutil.RequireBinary(t, "redis-cli")
	bin := buildBinary(t)
	inv, err := filepath.Abs("../../examples/openfoodfacts")
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("oecli%d-", os.Getpid())
	cmd := exec.Command(bin, "lab", "--netns", "--netns-prefix", prefix, "-i", inv, "--status", "127.0.0.1:0", "--no-engines")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testutil.SyncBuffer{}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() {
		cmd.Process.Kill()
		<-exited
		if names, _ := netns.List(prefix); len(names) > 0 {
			t.Errorf("namespaces left: %v", names)
		}
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	// The status line, then the tour; bounded by the start-up budget.
	status := ""
	deadline := time.After(90 * time.Second)
	for status == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("offedge lab --netns exited before its status line; stderr:\n%s", stderr.String())
			}
			if a, ok := strings.CutPrefix(line, "status page and dashboard: http://"); ok {
				status = strings.Fields(a)[0]
			}
		case <-deadline:
			t.Fatalf("no status line within 90s; stderr:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines { // the tour, and whatever follows
		}
	}()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + status + "api/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var sts []struct {
		Node, Process string
		Runtime       json.RawMessage
	}
	if err := json.Unmarshal(body, &sts); err != nil || len(sts) == 0 {
		t.Fatalf("GET /api/status: %v: %.300s", err, body)
	}
	running := 0
	for _, st := range sts {
		if st.Process == "running" && len(st.Runtime) > 0 {
			running++
		}
	}
	if running < len(sts)/2 {
		t.Errorf("%d of %d nodes run offedge run with an answering admin endpoint: %.500s", running, len(sts), body)
	}
	// A line of the tour: docker-prod's Redis through the tunnel.
	out, err := exec.Command("ip", "netns", "exec", prefix+"docker-prod", "redis-cli", "-h", "10.1.0.113", "ping").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "PONG" {
		t.Errorf("redis-cli through the tunnel: %v %q", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the deferred check
		if err != nil {
			t.Errorf("offedge lab --netns: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("offedge lab --netns did not stop within 60s of SIGTERM")
	}
	if names, _ := netns.List(prefix); len(names) > 0 {
		t.Errorf("after SIGTERM, namespaces left: %v", names)
	}
}
