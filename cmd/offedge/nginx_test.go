package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/offedge/offedge/interop/nginx"
)

const nginxTestInventory = `providers: [{name: test}]
networks:
  - {name: lan, kind: private, prefixes: [10.0.0.0/8]}
  - {name: internet, kind: public}
servers:
  - {name: edge, provider: test, mode: bare-metal, addresses: [{network: lan, ip: 10.254.0.1}, {network: internet, ip: 203.0.113.10}]}
  - {name: app1, provider: test, mode: bare-metal, addresses: [{network: lan, ip: 10.1.0.50}]}
  - {name: app2, provider: test, mode: bare-metal, addresses: [{network: lan, ip: 10.1.0.51}]}
  - {name: origin, provider: test, mode: bare-metal, addresses: [{network: internet, ip: 198.51.100.7}]}
services:
  - {name: app, node: app1, port: 8080, protocol: http, allow: [edge]}
`

// TestImportNginx runs offedge import nginx on the package's fixture: with
// an inventory naming every address it exits 0, writes a fragment that
// loads with the inventory, and a report of every directive; without
// --host for the origin's name it says what is unmapped and exits 1.
func TestImportNginx(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(nginxTestInventory), 0o644); err != nil {
		t.Fatal(err)
	}
	fixture := filepath.Join("..", "..", "interop", "nginx", "testdata", "proxy.conf")
	frag := filepath.Join(dir, "frag.yaml")
	out, errOut, code := run("import", "nginx", "--node", "edge", "-i", dir, "--host", "origin.example.net=origin",
		"--prefix", filepath.Dir(fixture), "--out", frag, fixture)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	data, err := os.ReadFile(frag)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nginx.LoadWith(os.DirFS(dir), "inventory.yaml", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if m.Site("example.org") == nil || m.Site("images.example.org") == nil {
		t.Fatalf("sites missing:\n%s", data)
	}
	for _, want := range []string{"0 unsupported", "mapped      location /api/: route /api/", "the add_header trap"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("report lacks %q:\n%s", want, errOut)
		}
	}
	out, errOut, code = run("import", "nginx", "--node", "edge", "-i", dir, "--prefix", filepath.Dir(fixture), fixture)
	if code != 1 || !strings.Contains(errOut, "origin.example.net:443: no site of the inventory serves this name") || !strings.Contains(out, "name: example.org") {
		t.Fatalf("without --host: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, _, code := run("import", "nginx", fixture); code != 2 {
		t.Fatalf("without --node: exit %d", code)
	}
}
