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

func TestObserveCommands(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"probe list", []string{"probe", "--list"}, 0, "site/www.openfoodfacts.net", ""},
		{"probe list of a node", []string{"probe", "--list", "--node", "docker-prod"}, 0, "service/docker-prod/mongodb", ""},
		{"probe list json", []string{"probe", "--list", "--format", "json", "--node", "ovh-stunnel-client"}, 0, `"tunnel": "mongodb-ovh"`, ""},
		{"probe unknown node", []string{"probe", "--node", "off9"}, 2, "", `unknown node "off9"`},
		{"probe bad format", []string{"probe", "--format", "xml"}, 2, "", "--format must be text or json"},
		{"probe lab unreachable", []string{"probe", "--lab", "127.0.0.1:1"}, 1, "", "asking the lab"},
		{"export prometheus needs out", []string{"export", "prometheus"}, 2, "", "--out is required"},
		{"export prometheus unknown from", []string{"export", "prometheus", "--out", dir, "--from", "nowhere"}, 2, "", `unknown node "nowhere"`},
		{"export prometheus", []string{"export", "prometheus", "--out", dir, "--from", "ovh-monitoring", "--alertmanager", "127.0.0.1:9093"}, 0, "scrape jobs", "has no network path to osm45"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectRun(t, tt.args, tt.code, tt.out, tt.err) })
	}
	b, err := os.ReadFile(filepath.Join(dir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// ovh-monitoring reaches off1 over the internet (its public address),
	// docker-prod on ovh-lan.
	for _, want := range []string{"job_name: offedge-off1", "213.36.253.206:9901", "10.1.0.201:9901", "127.0.0.1:9093"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("prometheus.yml lacks %q:\n%s", want, b)
		}
	}
}

// TestRunMetrics drives the real binary: the admin endpoint serves the
// node's metrics, with the probes the node runs from its vantage point.
func TestRunMetrics(t *testing.T) {
	bin := buildBinary(t)
	appPort := serveRunApp(t)
	_, sitePort, _ := net.SplitHostPort(testutil.FreeAddr(t))
	admin := testutil.FreeAddr(t)
	dir := t.TempDir()
	inv := strings.Replace(fmt.Sprintf(runInventory, appPort, sitePort, "1"),
		"addresses: [{network: lan, ip: 127.0.0.31}]}", "addresses: [{network: lan, ip: 127.0.0.31}], uses: [web]}", 1)
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--node", "edge", "--inventory", dir, "--admin", admin, "--probe-interval", "100ms")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	testutil.WaitTCP(t, admin, 10*time.Second)
	metrics := func() string {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics: %v\nlogs:\n%s", err, logs.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	wants := []string{
		`offedge_probe_success{from="edge",kind="upstream",object="web",probe="upstream/edge/web/service:web",protocol="http"} 1`,
		`offedge_probe_success{from="edge",kind="service",object="web",probe="service/edge/web",protocol="http"} 1`,
		`offedge_listener_connections_total{kind="http",listener="http 127.0.0.31:` + sitePort + `",network="lan"}`,
		`offedge_reloads_total{result="failed"} 0`,
		`offedge_config_last_reload_successful 1`,
		`offedge_plan_generation 1`,
		`offedge_plan_info{hash="`,
		`go_goroutines `,
	}
	var text string
	testutil.Eventually(t, 10*time.Second, "the node's metrics with both probes green", func() bool {
		text = metrics()
		for _, w := range wants {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	})
	out, _, code := run("probe", "--admin", admin)
	if code != 0 || !strings.Contains(out, "upstream/edge/web/service:web") || !strings.Contains(out, "2 probes, 0 failed") {
		t.Fatalf("offedge probe --admin: exit %d\n%s", code, out)
	}

	// A request: counted on its site and route, with its duration.
	req, _ := http.NewRequest("GET", "http://127.0.0.31:"+sitePort+"/x", nil)
	req.Host = "www.example.org"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The request is counted when its handler ends, which may be just
	// after the client has the whole answer (a small body leaves with its
	// head in one writev while the handler runs), as nginx counts in its
	// log phase: the counters are polled for, briefly.
	after := []string{
		`offedge_http_route_requests_total{code="2xx",route="/",site="www"} 1`,
		`offedge_http_route_request_duration_seconds_count{route="/",site="www"} 1`,
		`offedge_http_route_response_bytes_total{route="/",site="www"} 4`,
		`offedge_http_requests_total{code="2xx",listener="http 127.0.0.31:` + sitePort + `"} 1`,
		`offedge_upstream_server_up{server="127.0.0.32:` + appPort + `",upstream="web"} 1`,
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		text = metrics()
		missing := 0
		for _, w := range after {
			if !strings.Contains(text, w) {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, w := range after {
		if !strings.Contains(text, w) {
			t.Errorf("after one request, the metrics lack %s", w)
		}
	}

	// A refused reload is counted: failed_reloads no longer stays 0.
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte("servers: [{name: edge, bogus: true}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, code := run("reload", "--admin", admin); code != 1 {
		t.Fatalf("reload of a broken inventory: exit %d, want 1", code)
	}
	text = metrics()
	for _, w := range []string{`offedge_reloads_total{result="failed"} 1`, `offedge_reloads_total{result="applied"} 0`,
		`offedge_config_last_reload_successful 0`, `offedge_plan_generation 1`} {
		if !strings.Contains(text, w) {
			t.Errorf("after a refused reload, the metrics lack %s", w)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(inv), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _, code := run("reload", "--admin", admin); code != 0 {
		t.Fatalf("reload: exit %d %s", code, out)
	}
	text = metrics()
	for _, w := range []string{`offedge_reloads_total{result="failed"} 1`, `offedge_reloads_total{result="applied"} 1`,
		`offedge_config_last_reload_successful 1`, `offedge_plan_generation 2`} {
		if !strings.Contains(text, w) {
			t.Errorf("after a good reload, the metrics lack %s", w)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}
