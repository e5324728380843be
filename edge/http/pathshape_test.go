package httpedge

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/offedge/offedge/internal/testutil"
)

// startNginx runs a real nginx on 127.0.0.1 serving root as static files
// (merge_slashes on and dot segments resolved, as every nginx does) and
// returns its address. It logs every request line so that a test can see
// what reached it.
func startNginx(t *testing.T, root string) (addr, accessLog string) {
	t.Helper()
	bin := testutil.RequireBinary(t, "nginx")
	dir := t.TempDir()
	addr = testutil.FreeAddr(t)
	accessLog = filepath.Join(dir, "access.log")
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log %[2]s;
  client_body_temp_path %[1]s;
  proxy_temp_path %[1]s;
  fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s;
  scgi_temp_path %[1]s;
  server {
    listen %[3]s;
    root %[4]s;
  }
}
`, dir, accessLog, addr, root)
	runNginx(t, bin, dir, addr, conf)
	return addr, accessLog
}

// runNginx starts bin with conf (written in dir) and waits for addr.
func runNginx(t *testing.T, bin, dir, addr, conf string) {
	t.Helper()
	cf := writeFile(t, filepath.Join(dir, "nginx.conf"), conf)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-p", dir, "-c", cf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	if err := testutil.WaitTCPErr(t.Context(), addr, 10*time.Second); err != nil {
		t.Fatalf("nginx did not start: %v\n%s", err, stderr.String())
	}
}

// TestPathShapesCannotBypassAuth is the table of path shapes that reached a
// basic_auth route's content without credentials (issue 9, finding 1): the
// site proxies "/" to a real nginx, and "/admin/" (behind basic_auth) to the
// same nginx, which, as most backends, merges slashes and resolves dot
// segments. Every shape that names /admin/secret must be asked for
// credentials (or refused), never answered with the secret; with
// credentials, nginx is asked for the normalised path.
func TestPathShapesCannotBypassAuth(t *testing.T) {
	n := newNode(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "admin"), 0o755)
	os.MkdirAll(filepath.Join(root, "x"), 0o755)
	writeFile(t, filepath.Join(root, "admin", "secret"), "SECRET")
	writeFile(t, filepath.Join(root, "index.html"), "PUBLIC")
	ngx, accessLog := startNginx(t, root)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	htp := writeFile(t, filepath.Join(t.TempDir(), "htpasswd"), "admin:"+string(hash)+"\n")
	up := n.up(Upstream{Name: "app", Servers: []UpstreamServer{{Addr: ngx}}})
	site := Site{Name: "s", Hosts: []string{"s"}, Routes: []Route{
		{Path: "/", Upstream: up},
		{Path: "/admin/", Upstream: up, BasicAuthFile: htp},
	}}
	_, addr := n.start(Config{Sites: []Site{site}}, Options{})

	tests := []struct {
		path   string
		status int // without credentials
	}{
		{"/admin/secret", 401},
		{"//admin/secret", 401},
		{"///admin//secret", 401},
		{"/./admin/secret", 401},
		{"/x/../admin/secret", 401},
		{"/x/%2e%2e/admin/secret", 401},
		{"/x/%2E./admin/secret", 401},
		{"/%61dmin/secret", 401},
		{"/admin/./secret", 401},
		{"/admin/x/../secret", 401},
		{"/%2e%2e/admin/secret", 400},
		{"/../admin/secret", 400},
		{"/x%2f..%2fadmin/secret", 400},
		{"/x\\..\\admin/secret", 400},
		{"http://s//admin/secret", 401}, // absolute form
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req := "GET " + tt.path + " HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"
			resp, body := raw(t, addr, req)
			if strings.Contains(body, "SECRET") || resp.StatusCode != tt.status {
				t.Fatalf("without credentials: %d %q, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status != 401 {
				return
			}
			before := logLines(accessLog)
			authed := "GET " + tt.path + " HTTP/1.1\r\nHost: s\r\nAuthorization: Basic YWRtaW46cHc=\r\nConnection: close\r\n\r\n"
			resp, body = raw(t, addr, authed)
			if resp.StatusCode != 200 || body != "SECRET" {
				t.Fatalf("with credentials: %d %q", resp.StatusCode, body)
			}
			// nginx logs its request line: it must be the normalised path.
			var lines []string
			testutil.Eventually(t, 5*time.Second, "nginx logs the request", func() bool {
				lines = logLines(accessLog)
				return len(lines) > len(before)
			})
			if got := lines[len(before)]; !strings.Contains(got, `"GET /admin/secret HTTP/1.1"`) {
				t.Fatalf("nginx was asked: %s", got)
			}
		})
	}
	t.Run("public still public", func(t *testing.T) {
		if resp, body := raw(t, addr, "GET //./ HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"); resp.StatusCode != 200 || body != "PUBLIC" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
}

func logLines(path string) []string {
	b, _ := os.ReadFile(path)
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
