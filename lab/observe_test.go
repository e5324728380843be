package lab

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/observe"
)

// TestLabProbes: every generated probe passes on the lab; with ovh1 down,
// exactly the probes whose causes (offedge impact) include ovh1 fail, each
// with a reason; with ovh1 back, every probe passes again.
func TestLabProbes(t *testing.T) {
	l := startOFF(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := l.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	allGreen := func(when string) {
		t.Helper()
		res, err := l.RunProbes(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(l.Probes()) {
			t.Errorf("%s: %d results for %d probes", when, len(res), len(l.Probes()))
		}
		for _, r := range res {
			if !r.Success {
				t.Errorf("%s: %s from %s: %s: %s", when, r.Probe.Name, r.Probe.From, r.Reason, r.Detail)
			}
		}
	}
	allGreen("before the drill")
	// The scheduled probes (every 30s by default, the first within one
	// interval) are not awaited here; RunProbes recorded its results as
	// the current state.
	if got := len(l.ProbeResults()); got != len(l.Probes()) {
		t.Errorf("ProbeResults has %d results, want one per probe (%d)", got, len(l.Probes()))
	}

	// Every node's metrics endpoint: its runtime's counters and its probes.
	targets, _ := l.MetricsTargets()
	for node, wants := range map[string][]string{
		"off1": {`offedge_certificate_not_after_seconds{certificate="`, `offedge_http_route_requests_total{code="2xx",route="/",site="off"}`,
			`offedge_conn_connections_total{kind="tunnel-entrance",listener="tunnel off-query entrance"}`, `offedge_probe_success{`},
		"off2":        {`offedge_conn_bytes_total{direction="up",kind="tunnel-exit"`, `offedge_plan_info{hash="`},
		"docker-prod": {`offedge_probe_success{from="docker-prod",kind="service",object="mongodb"`},
	} {
		resp, err := http.Get("http://" + targets[node] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range wants {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s's metrics lack %s", node, w)
			}
		}
	}

	causes, err := observe.NewCauses(l.Model())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Down("ovh1"); err != nil {
		t.Fatal(err)
	}
	res, err := l.RunProbes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, r := range res {
		if l.IsDown(r.Probe.From) != (r.Skipped != "") {
			t.Errorf("%s from %s (down: %v): skipped %q", r.Probe.Name, r.Probe.From, l.IsDown(r.Probe.From), r.Skipped)
		}
		if r.Skipped != "" {
			continue
		}
		predicted := slices.Contains(causes.Probe(r.Probe), "ovh1")
		if r.Success == predicted {
			t.Errorf("with ovh1 down, %s from %s: success=%v (%s %s), but impact predicts lost=%v", r.Probe.Name, r.Probe.From, r.Success, r.Reason, r.Detail, predicted)
		}
		if !r.Success {
			failed++
			if r.Reason != observe.ReasonConnect && r.Reason != observe.ReasonTimeout && r.Reason != observe.ReasonTLS {
				t.Errorf("%s failed with reason %q (%s), want connect (a node down)", r.Probe.Name, r.Reason, r.Detail)
			}
		}
	}
	if failed == 0 {
		t.Fatal("no probe failed with ovh1 down; the drill checks nothing")
	}
	t.Logf("with ovh1 down: %d probes, %d failed", len(res), failed)
	if len(res) != len(l.Probes()) {
		t.Errorf("%d results with ovh1 down, want one per probe (%d), run or skipped", len(res), len(l.Probes()))
	}
	for _, want := range []string{"service/docker-prod/mongodb", "site/blog.openfoodfacts.org", "forward/pmg-smtp", "tunnel/influxdb-moji"} {
		i := slices.IndexFunc(res, func(r observe.Result) bool { return r.Probe.Name == want })
		if i < 0 || res[i].Success || res[i].Reason != observe.ReasonConnect {
			t.Errorf("with ovh1 down, %s: %+v, want a connect failure", want, res)
		}
	}
	if err := l.Up(ctx, "ovh1"); err != nil {
		t.Fatal(err)
	}
	allGreen("after ovh1 came back")
}
