package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/offedge/offedge/dashboard"
	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/observe"
	"github.com/offedge/offedge/plan"
)

var (
	offedgeOnce sync.Once
	offedgeBin  string
	offedgeErr  error
	offedgeDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if offedgeDir != "" {
		os.RemoveAll(offedgeDir)
	}
	os.Exit(code)
}

// buildOffedge builds cmd/offedge once for the namespace lab's node
// processes.
func buildOffedge(t *testing.T) string {
	t.Helper()
	offedgeOnce.Do(func() {
		offedgeDir, offedgeErr = os.MkdirTemp("", "offedge-lab-bin-")
		if offedgeErr != nil {
			return
		}
		offedgeBin = filepath.Join(offedgeDir, "offedge")
		out, err := exec.Command("go", "build", "-o", offedgeBin, "github.com/offedge/offedge/cmd/offedge").CombinedOutput()
		if err != nil {
			offedgeErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if offedgeErr != nil {
		t.Fatal(offedgeErr)
	}
	return offedgeBin
}

// requireNetns skips outside root unless in CI, where it fails.
func requireNetns(t *testing.T) {
	t.Helper()
	if err := netns.Available(); err != nil {
		if testutil.InCI() {
			t.Fatalf("%v; CI runs as root", err)
		}
		t.Skip(err)
	}
	testutil.RequireBinary(t, "sysctl")
}

// testPrefix names a test's lab namespaces base + this process's ID + "-"
// after deleting those a killed test process left under base (the node
// namespaces of a lab are deleted by its Close, which a test binary killed
// at its timeout never ran).
func testPrefix(t *testing.T, base string) string {
	t.Helper()
	if err := netns.ReapOrphans(base); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s%d-", base, os.Getpid())
}

// netnsStartBudget is how long the namespace lab may take to start with
// every node ready: about 25 namespaces and veths, one offedge process per
// node deriving its tunnel keys (Argon2id) and applying its firewall, on a
// 2-core CI machine shared with the other packages' tests.
const netnsStartBudget = 60 * time.Second

// startNetnsRuntime starts the Open Food Facts inventory in namespaces,
// every node's offedge run in its own, and removes it all at the end.
func startNetnsRuntime(t *testing.T, prefix string) (*NetnsLab, *testutil.SyncBuffer) {
	t.Helper()
	requireNetns(t)
	testutil.RequireBinary(t, "redis-server")
	testutil.RequireBinary(t, "initdb")
	bin := buildOffedge(t)
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), netnsStartBudget)
	defer cancel()
	l, err := StartNetns(ctx, m, NetnsOptions{Prefix: testPrefix(t, prefix), Dir: t.TempDir(), Binary: bin, Log: logs})
	if err != nil {
		t.Fatalf("%v\nnode logs:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("node logs:\n%s", logs.String())
		}
	})
	t.Logf("namespace lab started in %s (budget %s)", l.StartupTime(), netnsStartBudget)
	return l, logs
}

func (l *NetnsLab) dialSite(ctx context.Context, node string, port int) (net.Conn, error) {
	ap, err := l.SiteAddr(node, port)
	if err != nil {
		return nil, err
	}
	return l.Dial(ctx, "", ap)
}

func (l *NetnsLab) kernelFirewall() bool { return true }

func (l *NetnsLab) nodePlan(node string) *plan.Plan { return l.plans[node] }

// TestNetnsEndToEnd runs the lab's end-to-end checks with every node's
// offedge run in its own namespace, on the inventory's real addresses,
// behind its real firewall.
func TestNetnsEndToEnd(t *testing.T) {
	// In parallel with the other namespace labs (each its own prefix),
	// after the loopback tests: their waits overlap.
	t.Parallel()
	l, _ := startNetnsRuntime(t, "oee")
	if l.StartupTime() > netnsStartBudget {
		t.Errorf("start-up took %s; the budget is %s", l.StartupTime(), netnsStartBudget)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	endToEnd(ctx, t, l)

	t.Run("the lab's status page and dashboard see every node's own offedge run", func(t *testing.T) {
		rec := httptest.NewRecorder()
		l.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/status", nil))
		var sts []NetnsNodeStatus
		if err := json.Unmarshal(rec.Body.Bytes(), &sts); err != nil || len(sts) != len(l.Model().Nodes) {
			t.Fatalf("GET /api/status: %d nodes, %v: %.300s", len(sts), err, rec.Body.String())
		}
		running := 0
		for _, st := range sts {
			if l.procs[st.Node] == nil {
				if st.Process != "none" {
					t.Errorf("%s runs nothing, status says %q", st.Node, st.Process)
				}
				continue
			}
			var rt struct {
				Node      string            `json:"node"`
				Listeners []json.RawMessage `json:"listeners"`
			}
			if st.Process != "running" || json.Unmarshal(st.Runtime, &rt) != nil {
				t.Errorf("%s: process %q, runtime %.200s, error %q", st.Node, st.Process, st.Runtime, st.Error)
				continue
			}
			running++
			if want := len(l.Plan(st.Node).Listeners); rt.Node != st.Node || len(rt.Listeners) != want {
				t.Errorf("%s's offedge run reports node %q with %d listeners; its plan has %d", st.Node, rt.Node, len(rt.Listeners), want)
			}
			var probes []observe.Result
			if err := json.Unmarshal(st.Probes, &probes); err != nil || len(probes) != len(observe.For(observe.Generate(l.Model()), st.Node)) {
				t.Errorf("%s's probes: %d results, %v", st.Node, len(probes), err)
			}
		}
		if running == 0 {
			t.Fatal("no node process answered")
		}
		// Each replica target's offedge run measures its replicas with the
		// zfs it finds on its PATH: the lab's stand-in, seeded fresh.
		for _, n := range l.Model().Nodes {
			st := l.Plan(n.Name).Storage
			if st == nil || len(st.Replicas) == 0 {
				continue
			}
			var up []string
			testutil.Eventually(t, 20*time.Second, n.Name+"'s replicas measured up", func() bool {
				body, err := l.Admin(ctx, n.Name, "/metrics")
				if err != nil {
					return false
				}
				up = nil
				for _, line := range strings.Split(string(body), "\n") {
					if strings.HasPrefix(line, "offedge_replica_up{") && strings.HasSuffix(line, " 1") {
						up = append(up, line)
					}
				}
				return len(up) == len(st.Replicas)
			})
		}
		rec = httptest.NewRecorder()
		l.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/dashboard", nil))
		var dash dashboard.State
		if err := json.Unmarshal(rec.Body.Bytes(), &dash); err != nil || len(dash.Nodes) != len(l.Model().Nodes) || len(dash.Causes) != 0 {
			t.Fatalf("GET /api/dashboard: %v, %d nodes, causes %v", err, len(dash.Nodes), dash.Causes)
		}
		for _, n := range dash.Nodes {
			if n.State != "up" {
				t.Errorf("the dashboard shows %s %s", n.Name, n.State)
			}
		}
	})
}

// hostState is what a namespace lab must leave as it found: this
// namespace's interfaces and nftables tables, and the lab's namespaces.
func hostState(t *testing.T, prefix string) string {
	t.Helper()
	out, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v: %s", err, out)
	}
	names, err := netns.List(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("links %v\ntables %s\nnamespaces %v", links(t), strings.TrimSpace(string(out)), names)
}

// TestNetnsCleanup: a lab that fails to start and a lab that stops leave
// no namespace, interface, nftables table or process behind; a node
// process that dies is restarted, a bounded number of times.
func TestNetnsCleanup(t *testing.T) {
	// In parallel with the other namespace labs (each its own prefix),
	// after the loopback tests: their waits overlap.
	t.Parallel()
	requireNetns(t)
	testutil.RequireBinary(t, "nft")
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prefix := testPrefix(t, "oelc")
	before := hostState(t, prefix)

	t.Run("a node that cannot start: restarted at most 3 times, then everything removed", func(t *testing.T) {
		logs := &testutil.SyncBuffer{}
		ctx, cancel := context.WithTimeout(context.Background(), netnsStartBudget)
		defer cancel()
		l, err := StartNetns(ctx, m, NetnsOptions{Prefix: prefix, Dir: t.TempDir(), Binary: "/bin/false", Log: logs})
		if err == nil {
			l.Close()
			t.Fatal("a lab whose node processes exit at once started")
		}
		if !strings.Contains(err.Error(), "restarted 3 times") {
			t.Errorf("error %q; want the node left down after 3 restarts", err)
		}
		if n := strings.Count(logs.String(), "restart 3 of 3"); n == 0 {
			t.Errorf("no node was restarted 3 times:\n%s", logs.String())
		}
		if after := hostState(t, prefix); after != before {
			t.Errorf("left behind:\n%s\nwas:\n%s", after, before)
		}
	})

	t.Run("a running lab: a killed node comes back; Close removes everything", func(t *testing.T) {
		l, _ := startNetnsRuntime(t, "oelk")
		pid := l.Pids()["off2"]
		if pid == 0 {
			t.Fatal("off2 runs no process")
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			if p := l.Pids()["off2"]; p != 0 && p != pid {
				if err := l.procs["off2"].WaitReady(ctx); err != nil {
					t.Fatal(err)
				}
				break
			}
			select {
			case <-ctx.Done():
				t.Fatal("off2 was not restarted within 30s")
			case <-time.After(20 * time.Millisecond):
			}
		}
		if _, err := l.Admin(ctx, "off2", "/status"); err != nil {
			t.Fatalf("off2 restarted but its admin endpoint: %v", err)
		}
		pids := l.Pids()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for node, pid := range pids {
			if err := syscall.Kill(pid, 0); err == nil {
				t.Errorf("%s's process %d survived Close", node, pid)
			}
		}
		if names, _ := netns.List(fmt.Sprintf("oelk%d-", os.Getpid())); len(names) > 0 {
			t.Errorf("namespaces left: %v", names)
		}
		if after := hostState(t, prefix); after != before {
			t.Errorf("left behind:\n%s\nwas:\n%s", after, before)
		}
	})
}
