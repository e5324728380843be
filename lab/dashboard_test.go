package lab

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/offedge/offedge/internal/testutil"
)

var update = flag.Bool("update", false, "copy the dashboard screenshots to docs/")

// TestDashboardInBrowser drives Debian's chromium headless against the lab's
// dashboard: the page loads without console errors, shows every node, and
// the drill buttons take ovh1 down (ovh1 and the sites of CT 101 failed,
// docker-prod's lost MongoDB and Redis marked) and up again (all clear).
// Screenshots at 1400x900 and 800x600 are written to the directory the test
// logs; -update copies them to docs/.
func TestDashboardInBrowser(t *testing.T) {
	chromium := testutil.RequireBinary(t, "chromium")
	l := startOFF(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := l.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	addr, err := l.ServeStatus(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr.(*net.TCPAddr).String() + "/"

	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	var mu sync.Mutex
	var consoleErrors []string
	err = chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				consoleErrors = append(consoleErrors, "console.error: "+strings.Join(args, " "))
			}
		case *cdpruntime.EventExceptionThrown:
			consoleErrors = append(consoleErrors, "exception: "+ev.ExceptionDetails.Text+" "+exceptionText(ev.ExceptionDetails))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				consoleErrors = append(consoleErrors, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsole := func(when string) {
		mu.Lock()
		defer mu.Unlock()
		if len(consoleErrors) > 0 {
			t.Errorf("%s: console errors: %v", when, consoleErrors)
			consoleErrors = nil
		}
	}
	// wait runs the actions with a bound: the page polls every second.
	wait := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(bctx, 45*time.Second)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// eval evaluates a JavaScript expression into out.
	eval := func(expr string, out any) {
		t.Helper()
		c, cancel := context.WithTimeout(bctx, 45*time.Second)
		defer cancel()
		v, err := chromedp.Run(c, chromedp.Evaluate[json.RawMessage](expr))
		if err == nil {
			err = json.Unmarshal(v, out)
		}
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
	}

	wait("load", chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`#nodes li[data-node="ovh1"][data-state="up"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#svg g[data-node="ovh1"]`)))

	var listed, drawn []string
	eval(`[...document.querySelectorAll("#nodes > li")].map(e => e.dataset.node)`, &listed)
	eval(`[...document.querySelectorAll("#svg g[data-node]")].map(e => e.dataset.node)`, &drawn)
	for _, n := range l.m.Nodes {
		if !slices.Contains(listed, n.Name) {
			t.Errorf("node %s is not listed", n.Name)
		}
		if !slices.Contains(drawn, n.Name) {
			t.Errorf("node %s is not drawn", n.Name)
		}
	}
	checkConsole("load")

	ct101 := ""
	for _, n := range l.m.Nodes {
		if n.Guest != nil && n.Guest.ID == 101 && n.Host != nil && n.Host.Name == "ovh1" {
			ct101 = n.Name
		}
	}
	if ct101 == "" {
		t.Fatal("no CT 101 on ovh1 in the example")
	}
	q := func(s string, args ...any) string { return fmt.Sprintf(s, args...) }
	wait("take ovh1 down", chromedp.Click(chromedp.CSS(`button[data-drill="ovh1/down"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#nodes li[data-node="ovh1"][data-state="down"]`)),
		chromedp.WaitReady(chromedp.CSS(`#svg g[data-node="ovh1"].down`)),
		chromedp.WaitReady(chromedp.CSS(q(`#svg g[data-node=%q].host-down`, ct101))),
		chromedp.WaitVisible(chromedp.CSS(q(`#nodes li[data-node=%q][data-state="host-down"]`, ct101))),
		chromedp.WaitVisible(chromedp.CSS(`#nodes li[data-node="docker-prod"][data-state="affected"] li.uses-lost[data-target="mongodb"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#nodes li[data-node="docker-prod"][data-state="affected"] li.uses-lost[data-target="redis"]`)),
		chromedp.WaitReady(chromedp.CSS(`#svg g[data-node="docker-prod"].affected`)),
		// The tunnels docker-prod reaches MongoDB and Redis by are drawn lost.
		chromedp.WaitReady(chromedp.CSS(`#svg path[data-kind="tunnel"][data-names~="mongodb-ovh"].lost`)),
		chromedp.WaitReady(chromedp.CSS(`#svg path[data-kind="tunnel"][data-names~="redis-ovh"].lost`)))
	var sites []struct {
		Name string `json:"name"`
		Lost string `json:"lost"`
	}
	eval(q(`[...document.querySelectorAll('#nodes li[data-node=%q] li.site')].map(e => ({name: e.dataset.site, lost: e.dataset.lost}))`, ct101), &sites)
	if len(sites) == 0 {
		t.Errorf("%s lists no sites", ct101)
	}
	for _, s := range sites {
		if s.Lost != "true" {
			t.Errorf("with ovh1 down, site %s of %s is not shown lost", s.Name, ct101)
		}
	}
	checkConsole("ovh1 down")

	dir := filepath.Join(os.TempDir(), "offedge-dashboard-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wait("select docker-prod", chromedp.Click(chromedp.CSS(`#nodes li[data-node="docker-prod"] button.name`)),
		chromedp.WaitVisible(chromedp.CSS(`#detail h2`)))
	for _, size := range [][2]int64{{1400, 900}, {800, 600}} {
		wait("resize", chromedp.EmulateViewport(size[0], size[1]))
		c, cancel := context.WithTimeout(bctx, 45*time.Second)
		png, err := chromedp.Run(c, chromedp.CaptureScreenshot())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("dashboard-%dx%d.png", size[0], size[1])
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(filepath.Join("..", "docs", name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("screenshots in %s", dir)

	wait("bring ovh1 up", chromedp.EmulateViewport(1400, 900),
		chromedp.Click(chromedp.CSS(`button[data-drill="ovh1/up"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#nodes li[data-node="ovh1"][data-state="up"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#nodes li[data-node="docker-prod"][data-state="up"]`)))
	var marked int
	eval(`document.querySelectorAll("#svg g.down, #svg g.host-down, #svg g.affected, #svg path.lost, #nodes li.uses-lost, #nodes li.site.lost").length`, &marked)
	if marked != 0 {
		t.Errorf("after ovh1 came back, %d elements are still marked failed", marked)
	}
	checkConsole("ovh1 up")
}

func exceptionText(d *cdpruntime.ExceptionDetails) string {
	if d != nil && d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}
