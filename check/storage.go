package check

import (
	"strings"

	"github.com/offedge/offedge/internal/suggest"
	"github.com/offedge/offedge/inventory"
)

// Storage rules (OE504-OE506): replicas name datasets that exist, and NFS
// exports admit only the clients meant.
var storageRules = []checker{
	{
		Rule: Rule{
			ID:       "OE504",
			Title:    "replica of a dataset its node does not declare",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A zfs replica names a dataset on its source and on its target. When the server declares its datasets (storage: datasets:), a replica naming another one is a typo or a dataset that is gone, and the copy it claims does not exist: a misspelt dataset name in the replication configuration left opf unreplicated for six months (2023-12-08), and nothing said so. offedge also measures this at run time (zfs answers "dataset does not exist"), but check says it before the inventory is deployed.`,
			Example: `servers:
  - name: db-host
    storage:
      datasets: [{name: zfs-hdd/opf}]
replicas:
  - name: opf
    kind: zfs
    source: {node: db-host, path: zfs-hdd/opff}
    target: {node: storage, path: rpool/opf}`,
		},
		run: checkReplicaDatasets,
	},
	{
		Rule: Rule{
			ID:       "OE505",
			Title:    "export open to everyone over NFS",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `An NFS export trusts the client's claim of who the user is (with no_root_squash, even root). Exported to "*" or a /0 prefix, a dataset is readable and writable by anything that reaches the server's NFS port: off2 had sharenfs=on, which exports to everyone, on the obf and opf products and images in 2023-06. List the clients that mount it.`,
			Example: `servers:
  - name: storage
    storage:
      datasets:
        - {name: rpool/backups, nfs: ["*"]}`,
		},
		run: checkExports,
	},
	{
		Rule: Rule{
			ID:       "OE506",
			Title:    "dataset inherits an NFS export",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `ZFS children inherit sharenfs: a dataset created under an exported parent is exported to the parent's clients without anyone deciding it (ovh3 exports rpool/backups and the datasets under it share that export by inheritance). A declared dataset under an exported parent must say which it is: it shares the export (nfs_inherit: true), it shares nothing (nfs_off: true, with sharenfs=off set on the host), or it has its own list.`,
			Example: `servers:
  - name: storage
    storage:
      datasets:
        - {name: rpool/backups, nfs: [192.0.2.10]}
        - {name: rpool/backups/secrets}`,
		},
		run: nil, // reported by checkExports
	},
	{
		Rule: Rule{
			ID:       "OE508",
			Title:    "file backup without max_age",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A backup declared as files (vzdump dumps, rclone copies) is watched by the age of its newest file, and max_age is the age that alerts. Without it nothing alerts when the job stops: Proxmox backups failed unnoticed from 2021 to 2022-02, and the failure mails of the stalled products sync in 2023-06 were read by nobody. Say how old the newest file may get.`,
			Example: `servers:
  - name: storage
    storage:
      backups:
        - {name: vzdump, dir: /rpool/backups/dump, glob: "vzdump-*"}`,
		},
		run: checkBackups,
	},
	{
		Rule: Rule{
			ID:       "OE509",
			Title:    "backup max_age not longer than its schedule",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `The newest file of a job run every schedule is up to one schedule old just before the next run, plus the run's duration (a vzdump of every guest takes hours). With max_age at or below the schedule the alert fires on every healthy cycle, and an alert that always fires is ignored. Allow a missed run: twice-weekly Proxmox backups (docs/proxmox.md) with max_age 4d alert when one run is missed.`,
			Example: `servers:
  - name: storage
    storage:
      backups:
        - {name: vzdump, dir: /rpool/backups/dump, schedule: 3d, max_age: 3d}`,
		},
		run: nil, // reported by checkBackups
	},
}

func checkBackups(p *pass) {
	short := p.as("OE509")
	for _, n := range p.m.Nodes {
		if n.Storage == nil {
			continue
		}
		for _, b := range n.Storage.Backups {
			obj := object("backup", n.Name+":"+b.Name)
			switch {
			case b.MaxAge == 0:
				p.report(b.Pos, obj, nil, "has no max_age: nothing alerts when the job stops writing into %s; set max_age to the age of the newest file that should page someone", b.Dir)
			case b.Schedule > 0 && b.MaxAge <= b.Schedule:
				short.report(b.Pos, obj, nil, "max_age %s is not longer than the schedule %s: the alert fires on every healthy cycle; allow a missed run", durText(b.MaxAge.D()), durText(b.Schedule.D()))
			}
		}
	}
}

func checkReplicaDatasets(p *pass) {
	for _, r := range p.m.Replicas {
		if r.Kind != "zfs" {
			continue
		}
		for _, end := range []*inventory.ReplicaEnd{r.Source, r.Target} {
			if end == nil {
				continue
			}
			n := p.m.Node(end.Node)
			if n == nil || n.Storage == nil || n.Storage.Dataset(end.Path) != nil {
				continue
			}
			hint := ""
			if c := suggest.Closest(end.Path, n.Storage.DatasetNames(), 3); c != "" {
				hint = "; did you mean " + c + "?"
			}
			p.report(end.Pos, object("replica", r.Name), []Related{{Pos: n.Storage.Pos, Message: "the datasets of " + n.Name}},
				"names dataset %s on %s, which %s does not declare%s", end.Path, n.Name, n.Name, hint)
		}
	}
}

func checkExports(p *pass) {
	inherit := p.as("OE506")
	for _, n := range p.m.Nodes {
		if n.Storage == nil {
			continue
		}
		for _, d := range n.Storage.Datasets {
			for _, c := range d.NFS {
				if inventory.OpenNFSClient(c) {
					p.report(d.Pos, object("dataset", n.Name+":"+d.Name), nil,
						"is exported over NFS to everyone (%s); list the clients that mount it", c)
				}
			}
			if len(d.NFS) > 0 || d.NFSInherit || d.NFSOff {
				continue
			}
			if parent := n.Storage.ExportedParent(d); parent != nil {
				inherit.report(d.Pos, object("dataset", n.Name+":"+d.Name), []Related{{Pos: parent.Pos, Message: parent.Name + " is exported here"}},
					"inherits the NFS export of %s to [%s]; set nfs_inherit: true if it is meant, nfs_off: true (and sharenfs=off on the host) to share nothing, or its own nfs list",
					parent.Name, strings.Join(parent.NFS, ", "))
			}
		}
	}
}
