package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"

	"github.com/offedge/offedge/inventory"
)

// NetnsAdminAddr is where each node process of a namespace lab serves
// offedge run's admin endpoint, on the node's own loopback inside its
// namespace: the lab reaches it from there, nothing else can.
const NetnsAdminAddr = "127.0.0.1:9901"

// NotifyAppsReady is the notify-socket line a node process of a namespace
// lab sends once its applications accept connections (PostgreSQL
// initialises after the node is READY=1).
const NotifyAppsReady = "OFFEDGE_LAB_APPS=ready"

// NodeDir is the directory of node's files in the lab directory dir: the
// root its plan is compiled with (offedge run --root).
func NodeDir(dir, node string) string { return filepath.Join(dir, "nodes", node) }

// NodeApps are the applications behind one node's services, started by
// that node's process inside its namespace: the loopback lab's engines and
// stand-ins, on the inventory's own addresses.
type NodeApps struct {
	l    *Lab
	apps []*app
	sshd net.Listener
	wg   sync.WaitGroup
}

// SSHBanner is what the lab's stand-in sshd says: replicas are copied over
// ssh (syncoid, rsync, Proxmox replication), and the namespace lab measures
// a replica's path by reaching its peer's port 22.
const SSHBanner = "SSH-2.0-offedge-lab-standin"

// StartNodeApps starts every service of node in m with the lab's files in
// dir, on the addresses the inventory gives them (the caller is in the
// node's namespace). PostgreSQL keeps its data in pgDir/SERVICE (pgDir
// must be traversable by PostgreSQL's user; the caller removes it).
func StartNodeApps(ctx context.Context, m *inventory.Model, node, dir, pgDir string, noEngines bool, log *slog.Logger) (*NodeApps, error) {
	if m.Node(node) == nil {
		return nil, fmt.Errorf("unknown node %q", node)
	}
	// A lab without an address map: nodeMap's identity.
	l := &Lab{m: m, dir: dir, log: log, opts: Options{NoEngines: noEngines}, pgDirs: map[string]string{}}
	for _, s := range m.Services {
		if s.Node == node && s.Protocol == "postgresql" {
			l.pgDirs[s.Name] = filepath.Join(pgDir, s.Name)
		}
	}
	na := &NodeApps{l: l}
	for _, s := range m.Services {
		if s.Node != node {
			continue
		}
		a, err := l.startApp(ctx, s)
		if err != nil {
			na.Close()
			return nil, fmt.Errorf("lab: node %s: service %s: %w", node, s.Name, err)
		}
		na.apps = append(na.apps, a)
	}
	if len(m.ReplicasAt(node)) > 0 { // a replica's source or target
		ln, err := net.Listen("tcp", ":22")
		if err != nil {
			na.Close()
			return nil, fmt.Errorf("lab: node %s: sshd stand-in: %w", node, err)
		}
		na.sshd = ln
		na.wg.Add(1)
		go func() {
			defer na.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s\r\n", SSHBanner)
				c.Close()
			}
		}()
	}
	return na, nil
}

// Ready waits until every application accepts connections (or has failed
// to start, which its label says).
func (na *NodeApps) Ready(ctx context.Context) error {
	for _, a := range na.apps {
		if a.ready == nil {
			continue
		}
		select {
		case <-a.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Status describes the applications.
func (na *NodeApps) Status() []AppStatus {
	var out []AppStatus
	for _, a := range na.apps {
		out = append(out, a.status())
	}
	return out
}

// Close stops the applications (their data stays, for a restart).
func (na *NodeApps) Close() {
	if na.sshd != nil {
		na.sshd.Close()
		na.wg.Wait()
	}
	for _, a := range na.apps {
		a.stop()
	}
	na.apps = nil
}
