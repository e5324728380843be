package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/observe"
)

// cmdExportPrometheus writes the scrape configuration, alert rules and
// Alertmanager inhibit rules for the inventory.
func cmdExportPrometheus(e *env, args []string) error {
	fs := e.newFlags("export prometheus")
	inv := inventoryFlag(fs)
	out := fs.String("out", "", "directory to write prometheus.yml, offedge-scrape.yml, offedge-rules.yml and alertmanager.yml into (required)")
	from := fs.String("from", "", "the node Prometheus runs on: targets are the addresses it reaches each node at (default: the inventory's first monitoring: node, else node names resolved by DNS)")
	port := fs.Int("admin-port", 9901, "port of every node's admin endpoint (offedge run --admin)")
	internet := fs.String("internet-target", "", "HOST:PORT of the internet-side prober's metrics (offedge probe --serve)")
	am := fs.String("alertmanager", "", "HOST:PORT of the Alertmanager Prometheus notifies")
	nodeFor := fs.Duration("node-down-for", time.Minute, "how long a node is unscraped before OffedgeNodeDown fires")
	probeFor := fs.Duration("probe-for", 2*time.Minute, "how long a probe fails before its alert fires (longer than --node-down-for, so causes inhibit consequences)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("offedge export prometheus --out DIR: unexpected %q", pos[0])
	}
	if *out == "" {
		return usageError("--out is required")
	}
	if *port < 1 || *port > 65535 {
		return usageError("--admin-port %d is not in 1-65535", *port)
	}
	m, err := loadInventory(*inv)
	if err != nil {
		return err
	}
	if *from == "" {
		if mons := m.MonitoringNodes(); len(mons) > 0 {
			*from = mons[0].Name
		}
	}
	targets, err := adminTargets(e, m, *from, *port)
	if err != nil {
		return err
	}
	opts := observe.ExportOptions{Targets: targets, InternetTarget: *internet, NodeDownFor: *nodeFor, ProbeFor: *probeFor}
	if *am != "" {
		opts.Alertmanagers = []string{*am}
	}
	files, err := observe.Export(m, observe.Generate(m), opts)
	if err != nil {
		return err
	}
	if err := files.Write(*out); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s/{%s,%s,%s,%s}: %d scrape jobs\n", *out, observe.PrometheusFile, observe.ScrapeFile,
		observe.RulesFile, observe.AlertmanagerFile, len(targets)+min(len(*internet), 1))
	return nil
}

// adminTargets says where Prometheus scrapes each node: the address the
// node from reaches it at, or its name.
func adminTargets(e *env, m *inventory.Model, from string, port int) (map[string]string, error) {
	out := map[string]string{}
	if from == "" {
		for _, n := range m.Nodes {
			out[n.Name] = net.JoinHostPort(n.Name, fmt.Sprint(port))
		}
		return out, nil
	}
	src := m.Node(from)
	if src == nil {
		return nil, usageError("--from: unknown node %q", from)
	}
	for _, n := range m.Nodes {
		t, ok := m.Reach(src, n, port, nil, true)
		if !ok {
			fmt.Fprintf(e.stderr, "note: %s has no network path to %s; it is not scraped\n", from, n.Name)
			continue
		}
		out[n.Name] = t.Addr.String()
	}
	return out, nil
}

// cmdProbe runs the generated probes once and prints their results.
func cmdProbe(e *env, args []string) error {
	fs := e.newFlags("probe")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "run the probes of this node (this machine is that node); default: the internet-side probes")
	lab := fs.String("lab", "", "ask the lab at this status `ADDR` (offedge lab --status) to run the probes from their own vantage points")
	admin := fs.String("admin", "", "print the latest results of the node running at this admin `ADDR` (offedge run --admin), from its own vantage point")
	serve := fs.String("serve", "", "keep running the probes on a schedule and serve their metrics on `ADDR` (GET /metrics): the internet-side prober Prometheus scrapes")
	interval := fs.Duration("interval", observe.DefaultInterval, "with --serve, how often each probe runs")
	format := fs.String("format", "text", "output format: text or json")
	timeout := fs.Duration("timeout", observe.DefaultTimeout, "timeout of each probe")
	list := fs.Bool("list", false, "list the probes without running them")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("offedge probe: unexpected %q", pos[0])
	}
	if *format != "text" && *format != "json" {
		return usageError("--format must be text or json, not %q", *format)
	}
	var results []observe.Result
	switch {
	case *lab != "" && *admin != "":
		return usageError("--lab and --admin are exclusive")
	case *lab != "":
		results, err = fetchResults("http://"+strings.TrimPrefix(*lab, "http://")+"/api/probes", *node)
		if err != nil {
			return fmt.Errorf("asking the lab: %w", err)
		}
	case *admin != "":
		results, err = fetchResults("http://"+strings.TrimPrefix(*admin, "http://")+"/probes", "")
		if err != nil {
			return fmt.Errorf("asking the node: %w", err)
		}
	default:
		m, err := loadInventory(*inv)
		if err != nil {
			return err
		}
		vantage := *node
		if vantage == "" {
			vantage = observe.Internet
		} else if m.Node(vantage) == nil {
			return usageError("--node: unknown node %q", vantage)
		}
		probes := observe.For(observe.Generate(m), vantage)
		if *list {
			for _, p := range probes {
				results = append(results, observe.Result{Probe: p})
			}
			return writeProbes(e.stdout, *format, results, true)
		}
		pr := observe.NewProber(probes, observe.NetDialer{}, observe.ProberOptions{Interval: *interval, RunOptions: observe.RunOptions{Timeout: *timeout}})
		if *serve != "" {
			return serveProbes(e, pr, *serve)
		}
		results = pr.RunOnce(context.Background())
	}
	if err := writeProbes(e.stdout, *format, results, *list); err != nil {
		return err
	}
	if failed := countFailed(results); failed > 0 && !*list {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d probes failed", failed, len(results)-countSkipped(results))}
	}
	return nil
}

func countFailed(rs []observe.Result) int {
	n := 0
	for _, r := range rs {
		if !r.Success && r.Skipped == "" {
			n++
		}
	}
	return n
}

func countSkipped(rs []observe.Result) int {
	n := 0
	for _, r := range rs {
		if r.Skipped != "" {
			n++
		}
	}
	return n
}

// fetchResults reads probe results as JSON from a lab or a running node.
func fetchResults(u, node string) ([]observe.Result, error) {
	if node != "" {
		u += "?node=" + url.QueryEscape(node)
	}
	c, err := adminClient(2 * time.Minute)
	if err != nil {
		return nil, err
	}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s answered %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	var out []observe.Result
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", u, err)
	}
	return out, nil
}

// serveProbes runs the probes on their schedule and serves their metrics
// and latest results until SIGINT or SIGTERM.
func serveProbes(e *env, pr *observe.Prober, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--serve: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", observe.Handler(observe.NewRegistry(observe.NodeOptions{Prober: pr, GoRuntime: true})))
	mux.HandleFunc("GET /probes", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(pr.Results())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go srv.Serve(ln)
	fmt.Fprintf(e.stderr, "offedge probe: %d probes, metrics on http://%s/metrics\n", len(pr.Probes()), ln.Addr())
	pr.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func writeProbes(w io.Writer, format string, rs []observe.Result, listOnly bool) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if listOnly {
			ps := make([]observe.Probe, len(rs))
			for i, r := range rs {
				ps[i] = r.Probe
			}
			return enc.Encode(ps)
		}
		return enc.Encode(rs)
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	if listOnly {
		fmt.Fprintln(tw, "PROBE\tFROM\tPROTOCOL\tTARGET\tVIA")
		for _, r := range rs {
			p := r.Probe
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.From, p.Protocol, p.Target(), p.Via)
		}
		return tw.Flush()
	}
	fmt.Fprintln(tw, "RESULT\tPROBE\tFROM\tPROTOCOL\tTARGET\tTIME\tREASON")
	for _, r := range rs {
		p := r.Probe
		res, reason := "ok", ""
		switch {
		case r.Skipped != "":
			res, reason = "-", "not run: "+r.Skipped
		case !r.Success:
			res, reason = "FAIL", r.Reason+": "+r.Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", res, p.Name, p.From, p.Protocol, p.Target(), r.Duration.Round(time.Millisecond), reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d probes, %d failed", len(rs), countFailed(rs))
	if n := countSkipped(rs); n > 0 {
		fmt.Fprintf(w, ", %d not run (their node is down)", n)
	}
	fmt.Fprintln(w)
	return nil
}
