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

	q := func(s string, args ...any) string { return fmt.Sprintf(s, args...) }
	// survivesPolls holds that the element sel finds is the same element
	// after more than two polls of the page: a button redrawn under the
	// pointer between mousedown and mouseup loses its click, and one
	// redrawn under the keyboard loses its focus.
	survivesPolls := func(what, sel string) {
		t.Helper()
		var found bool
		eval(q(`(window.__kept = document.querySelector(%q), !!window.__kept)`, sel), &found)
		if !found {
			t.Fatalf("%s: nothing matches %s", what, sel)
		}
		time.Sleep(2500 * time.Millisecond)
		var same bool
		eval(q(`window.__kept.isConnected && window.__kept === document.querySelector(%q)`, sel), &same)
		if !same {
			t.Errorf("%s: %s was replaced by a poll that changed nothing it shows", what, sel)
		}
	}
	survivesPolls("a node's button", `#nodes li[data-node="ovh1"] button[data-select="node:ovh1"]`)
	// waitJS polls a JavaScript condition until it holds, within a bound.
	waitJS := func(what, expr string) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			var ok bool
			eval("!!("+expr+")", &ok)
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 45 s: %s", what, expr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Keyboard: Tab from the top reaches every node and every edge of the
	// drawing, each once per round, in the order of the drawing.
	var want struct{ Nodes, Edges int }
	eval(`({nodes: document.querySelectorAll("#svg g[data-node]").length, edges: document.querySelectorAll("#svg path[data-kind]").length})`, &want)
	if want.Nodes < len(l.m.Nodes) || want.Edges == 0 {
		t.Fatalf("drawing has %d nodes and %d edges", want.Nodes, want.Edges)
	}
	eval(`(document.activeElement && document.activeElement.blur(), window.scrollTo(0, 0), true)`, new(bool))
	focusedNodes, focusedEdges := map[string]bool{}, map[string]bool{}
	for i := 0; i < want.Nodes+want.Edges+10 && (len(focusedNodes) < want.Nodes || len(focusedEdges) < want.Edges); i++ {
		wait("tab", chromedp.KeyEvent("\t"))
		var f struct{ Node, Edge string }
		eval(`({node: document.activeElement.dataset.node || "", edge: document.activeElement.dataset.edge || ""})`, &f)
		if f.Node != "" {
			focusedNodes[f.Node] = true
		}
		if f.Edge != "" {
			focusedEdges[f.Edge] = true
		}
	}
	if len(focusedNodes) != want.Nodes || len(focusedEdges) != want.Edges {
		t.Errorf("Tab reached %d of %d nodes and %d of %d edges", len(focusedNodes), want.Nodes, len(focusedEdges), want.Edges)
	}
	// Enter on a focused node selects it.
	wait("Enter on a node", chromedp.KeyEvent("\r"))
	waitJS("the focused thing's details", `!document.getElementById("detail").hidden`)

	// Contrast: every text of the page against the background it is drawn
	// on, from computed styles, meets WCAG AA (4.5:1).
	var lowContrast []string
	eval(fmt.Sprintf(contrastJS, contrastOfDrawing), &lowContrast)
	unexpected := lowContrast
	if len(unexpected) > 0 {
		t.Errorf("text below 4.5:1 contrast: %v", unexpected)
	}

	// Select the tunnel docker-prod reaches MongoDB by, in the drawing,
	// by keyboard: its details and what its loss would cost.
	wait("select tunnel mongodb-ovh", chromedp.Focus(chromedp.CSS(`#svg path[data-kind="tunnel"][data-names~="mongodb-ovh"]`)), chromedp.KeyEvent("\r"))
	waitJS("the edge's details", `document.getElementById("detail").dataset.kind`)
	eval(`(() => { const b = document.querySelector('#detail button[data-select="tunnel:mongodb-ovh"]'); if (b) b.click(); return true })()`, new(bool))
	waitJS("tunnel mongodb-ovh's details", `document.getElementById("detail").dataset.kind === "tunnel" && document.getElementById("detail").dataset.name === "mongodb-ovh"`)
	waitJS("its listeners and probes", `[...document.querySelectorAll("#detail td")].some(e => e.textContent.includes("tunnel mongodb-ovh entrance")) && [...document.querySelectorAll("#detail li")].some(e => e.textContent.includes("tunnel/mongodb-ovh"))`)
	waitJS("if it goes down, docker-prod loses mongodb", `[...document.querySelectorAll("#impact li")].some(e => e.textContent.includes("docker-prod -> mongodb"))`)
	var heading string
	eval(`[...document.querySelectorAll("#detail h2")].map(e => e.textContent).join(" | ")`, &heading)
	if !strings.Contains(heading, "If tunnel mongodb-ovh goes down") {
		t.Errorf("tunnel detail headings: %s", heading)
	}

	// A site, from the list: its probes from the internet with the
	// certificate's expiry.
	wait("select a site", chromedp.Click(chromedp.CSS(`#nodes button[data-select^="site:"]`)))
	waitJS("the site's details", `document.getElementById("detail").dataset.kind === "site" && document.querySelector("#impact li")`)

	// Stall a replica with its button: it turns stale (in words, in the
	// list and on its line), and resumes.
	var replica string
	eval(`(document.querySelector('#replicas li[data-stale="false"] button[data-drill$="/stall"]') || {dataset: {}}).dataset.drill || ""`, &replica)
	if replica == "" {
		t.Fatal("no replica with a stall button")
	}
	replica = strings.TrimSuffix(strings.TrimPrefix(replica, "replicas/"), "/stall")
	wait("stall "+replica, chromedp.Click(chromedp.CSS(q(`button[data-drill="replicas/%s/stall"]`, replica))))
	waitJS("replica stale in the list", q(`document.querySelector('#replicas li[data-replica=%q][data-stale="true"]') && document.querySelector('#replicas li[data-replica=%q]').textContent.includes("⚠ stale")`, replica, replica))
	var drawnStale bool
	eval(q(`!document.querySelector('#svg path[data-kind="replica"][data-names~=%q]') || !!document.querySelector('#svg path[data-kind="replica"][data-names~=%q].stale')`, replica, replica), &drawnStale)
	if !drawnStale {
		t.Errorf("replica %s stale but its line is not marked", replica)
	}
	// Its lag grows with every poll; its resume button stays the same.
	survivesPolls("a stale replica's resume button", q(`button[data-drill="replicas/%s/resume"]`, replica))
	wait("select it", chromedp.Click(chromedp.CSS(q(`#replicas button[data-select="replica:%s"]`, replica))))
	waitJS("its lag against max_lag", `document.querySelector('#detail [data-replica-state="stale"]') && document.querySelector('#detail').textContent.includes("max_lag")`)
	wait("resume "+replica, chromedp.Click(chromedp.CSS(q(`button[data-drill="replicas/%s/resume"]`, replica))))
	waitJS("replica fresh again", q(`document.querySelector('#replicas li[data-replica=%q][data-stale="false"]')`, replica))
	checkConsole("selections and replica drill")

	ct101 := ""
	for _, n := range l.m.Nodes {
		if n.Guest != nil && n.Guest.ID == 101 && n.Host != nil && n.Host.Name == "ovh1" {
			ct101 = n.Name
		}
	}
	if ct101 == "" {
		t.Fatal("no CT 101 on ovh1 in the example")
	}
	wait("take ovh1 down", chromedp.Click(chromedp.CSS(`button[data-drill="nodes/ovh1/down"]`)),
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
		// The tour by Tab scrolled the drawing: show it from its top.
		eval(`(document.getElementById("map").scrollTo(0, 0), window.scrollTo(0, 0), true)`, new(bool))
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
		chromedp.Click(chromedp.CSS(`button[data-drill="nodes/ovh1/up"]`)),
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

// contrastOfDrawing says whether the contrast check covers the drawing's
// own text (topology/svg.go) besides the page's and the marks the page adds.
const contrastOfDrawing = true

// contrastJS lists the texts whose colour is below 4.5:1 (WCAG AA) against
// what they are drawn on, from computed styles: for HTML, the nearest
// ancestor with a background colour; for the drawing's text, the topmost
// filled shape under the text's centre (elementsFromPoint), else the page.
const contrastJS = `(() => {
  const drawing = %t;
  const rgb = s => { const m = s && s.match(/[\d.]+/g); return m && m.length >= 3 ? m.map(Number) : null; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const htmlBg = e => {
    for (let n = e; n && n.nodeType === 1; n = n.parentElement) {
      if (n.namespaceURI === "http://www.w3.org/2000/svg") continue;
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c && (c.length < 4 || c[3] > 0)) return c;
    }
    return [255, 255, 255];
  };
  // The drawing's background of a text: the last filled rect or circle
  // before it in paint order whose box holds the text's centre (boxes from
  // getBoundingClientRect, which works off screen too).
  const shapes = [...document.querySelectorAll("#svg rect, #svg circle, #svg ellipse")].map(u => ({u, b: u.getBoundingClientRect()}));
  const svgBg = e => {
    const b = e.getBoundingClientRect();
    const x = b.left + b.width / 2, y = b.top + b.height / 2;
    let best = null;
    for (const {u, b: r} of shapes) {
      if (x < r.left || x > r.right || y < r.top || y > r.bottom) continue;
      if (!(u.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING)) continue;
      const cs = getComputedStyle(u);
      const c = rgb(cs.fill);
      if (c && cs.fill !== "none" && +cs.fillOpacity >= 0.5 && +cs.opacity > 0 && cs.display !== "none") best = c;
    }
    return best || htmlBg(e.ownerSVGElement || e);
  };
  const out = [];
  for (const e of document.querySelectorAll("body *")) {
    if (![...e.childNodes].some(c => c.nodeType === 3 && c.textContent.trim())) continue;
    if (e.closest("[hidden]") || e.closest("title") || e.closest("style") || e.closest("script")) continue;
    if (!drawing && e.closest("#svg") && !e.classList.contains("mark")) continue;
    const cs = getComputedStyle(e);
    if (cs.visibility === "hidden" || cs.display === "none") continue;
    const b = e.getBoundingClientRect();
    if (b.width === 0 || b.height === 0) continue;
    const svg = e.namespaceURI === "http://www.w3.org/2000/svg";
    const fg = rgb(svg ? cs.fill : cs.color);
    if (!fg) continue;
    const r = ratio(fg, svg ? svgBg(e) : htmlBg(e));
    if (r < 4.5) out.push(e.textContent.trim().slice(0, 40) + " " + r.toFixed(2));
  }
  return [...new Set(out)].slice(0, 40);
})()`
