package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

const adminACLInventory = `providers: [{name: p}]
networks: [{name: lan, kind: private, prefixes: [10.9.0.0/24]}]
servers:
  - {name: db, provider: p, addresses: [{network: lan, ip: 10.9.0.1}]}
  - {name: app, provider: p, addresses: [{network: lan, ip: 10.9.0.2}]}
  - {name: peer, provider: p, addresses: [{network: lan, ip: 10.9.0.5}]}
services:
  - {name: pg, node: app, port: 5432, protocol: postgresql, bind: [lan], allow: [db]}
forwards:
  - {name: pgf, node: db, listen: {network: lan, port: 7000}, service: pg, allow: [app]}
admin:
  - node: db
    listen: 10.9.0.1:9901
    auth: {token_file: %[1]s}
    allow: [%[2]s]
  - node: peer
    listen: 10.9.0.5:9901
    auth: {token_file: %[1]s}
`

// TestRunAdminACL: the admin endpoint admits, at accept, the node itself,
// the other admin nodes and its allow list, and refuses everyone else
// before a byte (the token is not enough); a reload replaces the list.
// The process runs in a namespace of the test's own, its addresses on a
// veth interface there.
func TestRunAdminACL(t *testing.T) {
	ns := testutil.Netns(t, "oeadm-acl")
	for _, args := range [][]string{
		{"ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"},
		{"ip", "link", "set", "d0", "up"},
		{"ip", "link", "set", "d1", "up"},
	} {
		if _, err := ns.Run(args[0], args[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 5; i++ {
		if _, err := ns.Run("ip", "addr", "add", fmt.Sprintf("10.9.0.%d/24", i), "dev", "d0"); err != nil {
			t.Fatal(err)
		}
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "admin.token")
	const token = "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(allow string) {
		t.Helper()
		y := fmt.Sprintf(adminACLInventory, tokFile, allow)
		if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10.9.0.3/32")
	cmd := exec.Command("ip", "netns", "exec", ns.Name, bin, "run", "--node", "db", "--inventory", dir, "--probe-interval", "0")
	lines := startLogged(t, cmd)
	waitLog := func(want string) { t.Helper(); waitLine(t, lines, want) }
	waitLog(`msg="admin endpoint"`)

	// status asks GET /status with the token from src; "" when the
	// connection is closed without an answer.
	status := func(src string) string {
		t.Helper()
		var answer string
		err := ns.Do(func() error {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", "10.9.0.1:9901")
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "GET /status HTTP/1.1\r\nHost: db\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", token)
			b, _ := io.ReadAll(c)
			answer, _, _ = strings.Cut(string(b), "\r\n")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return answer
	}
	ok := "HTTP/1.1 200 OK"
	for src, want := range map[string]string{
		"10.9.0.1": ok, // the node itself
		"10.9.0.5": ok, // another admin node: its dashboard asks this one
		"10.9.0.3": ok, // the allow list
		"10.9.0.2": "", // a node of the estate, not admitted
		"10.9.0.4": "", // nobody
	} {
		if got := status(src); got != want {
			t.Errorf("from %s: %q, want %q", src, got, want)
		}
	}
	waitLog(`msg="connection denied" listener="admin endpoint" peer=10.9.0.`)

	write("10.9.0.4/32")
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(`msg=reloaded`)
	if got := status("10.9.0.4"); got != ok {
		t.Errorf("from 10.9.0.4 after the reload admitted it: %q", got)
	}
	if got := status("10.9.0.3"); got != "" {
		t.Errorf("from 10.9.0.3 after the reload dropped it: %q", got)
	}
}
