package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/offedge/offedge/lab"
)

// cmdLabNode is one node of `offedge lab --netns`, started by the lab
// inside the node's network namespace (under `ip netns exec`, so that every
// thread of this process is born in it): the node's applications (the same
// engines and stand-ins as the loopback lab, on the inventory's own
// addresses), then `offedge run` for the node itself — the same code path,
// flags and firewall apply as in production, with its state under the
// lab's directory. It is hidden: nobody runs it by hand.
func cmdLabNode(e *env, args []string) error {
	fs := e.newFlags("__lab-node")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "the `NAME` of the node")
	dir := fs.String("dir", "", "the lab's `DIR`")
	pgDir := fs.String("pg-dir", "", "the `DIR` of PostgreSQL's data (traversable by its user)")
	noEngines := fs.Bool("no-engines", false, "stand-ins only")
	serve := fs.Bool("serve", false, "run offedge run for the node after its applications")
	firewall := fs.Bool("firewall", false, "with --serve: offedge run --firewall")
	probeInterval := fs.Duration("probe-interval", time.Second, "with --serve: offedge run --probe-interval")
	if err := e.parseNone(fs, args); err != nil {
		return err
	}
	if *node == "" || *dir == "" || *pgDir == "" {
		return usageError("--node, --dir and --pg-dir are required")
	}
	m, err := loadInventory(*inv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	sd := notifier{log: log}
	// Signals first: the lab stops a node with SIGTERM at any moment.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	apps, err := lab.StartNodeApps(ctx, m, *node, *dir, *pgDir, *noEngines, log)
	stop()
	if err != nil {
		return err
	}
	defer apps.Close()
	go func() {
		// PostgreSQL initialises in the background; the lab waits for it.
		if err := apps.Ready(context.Background()); err == nil {
			sd.send(lab.NotifyAppsReady)
		}
	}()
	if !*serve {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(sig)
		sd.ready(fmt.Sprintf("node %s: applications only", *node))
		<-sig
		return nil
	}
	runArgs := []string{"--node", *node, "--root", lab.NodeDir(*dir, *node), "--admin", lab.NetnsAdminAddr,
		"--probe-interval", probeInterval.String(), "--drain", "5s"}
	if *inv != "" {
		runArgs = append(runArgs, "--inventory", *inv)
	}
	if *firewall {
		runArgs = append(runArgs, "--firewall")
	}
	return cmdRun(e, runArgs)
}
