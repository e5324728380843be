package observe

import (
	"fmt"
	"strconv"
	"time"

	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/plan"
)

// commonSnapshotRules joins the snapshot GUIDs a replica's target and
// source export (offedge_replica_snapshot_timestamp_seconds, side=target
// and side=source) into the newest common snapshot, and alerts for each
// replica whose two ends are both scraped when they share none: the next
// incremental send cannot run (the 2023-06-08 stall).
func commonSnapshotRules(m *inventory.Model, c *Causes, opts ExportOptions) []rule {
	var alerts []rule
	for _, rp := range m.Replicas {
		if (rp.Kind != "zfs" && rp.Kind != "pvesr") || rp.Source == nil || rp.Target == nil {
			continue
		}
		_, src := opts.Targets[rp.Source.Node]
		_, dst := opts.Targets[rp.Target.Node]
		if !src || !dst {
			continue // one end is not scraped: only the lag is known
		}
		sel := func(side string) string {
			return fmt.Sprintf(`offedge_replica_snapshot_timestamp_seconds{side=%q, replica=%s}`, side, promQuote(rp.Name))
		}
		alerts = append(alerts, rule{
			Alert: AlertReplicaNoCommon,
			Expr: fmt.Sprintf("(count by (replica) (%s) and on (replica) count by (replica) (%s)) unless on (replica) %s",
				sel("source"), sel("target"), RecordCommonSnapshot),
			For: promDuration(opts.StorageFor),
			Labels: withCauses(map[string]string{"severity": "critical", "replica": rp.Name},
				c.label("replica/"+rp.Name)),
			Annotations: map[string]string{
				"summary": fmt.Sprintf("replica %s: %s and %s share no snapshot", rp.Name, rp.Source.Node, rp.Target.Node),
				"description": fmt.Sprintf("No snapshot of %s on %s has the GUID of one of %s on %s: the next incremental send cannot run, and the copy stays as old as it is until it is resynchronised.",
					rp.Target.Path, rp.Target.Node, rp.Source.Path, rp.Source.Node),
				"runbook_url": opts.runbook("offedgereplicanocommonsnapshot"),
			},
		})
	}
	if len(alerts) == 0 {
		return nil
	}
	return append([]rule{
		{Record: RecordCommonSnapshot,
			Expr: `max by (replica) (offedge_replica_snapshot_timestamp_seconds{side="target"} and on (replica, guid) offedge_replica_snapshot_timestamp_seconds{side="source"})`},
		{Record: RecordCommonSnapshotAge, Expr: "time() - " + RecordCommonSnapshot},
	}, alerts...)
}

// storageRules are the capacity, backup and NFS alerts of every scraped
// node's storage section: the plan's, so that the thresholds alerted on
// are the ones `offedge plan` shows.
func storageRules(m *inventory.Model, opts ExportOptions) ruleGroup {
	g := ruleGroup{Name: "offedge-storage"}
	storageFor, trendFor := promDuration(opts.StorageFor), promDuration(opts.TrendFor)
	drift := false
	for _, n := range m.Nodes {
		if _, ok := opts.Targets[n.Name]; !ok {
			continue
		}
		st := plan.StorageOf(m, n.Name)
		if st == nil {
			continue
		}
		for _, p := range st.Pools {
			lv := fmt.Sprintf("{node=%s, pool=%s}", promQuote(n.Name), promQuote(p.Name))
			used := fmt.Sprintf("(100 * offedge_pool_allocated_bytes%s / offedge_pool_size_bytes%s)", lv, lv)
			labels := func(sev string) map[string]string {
				return map[string]string{"severity": sev, "node": n.Name, "pool": p.Name}
			}
			desc := fmt.Sprintf("Pool %s on %s is {{ $value | printf \"%%.1f\" }}%% used (allocated / size, zpool's CAPACITY).", p.Name, n.Name)
			g.Rules = append(g.Rules,
				rule{Alert: AlertPoolSpaceLow, Expr: fmt.Sprintf("%s > %s <= %s", used, pct(p.Warn), pct(p.Critical)), For: storageFor, Labels: labels("warning"),
					Annotations: map[string]string{
						"summary":     fmt.Sprintf("pool %s on %s is above %s%% used", p.Name, n.Name, pct(p.Warn)),
						"description": desc + fmt.Sprintf(" Warning at %s%%, critical at %s%%.", pct(p.Warn), pct(p.Critical)),
						"runbook_url": opts.runbook("offedgepoolspacelow-offedgepoolspacecritical")}},
				rule{Alert: AlertPoolSpaceCritical, Expr: fmt.Sprintf("%s > %s", used, pct(p.Critical)), For: storageFor, Labels: labels("critical"),
					Annotations: map[string]string{
						"summary":     fmt.Sprintf("pool %s on %s is above %s%% used", p.Name, n.Name, pct(p.Critical)),
						"description": desc + " Writes are about to fail: free space now.",
						"runbook_url": opts.runbook("offedgepoolspacelow-offedgepoolspacecritical")}},
				rule{Alert: AlertPoolFillsSoon,
					Expr: fmt.Sprintf("predict_linear(offedge_pool_allocated_bytes%s[%s], %d) >= offedge_pool_size_bytes%s",
						lv, promDuration(lookback(p.FillsWithin)), int64(p.FillsWithin.Seconds()), lv),
					For: trendFor, Labels: labels("warning"),
					Annotations: map[string]string{
						"summary": fmt.Sprintf("pool %s on %s fills within %s at its current growth", p.Name, n.Name, inventory.Duration(p.FillsWithin)),
						"description": fmt.Sprintf("The growth of pool %s on %s over the last %s, extrapolated, reaches its size within %s.",
							p.Name, n.Name, inventory.Duration(lookback(p.FillsWithin)), inventory.Duration(p.FillsWithin)),
						"runbook_url": opts.runbook("offedgepoolfillssoon")}})
		}
		for _, b := range st.Backups {
			if b.MaxAge <= 0 {
				continue // OE508 reports it
			}
			g.Rules = append(g.Rules, rule{Alert: AlertBackupStale,
				Expr: fmt.Sprintf("offedge_backup_newest_file_age_seconds{node=%s, backup=%s} > %d", promQuote(n.Name), promQuote(b.Name), int64(b.MaxAge.Seconds())),
				For:  storageFor, Labels: map[string]string{"severity": "warning", "node": n.Name, "backup": b.Name},
				Annotations: map[string]string{
					"summary":     fmt.Sprintf("backup %s on %s is older than its max_age (%s)", b.Name, n.Name, inventory.Duration(b.MaxAge)),
					"description": fmt.Sprintf("The newest file of %s on %s is {{ $value | humanizeDuration }} old; max_age is %s.", globOf(b), n.Name, inventory.Duration(b.MaxAge)),
					"runbook_url": opts.runbook("offedgebackupstale")}})
		}
		for _, d := range st.Datasets {
			drift = drift || d.NFSDeclared
		}
	}
	if drift {
		g.Rules = append(g.Rules, rule{Alert: AlertNFSExportDrift, Expr: "offedge_nfs_export_drift == 1", For: storageFor,
			Labels: map[string]string{"severity": "critical"},
			Annotations: map[string]string{
				"summary":     "{{ $labels.dataset }} on {{ $labels.node }} is exported over NFS other than declared",
				"description": "sharenfs of {{ $labels.dataset }} on {{ $labels.node }} is {{ $labels.sharenfs }}; the inventory declares {{ $labels.declared }}.",
				"runbook_url": opts.runbook("offedgenfsexportdrift")}})
	}
	return g
}

// lookback is the range the growth is measured over: half the horizon
// (3.5 days for 7: a twice-weekly backup's step falls inside it), at least
// an hour.
func lookback(horizon time.Duration) time.Duration {
	return max(time.Hour, (horizon / 2).Truncate(time.Minute))
}

func pct(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func globOf(b plan.BackupWatch) string {
	if b.Glob == "" {
		return b.Dir
	}
	return b.Dir + "/" + b.Glob
}
