package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/inventory"
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
	l, err := StartNetns(ctx, m, NetnsOptions{Prefix: fmt.Sprintf("%s%d-", prefix, os.Getpid()), Dir: t.TempDir(), Binary: bin, Log: logs})
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
	l, _ := startNetnsRuntime(t, "oee")
	if l.StartupTime() > netnsStartBudget {
		t.Errorf("start-up took %s; the budget is %s", l.StartupTime(), netnsStartBudget)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	endToEnd(ctx, t, l)
}
