package observe

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/offedge/offedge/runtime"
)

type acmeCollector struct{ list []runtime.ACMEStatus }

func (c acmeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descACMENext, descACMEAttempt, descACMESuccess, descACMEFailures, descACMEPending} {
		ch <- d
	}
}
func (c acmeCollector) Collect(ch chan<- prometheus.Metric) { collectACME(ch, c.list) }

// An issued certificate reports its next renewal, last attempt and
// success; one still on its placeholder, failing, reports the failures and
// no success.
func TestACMEMetrics(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0) }
	list := []runtime.ACMEStatus{
		{Name: "acme:images.example", NextRenewal: at(2000), LastAttempt: at(1000), LastSuccess: at(1001)},
		{Name: "acme:new.example", Placeholder: true, NextRenewal: at(1300), LastAttempt: at(1200), Failures: 2, LastError: "connection refused"},
	}
	want := `
# HELP offedge_acme_consecutive_failures Failed attempts to obtain an ACME certificate since its last success (0: the last attempt succeeded or none failed); the reason is in the log and ` + "`offedge certs`" + `.
# TYPE offedge_acme_consecutive_failures gauge
offedge_acme_consecutive_failures{certificate="acme:images.example"} 0
offedge_acme_consecutive_failures{certificate="acme:new.example"} 2
# HELP offedge_acme_last_success_seconds When (Unix time) the node last obtained an ACME certificate; absent until it has since it started.
# TYPE offedge_acme_last_success_seconds gauge
offedge_acme_last_success_seconds{certificate="acme:images.example"} 1001
# HELP offedge_acme_next_renewal_seconds When (Unix time) the node next tries to obtain an ACME certificate: its renewal, or the retry after a failure.
# TYPE offedge_acme_next_renewal_seconds gauge
offedge_acme_next_renewal_seconds{certificate="acme:images.example"} 2000
offedge_acme_next_renewal_seconds{certificate="acme:new.example"} 1300
# HELP offedge_acme_placeholder 1 while an ACME certificate's sites are served its fallback files or a self-signed placeholder (it has not been issued yet), else 0.
# TYPE offedge_acme_placeholder gauge
offedge_acme_placeholder{certificate="acme:images.example"} 0
offedge_acme_placeholder{certificate="acme:new.example"} 1
# HELP offedge_acme_last_attempt_seconds When (Unix time) the node last tried to obtain an ACME certificate (or its account).
# TYPE offedge_acme_last_attempt_seconds gauge
offedge_acme_last_attempt_seconds{certificate="acme:images.example"} 1000
offedge_acme_last_attempt_seconds{certificate="acme:new.example"} 1200
`
	if err := testutil.CollectAndCompare(acmeCollector{list}, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
