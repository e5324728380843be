package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/offedge/offedge/lab"
)

// labNetns is `offedge lab --netns`: the inventory in network namespaces,
// until Ctrl-C (or --for); the namespaces are removed on exit, and at the
// next start if this one is killed.
func labNetns(e *env, inv string, d time.Duration) error {
	m, err := loadInventory(inv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	l, err := lab.StartNetns(ctx, m, lab.NetnsOptions{})
	if err != nil {
		return err
	}
	defer l.Close()
	w := e.stdout
	fmt.Fprintf(w, "mode: network namespaces (%s<node>): every node holds its inventory addresses, routes and NAT, and its firewall as offedge run --firewall applies it.\n", lab.NetnsPrefix)
	fmt.Fprintln(w, "Each declared service and listener answers with a greeting naming the address it saw:")
	for _, a := range l.Answers {
		fmt.Fprintf(w, "  %s\n", a)
	}
	fmt.Fprintf(w, `
Try (each line runs inside one node's namespace):
  ip netns exec %[1]sovh-stunnel-client socat - TCP:213.36.253.208:6379   # off2 sees ovh1's NAT address
  ip netns exec %[1]sovh3 socat - TCP:213.36.253.208:6379,connect-timeout=2  # dropped by off2's firewall
  ip netns exec %[1]soff1 socat - TCP:146.59.148.140:26                    # PMG through ovh1's DNAT
  ip netns exec %[1]sovh1 nft list table inet offedge                      # the firewall offedge applied
  offedge firewall diff --node off2 --netns /run/netns/%[1]soff2
`, lab.NetnsPrefix)
	if d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	} else {
		<-ctx.Done()
	}
	fmt.Fprintln(e.stderr, "offedge lab: removing the namespaces")
	return nil
}
