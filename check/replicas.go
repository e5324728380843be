package check

import (
	"strconv"

	"github.com/offedge/offedge/inventory"
	"strings"
	"time"
)

// Replication rules (OE5xx): every copy has somewhere to go and someone
// watching how old it is.
var replicaRules = []checker{
	{
		Rule: Rule{
			ID:       "OE501",
			Title:    "replica without a target",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `A replica says where a dataset is copied to; without a target the inventory claims a copy that does not exist, and offedge impact reports data as replicated when a loss of its node would lose it. Open Food Facts relies on ovh3 holding a copy of all production data.`,
			Example: `replicas:
  - name: products
    kind: zfs
    source: {node: db-host, path: zfs-nvme/off/products}
    schedule: 15m
    max_lag: 7h`,
		},
		run: checkReplicaTarget,
	},
	{
		Rule: Rule{
			ID:       "OE502",
			Title:    "replica without max_lag",
			Severity: Error,
			Since:    "0.1.0",
			Why:      `max_lag is the age of the newest copy beyond which monitoring alerts. In 2023-06 the products replication to ovh3 was stalled for a week, and only failure mails from cron to root said so (docs/reports/2023-06-08-stalled-zfs-sync-off-products.md). A replica with no max_lag has no alert: a stalled copy is found when it is needed.`,
			Example: `replicas:
  - name: products
    kind: zfs
    source: {node: db-host, path: zfs-nvme/off/products}
    target: {node: storage, path: rpool/off/products}
    schedule: 15m`,
		},
		run: checkReplicaLag,
	},
	{
		Rule: Rule{
			ID:       "OE503",
			Title:    "max_lag not longer than the schedule",
			Severity: Warning,
			Since:    "0.1.0",
			Why:      `A copy made every schedule is up to one schedule old just before the next run, plus the run's duration. With max_lag at or below the schedule the alert fires on every healthy cycle, and an alert that always fires is ignored — the way a week of failure mails went unnoticed in 2023-06 (docs/reports/2023-06-08-stalled-zfs-sync-off-products.md). Allow a few missed runs: Open Food Facts' sanoid check alerts at 7h for 15-minute runs.`,
			Example: `replicas:
  - name: products
    kind: zfs
    source: {node: db-host, path: zfs-nvme/off/products}
    target: {node: storage, path: rpool/off/products}
    schedule: 1h
    max_lag: 1h`,
		},
		run: nil, // reported by checkReplicaLag
	},
	{
		Rule: Rule{
			ID:       "OE507",
			Title:    "replica whose ends cannot connect",
			Severity: Error,
			Since:    "0.3.0",
			Why:      `syncoid, rsync and Proxmox replication copy over ssh: the node that runs the copy (the initiator: the target for syncoid and rsync, which pull as Open Food Facts runs them; the source for pvesr, which pushes) connects to the other end's ssh. offedge's firewall admits a replica's initiator on that ssh port, but it cannot make a network path where none exists, nor open an ssh the inventory does not declare: a copy with no way to connect fails at every run, and is only found when the copy is needed (products to ovh3 stalled for a week in 2023-06, docs/reports/2023-06-08-stalled-zfs-sync-off-products.md). The common trap is Moji: osm45 is IPv6-only on the internet, so a server without IPv6 cannot pull from it or be pulled from.`,
			Example: `servers:
  - name: storage
    addresses: [{network: internet, ip: 198.51.100.7}]
    management: [{name: ssh, allow: [policy:operators]}]
  - name: db-host
    addresses: [{network: internet, ip: "2001:db8::5"}]   # IPv6 only
    management: [{name: ssh, allow: [policy:operators]}]
replicas:
  - name: products
    kind: zfs     # syncoid on storage pulls from db-host
    source: {node: db-host, path: zfs-nvme/off/products}
    target: {node: storage, path: rpool/off/products}`,
		},
		run: checkReplicaConnect,
	},
}

// checkReplicaConnect applies OE507: the replica's initiator reaches the
// other end's ssh management entry over some network. The entry's allow
// list is not asked: the firewall admits a replica's initiator on it
// (plan's replicaSSH).
func checkReplicaConnect(p *pass) {
	r := p.ix.reach
	for _, rp := range p.m.Replicas {
		runs, to := rp.Initiators()
		from, dst := p.m.Node(runs), p.m.Node(to)
		if from == nil || dst == nil || from == dst {
			continue
		}
		var ssh *inventory.Management
		for _, mg := range dst.Management {
			if mg.Name == "ssh" && !mg.OutOfBand(dst) {
				ssh = mg
			}
		}
		obj := object("replica", rp.Name)
		related := []Related{{dst.Pos, dst.Name + " is declared here"}}
		switch {
		case ssh == nil && dst.Firewall != nil:
			p.report(rp.Pos, obj, related,
				"%s on %s copies over ssh to %s, whose firewall offedge owns and which declares no ssh management entry: nothing admits the copy; add management: [{name: ssh, allow: [...]}] to %s", rp.Kind, from.Name, dst.Name, dst.Name)
			continue
		case ssh == nil:
			ssh = &inventory.Management{Name: "ssh"} // port 22: the path is still needed
		default:
			related = []Related{{ssh.Pos, dst.Name + "'s ssh"}}
		}
		if _, note, ok := r.ManagementPath(from, dst, ssh); !ok {
			p.report(rp.Pos, obj, related,
				"%s on %s copies over ssh to %s, but has no path to it: %s", rp.Kind, from.Name, dst.Name, note)
		}
	}
}

func checkReplicaTarget(p *pass) {
	for _, r := range p.m.Replicas {
		if r.Target == nil {
			src := ""
			if r.Source != nil {
				src = " of " + r.Source.Node + ":" + r.Source.Path
			}
			p.report(r.Pos, object("replica", r.Name), nil, "has no target: the copy%s goes nowhere; add target: {node: NAME, path: PATH}", src)
		}
	}
}

func checkReplicaLag(p *pass) {
	short := p.as("OE503")
	for _, r := range p.m.Replicas {
		switch {
		case r.MaxLag == 0:
			p.report(r.Pos, object("replica", r.Name), nil, "has no max_lag: nothing alerts when the copy stalls; set max_lag to the age that should page someone")
		case r.Schedule > 0 && r.MaxLag <= r.Schedule:
			short.report(r.Pos, object("replica", r.Name), nil,
				"max_lag %s is not longer than the schedule %s: the alert fires on every healthy cycle; allow a few missed runs", durText(r.MaxLag.D()), durText(r.Schedule.D()))
		}
	}
}

// durText renders a duration as the inventory writes it: 15m, 7h, 1h30m, 2d.
func durText(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
