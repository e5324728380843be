package main

import (
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

// offedge ban add|list|del against a running offedge: the banned address
// is refused at accept, another is served, the ban survives a restart of
// offedge run (its --state-dir), and lifting the ban serves it again.
func TestBanCommand(t *testing.T) {
	bin := buildBinary(t)
	appPort := serveRunApp(t)
	_, sitePort, _ := net.SplitHostPort(testutil.FreeAddr(t))
	site := "127.0.0.31:" + sitePort
	admin := testutil.FreeAddr(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(fmt.Sprintf(runInventory, appPort, sitePort, "1")), 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	var (
		cmd  *exec.Cmd
		logs strings.Builder
	)
	start := func() {
		cmd = exec.Command(bin, "run", "--node", "edge", "--inventory", dir, "--admin", admin, "--state-dir", state)
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitTCP(t, admin, 10*time.Second)
	}
	start()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	getFrom := func(src string) error {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}}
		req, _ := http.NewRequest("GET", "http://"+site+"/", nil)
		req.Host = "www.example.org"
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil
	}
	if err := getFrom("127.0.0.32"); err != nil {
		t.Fatalf("before the ban: %v\n%s", err, logs.String())
	}
	if out, errOut, code := run("ban", "add", "127.0.0.32", "--for", "1h", "--reason", "scraping /api/v2/search", "--admin", admin); code != 0 || out != "127.0.0.32/32 banned\n" {
		t.Fatalf("ban add: exit %d out %q err %q", code, out, errOut)
	}
	out, _, code := run("ban", "list", "--admin", admin)
	if code != 0 || !strings.Contains(out, "127.0.0.32/32") || !strings.Contains(out, "manual: scraping /api/v2/search") {
		t.Fatalf("ban list: exit %d\n%s", code, out)
	}
	if err := getFrom("127.0.0.32"); err == nil {
		t.Fatal("a banned address was served")
	}
	if err := getFrom("127.0.0.33"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	// A restart (an upgrade, a crash) keeps the ban.
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("offedge run did not stop cleanly: %v\n%s", err, logs.String())
	}
	start()
	if out, _, code := run("ban", "list", "--admin", admin); code != 0 || !strings.Contains(out, "manual: scraping /api/v2/search") {
		t.Fatalf("after a restart, ban list: exit %d\n%s\n%s", code, out, logs.String())
	}
	if err := getFrom("127.0.0.32"); err == nil {
		t.Fatal("after a restart, the banned address was served")
	}
	if _, errOut, code := run("ban", "add", "127.0.0.32/24", "--admin", admin); code != 2 || !strings.Contains(errOut, "127.0.0.0/24") {
		t.Fatalf("a prefix with host bits: exit %d err %q", code, errOut)
	}
	if out, errOut, code := run("ban", "del", "127.0.0.32", "--admin", admin); code != 0 || out != "127.0.0.32/32 unbanned\n" {
		t.Fatalf("ban del: exit %d out %q err %q", code, out, errOut)
	}
	if _, errOut, code := run("ban", "del", "127.0.0.32", "--admin", admin); code != 1 || !strings.Contains(errOut, "not banned") {
		t.Fatalf("ban del again: exit %d err %q", code, errOut)
	}
	if err := getFrom("127.0.0.32"); err != nil {
		t.Fatalf("after the ban was lifted: %v", err)
	}
}
