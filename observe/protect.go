package observe

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/offedge/offedge/runtime"
)

// The node's protections (docs/protection.md): rate zones, jails, the ban
// list, the tarpit.
var (
	descZoneRequests = prometheus.NewDesc("offedge_limit_requests_total", "Requests a rate zone counted, by result: passed, delayed (waited for the rate), rejected (429, 503 or closed), dry_run (would have been refused or delayed; passed).", []string{"zone", "result"}, nil)
	descZoneKeys     = prometheus.NewDesc("offedge_limit_keys", "Keys (clients or classes) a rate zone tracks now.", []string{"zone"}, nil)
	descZoneEvicted  = prometheus.NewDesc("offedge_limit_keys_evicted_total", "Keys a full rate zone forgot (least recently seen first); a zone that evicts often is too small for its traffic.", []string{"zone"}, nil)
	descJailBans     = prometheus.NewDesc("offedge_jail_bans_total", "Bans a jail made.", []string{"jail"}, nil)
	descBans         = prometheus.NewDesc("offedge_bans", "Bans in force on the node (manual and automatic).", nil, nil)
	descBanRefused   = prometheus.NewDesc("offedge_ban_refused_total", "Connections refused at accept because their client is banned.", nil, nil)
	descBanFull      = prometheus.NewDesc("offedge_ban_list_full_total", "Automatic bans dropped because the ban list was full.", nil, nil)
	descBanWrites    = prometheus.NewDesc("offedge_ban_state_writes_total", "Writes of the ban state file (the bans kept across restarts).", nil, nil)
	descBanWriteErrs = prometheus.NewDesc("offedge_ban_state_write_errors_total", "Failed writes of the ban state file: the bans in force would not survive a restart.", nil, nil)
	descTarpit       = prometheus.NewDesc("offedge_tarpit_requests_total", "Requests of the tarpit action, by result: held, or overrun (answered at once: every slot was taken).", []string{"result"}, nil)
)

var protectDescs = []*prometheus.Desc{descZoneRequests, descZoneKeys, descZoneEvicted, descJailBans, descBans, descBanRefused, descBanFull, descBanWrites, descBanWriteErrs, descTarpit}

func collectProtection(ch chan<- prometheus.Metric, p runtime.ProtectionStatus) {
	for name, z := range p.Zones {
		for _, r := range []struct {
			result string
			n      uint64
		}{{"passed", z.Passed - z.DryRun}, {"delayed", z.Delayed}, {"rejected", z.Rejected}, {"dry_run", z.DryRun}} {
			ch <- prometheus.MustNewConstMetric(descZoneRequests, prometheus.CounterValue, float64(r.n), name, r.result)
		}
		ch <- prometheus.MustNewConstMetric(descZoneKeys, prometheus.GaugeValue, float64(z.Keys), name)
		ch <- prometheus.MustNewConstMetric(descZoneEvicted, prometheus.CounterValue, float64(z.Evicted), name)
	}
	for name, n := range p.Jails {
		ch <- prometheus.MustNewConstMetric(descJailBans, prometheus.CounterValue, float64(n), name)
	}
	ch <- prometheus.MustNewConstMetric(descBans, prometheus.GaugeValue, float64(p.Bans.Bans))
	ch <- prometheus.MustNewConstMetric(descBanRefused, prometheus.CounterValue, float64(p.Bans.Refused))
	ch <- prometheus.MustNewConstMetric(descBanFull, prometheus.CounterValue, float64(p.Bans.Full))
	ch <- prometheus.MustNewConstMetric(descBanWrites, prometheus.CounterValue, float64(p.BanState.Writes))
	ch <- prometheus.MustNewConstMetric(descBanWriteErrs, prometheus.CounterValue, float64(p.BanState.WriteErrors))
	ch <- prometheus.MustNewConstMetric(descTarpit, prometheus.CounterValue, float64(p.TarpitHeld), "held")
	ch <- prometheus.MustNewConstMetric(descTarpit, prometheus.CounterValue, float64(p.TarpitOverrun), "overrun")
}
