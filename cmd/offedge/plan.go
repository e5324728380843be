package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/offedge/offedge/internal/linediff"

	"github.com/offedge/offedge/plan"
)

func cmdPlan(e *env, args []string) error {
	fs := e.newFlags("plan")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "the `NAME` of the node whose plan to print (required)")
	format := fs.String("format", "text", "output format: `text|json`")
	root := fs.String("root", "", "`DIR` prefixed to every file path in the plan")
	diff := fs.Bool("diff", false, "compare with the plan the running node serves (needs --admin): what a reload would change")
	admin := fs.String("admin", "", "admin `ADDR` of the running node, for --diff")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	path, err := inventoryArg(*inv, pos)
	if err != nil {
		return err
	}
	if *node == "" {
		return usageError("--node is required")
	}
	if *format != "text" && *format != "json" {
		return usageError("--format must be text or json, not %q", *format)
	}
	if *diff {
		if *admin == "" {
			return usageError("--diff needs --admin ADDR: the admin endpoint of the running node")
		}
		if *format != "text" {
			return usageError("--diff compares text plans; leave --format out")
		}
		return planDiff(e, path, *node, *admin, plan.Options{Root: *root})
	}
	_, p, err := nodePlan(path, *node, plan.Options{Root: *root})
	if err != nil {
		return err
	}
	// The secrets the plan reads and this machine lacks: run would refuse
	// to start. Said on stderr, so that stdout stays the plan.
	if miss := missingSecrets(p); len(miss) > 0 {
		fmt.Fprintf(e.stderr, "offedge plan: %d secret file(s) of this plan are missing on this machine (offedge run refuses to start without them; create with: offedge secrets init --node %s):\n", len(miss), *node)
		for _, s := range miss {
			fmt.Fprintf(e.stderr, "  missing %s (%s %s)\n", s.Path, s.Kind, strings.Join(s.Uses, ", "))
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	return p.WriteText(e.stdout)
}

// planDiff prints what a reload of the running node would change: the
// plan its admin endpoint serves against the plan the inventory compiles
// to, through the same load, check and compile a reload takes. An
// inventory a reload would refuse is reported as such.
func planDiff(e *env, invPath, node, admin string, opts plan.Options) error {
	c, err := adminClient(30 * time.Second)
	if err != nil {
		return err
	}
	resp, err := c.Get("http://" + admin + "/plan")
	if err != nil {
		return fmt.Errorf("reading the running plan: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the running plan: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reading the running plan: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	running := string(body)
	if !strings.HasPrefix(running, "node "+node+":") {
		first, _, _ := strings.Cut(running, "\n")
		return fmt.Errorf("the node at %s is not %q (its plan says %q)", admin, node, first)
	}
	_, p, err := compileChecked(invPath, node, opts)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("a reload would be refused, and the running plan kept:\n%w", err)}
	}
	var b strings.Builder
	if err := p.WriteText(&b); err != nil {
		return err
	}
	d := linediff.Unified("running ("+admin+")", "inventory", running, b.String(), 3)
	if d == "" {
		fmt.Fprintln(e.stdout, "no changes: a reload would apply nothing")
		return nil
	}
	_, err = fmt.Fprint(e.stdout, d)
	return err
}
