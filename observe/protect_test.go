package observe

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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
