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
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
)

const adminToken = "token-for-the-admin-test-0123456789"

// writeAdminInventory writes runInventory with an admin: entry for edge
// (listen, and auth when token is set) and returns its directory.
func writeAdminInventory(t *testing.T, appPort, sitePort, listen, tokenFile string) string {
	t.Helper()
	dir := t.TempDir()
	inv := fmt.Sprintf(runInventory, appPort, sitePort, "1") + "admin:\n  - node: edge\n    listen: " + listen + "\n"
	if tokenFile != "" {
		inv += "    auth: {token_file: " + tokenFile + "}\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// An admin endpoint off loopback without a token is refused at start, by
// run and by check (OE704), before anything opens.
func TestRunRefusesAdminOffLoopbackWithoutAuth(t *testing.T) {
	appPort := serveRunApp(t)
	_, sitePort, _ := net.SplitHostPort(testutil.FreeAddr(t))
	_, adminPort, _ := net.SplitHostPort(testutil.FreeAddr(t))
	dir := writeAdminInventory(t, appPort, sitePort, "127.0.0.1:"+adminPort, "")
	_, errOut, code := run("run", "--node", "edge", "--inventory", dir, "--admin", "0.0.0.0:"+adminPort)
	if code != 1 || !strings.Contains(errOut, "off loopback") || !strings.Contains(errOut, "token_file") {
		t.Fatalf("run --admin 0.0.0.0 without auth: exit %d, %q", code, errOut)
	}
	dir = writeAdminInventory(t, appPort, sitePort, "0.0.0.0:"+adminPort, "")
	_, errOut, code = run("run", "--node", "edge", "--inventory", dir)
	if code != 1 || !strings.Contains(errOut, "OE704") {
		t.Fatalf("run with admin: listen 0.0.0.0 without auth: exit %d, %q", code, errOut)
	}
	out, _, code := run("check", dir)
	if code != 1 || !strings.Contains(out, "OE704") {
		t.Fatalf("check: exit %d, %q", code, out)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+sitePort); err == nil {
		c.Close()
		t.Error("a refused start opened the site's listener")
	}
}

// With a token, the endpoint off loopback starts; a POST without the token
// or with a wrong one is refused with 401 (and the log holds neither), the
// right one is admitted, GETs from loopback need none, and offedge reload
// sends $OFFEDGE_ADMIN_TOKEN_FILE.
func TestRunAdminToken(t *testing.T) {
	bin := buildBinary(t)
	appPort := serveRunApp(t)
	_, sitePort, _ := net.SplitHostPort(testutil.FreeAddr(t))
	_, adminPort, _ := net.SplitHostPort(testutil.FreeAddr(t))
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := writeAdminInventory(t, appPort, sitePort, "0.0.0.0:"+adminPort, tokenFile)
	cmd := exec.Command(bin, "run", "--node", "edge", "--inventory", dir)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	admin := "127.0.0.1:" + adminPort
	testutil.WaitTCP(t, admin, 10*time.Second)

	do := func(method, path, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+admin+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	wrong := "Bearer " + adminToken[:len(adminToken)-2] + "xx"
	for _, tt := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/status", "", 200},
		{"POST", "/-/reload", "", 401},
		{"POST", "/-/reload", wrong, 401},
		{"POST", "/cache/purge", "", 401},
		{"POST", "/-/reload", "Bearer " + adminToken, 200},
	} {
		if got := do(tt.method, tt.path, tt.auth); got != tt.want {
			t.Errorf("%s %s (auth %q): %d, want %d", tt.method, tt.path, tt.auth, got, tt.want)
		}
	}
	if _, _, code := run("reload", "--admin", admin); code != 1 {
		t.Errorf("offedge reload without the token: exit %d, want 1", code)
	}
	t.Setenv("OFFEDGE_ADMIN_TOKEN_FILE", tokenFile)
	if out, errOut, code := run("reload", "--admin", admin); code != 0 || !strings.Contains(out, "reloaded") {
		t.Errorf("offedge reload with the token: exit %d, %q %q", code, out, errOut)
	}
	if !strings.Contains(logs.String(), "admin request refused") {
		t.Errorf("no refusal logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), adminToken[:12]) {
		t.Errorf("the token reached the log:\n%s", logs.String())
	}
}
