package main

import (
	"encoding/json"
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

const estateInventory = `providers: [{name: local}]
networks: [{name: lan, kind: private, prefixes: [127.0.0.0/8]}]
servers:
  - {name: edge, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.31}]}
  - {name: edge2, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.33}]}
  - {name: app, provider: local, mode: bare-metal, addresses: [{network: lan, ip: 127.0.0.32}]}
services:
  - {name: web, node: app, port: %s, protocol: http, bind: [lan], allow: [edge, edge2]}
upstreams: [{name: web, servers: [{service: web}]}]
sites:
  - {name: www, node: edge, hosts: [www.example.org], listen: [{network: lan, port: %s}], routes: [{path: /, upstream: web}]}
  - {name: www2, node: edge2, hosts: [www2.example.org], listen: [{network: lan, port: %s}], routes: [{path: /, upstream: web}]}
admin:
  - {node: edge, listen: "0.0.0.0:%s", auth: {token_file: %s}}
  - {node: edge2, listen: "0.0.0.0:%s", auth: {token_file: %s}}
`

// Two nodes' dashboards: edge's shows edge2's live state, asked from its
// admin endpoint (here from loopback, where a GET needs no token:
// dashboard.TestEstate checks the token is sent and required); app, which
// has no endpoint, is unknown; once edge2 stops, it is unknown with why,
// not down.
func TestRunEstate(t *testing.T) {
	bin := buildBinary(t)
	appPort := serveRunApp(t)
	port := func() string { _, p, _ := net.SplitHostPort(testutil.FreeAddr(t)); return p }
	site1, site2, admin1, admin2 := port(), port(), port(), port()
	dir := t.TempDir()
	tok1, tok2 := filepath.Join(dir, "edge.token"), filepath.Join(dir, "edge2.token")
	os.WriteFile(tok1, []byte(adminToken+"-1\n"), 0o600)
	os.WriteFile(tok2, []byte(adminToken+"-2\n"), 0o600)
	inv := fmt.Sprintf(estateInventory, appPort, site1, site2, admin1, tok1, admin2, tok2)
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func(node, admin string) (*exec.Cmd, *strings.Builder) {
		cmd := exec.Command(bin, "run", "--node", node, "--inventory", dir, "--probe-interval", "0")
		var logs strings.Builder
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		testutil.WaitTCP(t, "127.0.0.1:"+admin, 10*time.Second)
		return cmd, &logs
	}
	_, logs1 := start("edge", admin1)
	edge2, _ := start("edge2", admin2)

	type node struct {
		Name, State, Unknown string
		Status               struct {
			Runtime struct {
				Listeners []struct{ Addr string }
			}
		}
	}
	dashboard := func() map[string]node {
		resp, err := http.Get("http://127.0.0.1:" + admin1 + "/api/dashboard")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct{ Nodes []node }
		json.NewDecoder(resp.Body).Decode(&st)
		out := map[string]node{}
		for _, n := range st.Nodes {
			out[n.Name] = n
		}
		return out
	}
	n := dashboard()
	if n["edge2"].State != "up" || len(n["edge2"].Status.Runtime.Listeners) == 0 {
		t.Fatalf("edge2 as edge's dashboard shows it: %+v\nedge's logs:\n%s", n["edge2"], logs1.String())
	}
	if n["app"].State != "unknown" || n["app"].Unknown == "" {
		t.Errorf("app: %+v, want unknown with why", n["app"])
	}
	edge2.Process.Kill()
	edge2.Wait()
	testutil.Eventually(t, 15*time.Second, "edge2 unknown once stopped", func() bool {
		e := dashboard()["edge2"]
		return e.State == "unknown" && strings.Contains(e.Unknown, "does not answer")
	})
	if e := dashboard()["edge2"]; e.State == "down" {
		t.Errorf("a peer that does not answer is shown down")
	}
}
