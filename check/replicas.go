package check

import (
	"strconv"
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
