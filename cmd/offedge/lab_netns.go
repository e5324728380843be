package main

import (
	"context"
	"fmt"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/offedge/offedge/lab"
)

// labNetns is `offedge lab --netns`: the inventory in network namespaces,
// every node's offedge run in its own, until Ctrl-C (or --for); the
// namespaces are removed on exit, and at the next start if this one is
// killed.
func labNetns(e *env, inv string, opts lab.NetnsOptions, status string, verbose bool, d time.Duration) error {
	m, err := loadInventory(inv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if inv != "" {
		// The node processes load the same inventory, from wherever they run.
		if inv, err = filepath.Abs(inv); err != nil {
			return err
		}
	}
	opts.Inventory = inv
	if verbose {
		opts.Log = e.stderr // every node's log lines, prefixed by its name
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	l, err := lab.StartNetns(startCtx, m, opts)
	cancel()
	if err != nil {
		return err
	}
	defer l.Close()
	readyCtx, cancelReady := context.WithTimeout(ctx, 60*time.Second)
	l.WaitReady(readyCtx)
	cancelReady()
	w := e.stdout
	fmt.Fprintf(w, "mode: network namespaces (%s<node>), started in %s: every node holds its inventory addresses, routes and NAT, and runs offedge run --firewall inside its namespace; a visitor on the internet is %s and %s in %svisitor.\n",
		l.Prefix(), l.StartupTime().Round(time.Millisecond), lab.VisitorV4, lab.VisitorV6, l.Prefix())
	if status != "" {
		// In this namespace: the lab reaches each node's admin endpoint
		// from inside its namespace, the page is the machine's.
		a, err := l.ServeStatus(ctx, status)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "status page and dashboard: http://%s/ (every node's own offedge run, through its admin endpoint; POST /api/nodes/NAME/down|up|stop|start)\n", a)
	}
	fmt.Fprintf(w, `
Try (each line runs inside one node's namespace):
  ip netns exec %[1]svisitor curl -sk https://world.openfoodfacts.org/ --resolve world.openfoodfacts.org:443:213.36.253.206
  ip netns exec %[1]sdocker-prod redis-cli -h 10.1.0.113 ping            # through the tunnel to off2's redis
  ip netns exec %[1]sovh3 socat - TCP:213.36.253.208:6379,connect-timeout=2  # dropped by off2's firewall
  ip netns exec %[1]soff1 socat - TCP:146.59.148.140:26                    # PMG through ovh1's DNAT
  ip netns exec %[1]sovh1 nft list table inet offedge                      # the firewall offedge run applied
  ip netns exec %[1]soff1 curl -s http://127.0.0.1:9901/status             # a node's admin endpoint
  offedge firewall diff --node off2 --netns /run/netns/%[1]soff2
`, l.Prefix())
	if d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	} else {
		<-ctx.Done()
	}
	fmt.Fprintln(e.stderr, "offedge lab: stopping the nodes and removing the namespaces")
	return nil
}
