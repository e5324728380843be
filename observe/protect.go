package observe

import (
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	httpedge "github.com/offedge/offedge/edge/http"
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

// The node's response caches (proxy caches and static fallbacks), once
// each, and the bot rules' matches summed over the listeners.
var (
	descCacheEntries  = prometheus.NewDesc("offedge_cache_entries", "Entries the response cache holds.", []string{"cache"}, nil)
	descCacheBytes    = prometheus.NewDesc("offedge_cache_bytes", "Accounted size of the response cache's entries (bodies, kept headers, bookkeeping).", []string{"cache"}, nil)
	descCacheMax      = prometheus.NewDesc("offedge_cache_max_bytes", "The response cache's bound (max_size).", []string{"cache"}, nil)
	descCacheRequests = prometheus.NewDesc("offedge_cache_requests_total", "Answers of the response cache by result, as X-Cache-Status says it: HIT, MISS, EXPIRED, STALE, UPDATING, BYPASS.", []string{"cache", "result"}, nil)
	descCacheRemoved  = prometheus.NewDesc("offedge_cache_removed_total", "Entries removed by reason: evicted (to make room under max_size), inactive (unused for inactive).", []string{"cache", "reason"}, nil)
	descBotRequests   = prometheus.NewDesc("offedge_bot_requests_total", "Requests a site's bot rule matched (and acted on).", []string{"site", "rule"}, nil)
)

var protectDescs = []*prometheus.Desc{descCacheEntries, descCacheBytes, descCacheMax, descCacheRequests, descCacheRemoved, descBotRequests, descZoneRequests, descZoneKeys, descZoneEvicted, descJailBans, descBans, descBanRefused, descBanFull, descBanWrites, descBanWriteErrs, descTarpit}

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

func collectCaches(ch chan<- prometheus.Metric, caches map[string]httpedge.CacheStats) {
	for _, name := range slices.Sorted(maps.Keys(caches)) {
		c := caches[name]
		ch <- prometheus.MustNewConstMetric(descCacheEntries, prometheus.GaugeValue, float64(c.Entries), name)
		ch <- prometheus.MustNewConstMetric(descCacheBytes, prometheus.GaugeValue, float64(c.Bytes), name)
		ch <- prometheus.MustNewConstMetric(descCacheMax, prometheus.GaugeValue, float64(c.MaxBytes), name)
		for _, r := range slices.Sorted(maps.Keys(c.Results)) {
			ch <- prometheus.MustNewConstMetric(descCacheRequests, prometheus.CounterValue, float64(c.Results[r]), name, r)
		}
		ch <- prometheus.MustNewConstMetric(descCacheRemoved, prometheus.CounterValue, float64(c.Evicted), name, "evicted")
		ch <- prometheus.MustNewConstMetric(descCacheRemoved, prometheus.CounterValue, float64(c.Inactive), name, "inactive")
	}
}

// collectBots sums each site's bot rule matches over the listeners that
// serve the site.
func collectBots(ch chan<- prometheus.Metric, all [][]httpedge.BotStats) {
	type key struct{ site, rule string }
	sums := map[key]uint64{}
	for _, bs := range all {
		for _, b := range bs {
			sums[key{b.Site, b.Rule}] += b.Hits
		}
	}
	keys := slices.SortedFunc(maps.Keys(sums), func(a, b key) int {
		if a.site != b.site {
			return strings.Compare(a.site, b.site)
		}
		return strings.Compare(a.rule, b.rule)
	})
	for _, k := range keys {
		ch <- prometheus.MustNewConstMetric(descBotRequests, prometheus.CounterValue, float64(sums[k]), k.site, k.rule)
	}
}
