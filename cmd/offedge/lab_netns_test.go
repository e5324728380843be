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

	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/internal/testutil"
)

// labNetnsInventory is small, so that the command's test costs little: a
// public edge with a firewall, proxying a site to an application behind it.
const labNetnsInventory = `providers: [{name: p}]
networks:
  - {name: internet, kind: public}
  - {name: lan, kind: private, prefixes: [10.9.0.0/16], gateway: edge}
servers:
  - name: edge
    provider: p
    firewall: {}
    management: [{name: ssh, allow: [192.0.2.0/28]}]
    addresses: [{network: internet, ip: 198.51.100.10}, {network: lan, ip: 10.9.0.1}]
  - {name: app, provider: p, addresses: [{network: lan, ip: 10.9.0.2}]}
services:
  - {name: web, node: app, port: 8080, protocol: http, bind: [lan], allow: [edge]}
upstreams: [{name: web, servers: [{service: web}]}]
sites:
  - name: www
    node: edge
    hosts: [www.example.org]
    listen: [{network: internet, port: 80}]
    routes: [{path: /, upstream: web}]
`

// TestLabNetnsCommand runs `offedge lab --netns` as a user would, with the
// inventory given by path (the node processes load it themselves): the
// status page sees every node's own offedge run, the visitor gets the site
// through the edge, and SIGTERM stops the nodes and removes every
// namespace.
func TestLabNetnsCommand(t *testing.T) {
	if err := netns.Available(); err != nil {
		if testutil.InCI() {
			t.Fatalf("%v; CI runs as root", err)
		}
		t.Skip(err)
	}
	bin := buildBinary(t)
	inv := t.TempDir()
	if err := os.WriteFile(filepath.Join(inv, "inventory.yaml"), []byte(labNetnsInventory), 0o644); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("oecli%d-", os.Getpid())
	cmd := exec.Command(bin, "lab", "--netns", "--netns-prefix", prefix, "-i", inv, "--status", "127.0.0.1:0")
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
	for _, st := range sts {
		// app runs its application only; edge runs offedge run too.
		if st.Process != "running" || (st.Node == "edge") != (len(st.Runtime) > 0) {
			t.Errorf("%s: process %q, runtime %.200s", st.Node, st.Process, st.Runtime)
		}
	}
	if len(sts) != 2 {
		t.Errorf("status lists %d nodes; the inventory has 2", len(sts))
	}
	// The visitor, in its namespace, gets the site through the edge.
	vis := &netns.NS{Name: prefix + "visitor", Path: filepath.Join(netns.Dir, prefix+"visitor")}
	vc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			err = vis.Do(func() error {
				conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
	}}
	var got string
	req, _ := http.NewRequest("GET", "http://198.51.100.10/", nil)
	req.Host = "www.example.org"
	resp, err = vc.Do(req)
	if err == nil {
		got = fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Offedge-Standin"))
		resp.Body.Close()
	}
	if err != nil || got != "200 web@app" {
		t.Errorf("the visitor -> http://198.51.100.10/: %q %v; want 200 from the web stand-in on app", got, err)
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
