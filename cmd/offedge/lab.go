package main

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/offedge/offedge/internal/gcpace"
	"github.com/offedge/offedge/lab"
	"github.com/offedge/offedge/observe"
)

func cmdLab(e *env, args []string) error {
	fs := e.newFlags("lab")
	inv := inventoryFlag(fs)
	dir := fs.String("dir", "", "`DIR` for the lab's files (default: a temporary directory, removed on exit)")
	status := fs.String("status", "127.0.0.1:9900", "`ADDR` of the status page (empty: none)")
	noEngines := fs.Bool("no-engines", false, "use stand-ins even where real engines (redis-server) are installed")
	noPebble := fs.Bool("no-pebble", false, "keep the lab CA's certificates instead of issuing the sites' from a pebble the lab starts (when pebble is installed)")
	verbose := fs.Bool("v", false, "log every listener and denial")
	for64 := fs.Duration("for", 0, "stop after this `DURATION` (default: until Ctrl-C)")
	promDir := fs.String("prometheus", "", "write into `DIR` the Prometheus and Alertmanager files (offedge export prometheus) that scrape this lab's nodes")
	alertmanager := fs.String("alertmanager", "127.0.0.1:9093", "with --prometheus, the `ADDR` of the Alertmanager Prometheus notifies")
	probeInterval := fs.Duration("probe-interval", 0, "how often each probe runs, a `DURATION` (default 30s)")
	instance := fs.Int("instance", 0, "lab instance `N` from 0 to 4: each uses its own loopback ranges, so several labs can run side by side")
	netnsMode := fs.Bool("netns", false, "every node in its own network namespace, with its real addresses, routes, NAT and firewall, running its own offedge run (root); see docs/firewall.md")
	netnsPrefix := fs.String("netns-prefix", lab.NetnsPrefix, "with --netns, the `PREFIX` of the namespaces' names (another prefix runs a second lab beside the first)")
	if err := e.parseNone(fs, args); err != nil {
		return err
	}
	if *netnsMode {
		return labNetns(e, *inv, lab.NetnsOptions{Prefix: *netnsPrefix, Dir: *dir, NoEngines: *noEngines, ProbeInterval: *probeInterval}, *status, *verbose, *for64)
	}
	if *instance < 0 || *instance > 4 {
		return usageError("--instance must be from 0 to 4, not %d", *instance)
	}
	m, err := loadInventory(*inv)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go gcpace.Keep(ctx)
	l, err := lab.Start(ctx, m, lab.Options{Dir: *dir, Logger: log, NoEngines: *noEngines, Instance: *instance, ProbeInterval: *probeInterval, Pebble: !*noPebble})
	if err != nil {
		return err
	}
	defer l.Close()
	// A real PostgreSQL initialises in the background; the tour waits.
	readyCtx, cancelReady := context.WithTimeout(ctx, 60*time.Second)
	l.WaitReady(readyCtx)
	cancelReady()
	statusAddr := ""
	if *status != "" {
		a, err := l.ServeStatus(ctx, *status)
		if err != nil {
			return err
		}
		statusAddr = a.String()
	}
	fmt.Fprintln(e.stdout, "mode: loopback (every node on its own loopback addresses; no root needed). offedge lab --netns runs the kernel's firewall, NAT and routes in network namespaces.")
	if err := l.WriteTour(e.stdout, statusAddr); err != nil {
		return err
	}
	if *promDir != "" {
		opts := l.ExportOptions()
		if *alertmanager != "" {
			opts.Alertmanagers = []string{*alertmanager}
		}
		files, err := observe.Export(m, l.Probes(), opts)
		if err == nil {
			err = files.Write(*promDir)
		}
		if err != nil {
			return fmt.Errorf("--prometheus: %w", err)
		}
		fmt.Fprintf(e.stdout, "\nPrometheus files for this lab in %s: prometheus --config.file=%s/%s; prometheus-alertmanager --config.file=%s/%s\n",
			*promDir, *promDir, observe.PrometheusFile, *promDir, observe.AlertmanagerFile)
	}
	if *for64 > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(*for64):
		}
	} else {
		<-ctx.Done()
	}
	fmt.Fprintln(e.stderr, "offedge lab: stopping")
	return nil
}
