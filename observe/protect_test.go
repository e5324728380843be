package observe

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/protect"
	"github.com/offedge/offedge/runtime"
)

type protectCollector struct{ st runtime.ProtectionStatus }

func (c protectCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range protectDescs {
		ch <- d
	}
}
func (c protectCollector) Collect(ch chan<- prometheus.Metric) { collectProtection(ch, c.st) }

// A dry-run zone's would-be refusals are counted apart from what passed.
func TestProtectionMetrics(t *testing.T) {
	st := runtime.ProtectionStatus{
		Zones: map[string]protect.ZoneStats{"off": {Passed: 10, DryRun: 3, Keys: 2}},
		Jails: map[string]uint64{"off-refused": 1},
		Bans:  protect.BanStats{Bans: 1, Refused: 5},
	}
	want := `
# HELP offedge_limit_requests_total Requests a rate zone counted, by result: passed, delayed (waited for the rate), rejected (429, 503 or closed), dry_run (would have been refused or delayed; passed).
# TYPE offedge_limit_requests_total counter
offedge_limit_requests_total{result="delayed",zone="off"} 0
offedge_limit_requests_total{result="dry_run",zone="off"} 3
offedge_limit_requests_total{result="passed",zone="off"} 7
offedge_limit_requests_total{result="rejected",zone="off"} 0
# HELP offedge_ban_refused_total Connections refused at accept because their client is banned.
# TYPE offedge_ban_refused_total counter
offedge_ban_refused_total 5
# HELP offedge_jail_bans_total Bans a jail made.
# TYPE offedge_jail_bans_total counter
offedge_jail_bans_total{jail="off-refused"} 1
`
	if err := testutil.CollectAndCompare(protectCollector{st}, strings.NewReader(want), "offedge_limit_requests_total", "offedge_ban_refused_total", "offedge_jail_bans_total"); err != nil {
		t.Fatal(err)
	}
}

type cacheBotCollector struct {
	caches map[string]httpedge.CacheStats
	bots   [][]httpedge.BotStats
}

func (c cacheBotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range protectDescs {
		ch <- d
	}
}
func (c cacheBotCollector) Collect(ch chan<- prometheus.Metric) {
	collectCaches(ch, c.caches)
	collectBots(ch, c.bots)
}

// Each cache reports its contents, answers and removals once; a bot rule's
// matches are summed over the listeners serving the site (ports 80 and 443).
func TestCacheAndBotMetrics(t *testing.T) {
	c := cacheBotCollector{
		caches: map[string]httpedge.CacheStats{"off-micro": {Entries: 3, Bytes: 4096, MaxBytes: 100 << 20,
			Results: map[string]uint64{"HIT": 7, "MISS": 3}, Evicted: 1, Inactive: 2}},
		bots: [][]httpedge.BotStats{{{Site: "off", Rule: "stop-crawling", Hits: 2}}, {{Site: "off", Rule: "stop-crawling", Hits: 3}}},
	}
	want := `
# HELP offedge_bot_requests_total Requests a site's bot rule matched (and acted on).
# TYPE offedge_bot_requests_total counter
offedge_bot_requests_total{rule="stop-crawling",site="off"} 5
# HELP offedge_cache_entries Entries the response cache holds.
# TYPE offedge_cache_entries gauge
offedge_cache_entries{cache="off-micro"} 3
# HELP offedge_cache_removed_total Entries removed by reason: evicted (to make room under max_size), inactive (unused for inactive).
# TYPE offedge_cache_removed_total counter
offedge_cache_removed_total{cache="off-micro",reason="evicted"} 1
offedge_cache_removed_total{cache="off-micro",reason="inactive"} 2
# HELP offedge_cache_requests_total Answers of the response cache by result, as X-Cache-Status says it: HIT, MISS, EXPIRED, STALE, UPDATING, BYPASS.
# TYPE offedge_cache_requests_total counter
offedge_cache_requests_total{cache="off-micro",result="HIT"} 7
offedge_cache_requests_total{cache="off-micro",result="MISS"} 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "offedge_bot_requests_total", "offedge_cache_entries", "offedge_cache_removed_total", "offedge_cache_requests_total"); err != nil {
		t.Fatal(err)
	}
}
