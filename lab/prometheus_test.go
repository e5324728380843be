package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/observe"
)

// waitFor polls cond every 250ms until it reports done, failing the test
// after timeout with the last state cond described.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state:\n%s", timeout, what, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startEngine runs a Debian engine binary until the test ends, its output
// in a log file shown when the test fails.
func startEngine(t *testing.T, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (last 4 KiB):\n%s", filepath.Base(bin), b[max(0, len(b)-4096):])
		}
	})
}

func getJSON(url string, v any) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

func (a amAlert) key() string {
	k := a.Labels["alertname"]
	switch {
	case a.Labels["probe"] != "":
		return k + " probe=" + a.Labels["probe"]
	case a.Labels["object"] != "":
		return k + " from=" + a.Labels["from"] + " object=" + a.Labels["object"]
	}
	return k + " node=" + a.Labels["node"]
}

func alertKeys(as []amAlert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.key()+" ["+a.Status.State+"]")
	}
	sort.Strings(out)
	return out
}

// TestPrometheusEndToEnd starts Debian's Prometheus and Alertmanager on
// loopback with the files offedge exports for the lab: every node is
// scraped; taking ovh1 down with the lab's drill API makes exactly the
// "ovh1 down" alert fire, its consequences listed and the dependent alerts
// inhibited; bringing ovh1 up resolves it; a stopped backend makes its
// probe fail with reason connect; a stalled replica fires
// OffedgeReplicaStale, every replica has a common snapshot with its
// source and a pruned source fires OffedgeReplicaNoCommonSnapshot, and a
// filled pool fires OffedgePoolSpaceCritical.
func TestPrometheusEndToEnd(t *testing.T) {
	prometheus := testutil.RequireBinary(t, "prometheus")
	alertmanager := testutil.RequireBinary(t, "prometheus-alertmanager")
	l := startOFFWith(t, Options{ProbeInterval: time.Second, ProbeTimeout: 2 * time.Second})
	m := l.Model()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := l.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	drill := httptest.NewServer(l.Handler())
	defer drill.Close()

	promAddr, amAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	opts := l.ExportOptions()
	opts.Alertmanagers = []string{amAddr}
	opts.ScrapeInterval, opts.EvaluationInterval = time.Second, time.Second
	opts.NodeDownFor, opts.ProbeFor = time.Second, 3*time.Second
	opts.ReplicaFor, opts.StorageFor = time.Second, time.Second
	files, err := observe.Export(m, l.Probes(), opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := files.Write(dir); err != nil {
		t.Fatal(err)
	}
	startEngine(t, alertmanager, "--config.file="+filepath.Join(dir, observe.AlertmanagerFile),
		"--storage.path="+filepath.Join(dir, "am-data"), "--web.listen-address="+amAddr, "--cluster.listen-address=")
	startEngine(t, prometheus, "--config.file="+filepath.Join(dir, observe.PrometheusFile),
		"--storage.tsdb.path="+filepath.Join(dir, "prom-data"), "--web.listen-address="+promAddr,
		"--rules.alert.resend-delay=1s", "--rules.alert.for-grace-period=1s")

	// Every node and the internet prober scraped, and every probe green.
	targets, _ := l.MetricsTargets()
	waitFor(t, 90*time.Second, "every node scraped and every probe green", func() (bool, string) {
		var tg struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string `json:"labels"`
					Health    string            `json:"health"`
					LastError string            `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON("http://"+promAddr+"/api/v1/targets", &tg); err != nil {
			return false, err.Error()
		}
		var state []string
		up := 0
		for _, a := range tg.Data.ActiveTargets {
			if a.Health == "up" {
				up++
			} else {
				state = append(state, fmt.Sprintf("%s: %s %s", a.Labels["job"], a.Health, a.LastError))
			}
		}
		if up != len(targets)+1 || len(tg.Data.ActiveTargets) != len(targets)+1 {
			return false, fmt.Sprintf("%d of %d targets up (want %d): %v", up, len(tg.Data.ActiveTargets), len(targets)+1, state)
		}
		ok, s := promValue(promAddr, "sum(offedge_probe_success)", float64(len(l.Probes())))
		return ok, "sum(offedge_probe_success): " + s
	})
	waitFor(t, 30*time.Second, "no alert before the drill", func() (bool, string) {
		as, err := amAlerts(amAddr, true)
		return err == nil && len(as) == 0, fmt.Sprint(err, alertKeys(as))
	})

	post := func(path string) {
		t.Helper()
		resp, err := http.Post(drill.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %s %s", path, resp.Status, b)
		}
	}
	post("/api/nodes/ovh1/down")
	start := time.Now()
	// Exactly one alert active, ovh1's, while the consequences offedge
	// impact predicts are there and inhibited.
	mustSuppress := []string{
		"OffedgeNodeDown node=ovh-proxy",
		"OffedgeNodeDown node=ovh-stunnel-client",
		"OffedgeSiteDown probe=site/blog.openfoodfacts.org",
		"OffedgeServiceUnreachable probe=service/docker-prod/mongodb",
		"OffedgeServiceUnreachable probe=service/docker-prod/redis",
		"OffedgeForwardDown probe=forward/pmg-smtp",
		"OffedgeTunnelDown probe=tunnel/influxdb-moji",
	}
	var ovh1 amAlert
	waitFor(t, 90*time.Second, "exactly OffedgeNodeDown{node=ovh1} firing, its consequences inhibited", func() (bool, string) {
		as, err := amAlerts(amAddr, true)
		if err != nil {
			return false, err.Error()
		}
		var active []amAlert
		suppressed := map[string]bool{}
		for _, a := range as {
			switch a.Status.State {
			case "active":
				active = append(active, a)
			case "suppressed":
				suppressed[a.key()] = len(a.Status.InhibitedBy) > 0
			}
		}
		state := strings.Join(alertKeys(as), "\n")
		if len(active) != 1 || active[0].key() != "OffedgeNodeDown node=ovh1" {
			return false, state
		}
		for _, k := range mustSuppress {
			if !suppressed[k] {
				return false, state
			}
		}
		ovh1 = active[0]
		return true, state
	})
	t.Logf("ovh1 down: one alert after %v, consequences inhibited", time.Since(start).Round(100*time.Millisecond))
	for _, s := range []string{"node ovh-proxy", "site blog (blog.openfoodfacts.org)", "tunnel mongodb-ovh", "forward pmg-smtp"} {
		if !strings.Contains(ovh1.Annotations["consequences"], s) {
			t.Errorf("the ovh1 alert does not list %q among its consequences:\n%s", s, ovh1.Annotations["consequences"])
		}
	}

	post("/api/nodes/ovh1/up")
	waitFor(t, 90*time.Second, "every alert resolved with ovh1 up", func() (bool, string) {
		as, err := amAlerts(amAddr, true)
		return err == nil && len(as) == 0, fmt.Sprint(err, alertKeys(as))
	})

	// A stopped backend: the blog's probe from its proxy fails with
	// reason connect, and its upstream alert fires (nothing inhibits it:
	// no node is down).
	post("/api/services/blog/stop")
	waitFor(t, 60*time.Second, "the blog upstream probe failing with reason connect", func() (bool, string) {
		return promValue(promAddr, `offedge_probe_failure_reason{probe="upstream/ovh-proxy/blog/service:blog", reason="connect"}`, 1)
	})
	waitFor(t, 60*time.Second, "OffedgeUpstreamDown for blog", func() (bool, string) {
		as, err := amAlerts(amAddr, false)
		for _, a := range as {
			if a.Labels["alertname"] == observe.AlertUpstreamDown && a.Labels["object"] == "blog" {
				return true, ""
			}
		}
		return false, fmt.Sprint(err, alertKeys(as))
	})
	post("/api/services/blog/start")
	waitFor(t, 60*time.Second, "the blog probe green again", func() (bool, string) {
		return promValue(promAddr, `offedge_probe_success{probe="upstream/ovh-proxy/blog/service:blog"}`, 1)
	})

	// Every replica of the inventory measured on its target, fresh.
	var measured int
	for _, rp := range m.Replicas {
		if rp.Kind == "zfs" || rp.Kind == "pvesr" {
			measured++
		}
	}
	if measured != len(m.Replicas) {
		t.Errorf("%d of %d replicas are zfs or pvesr", measured, len(m.Replicas))
	}
	waitFor(t, 60*time.Second, "a fresh lag for every replica", func() (bool, string) {
		return promValue(promAddr, `count(offedge_replica_lag_seconds < 3600 and offedge_replica_up == 1)`, float64(len(m.Replicas)))
	})
	// A stalled replica (syncoid stopped: the newest copy on ovh3 is
	// older than max_lag): OffedgeReplicaStale fires for it alone.
	post("/api/replicas/off-products-ovh3/stall")
	waitFor(t, 60*time.Second, "OffedgeReplicaStale for off-products-ovh3", func() (bool, string) {
		as, err := amAlerts(amAddr, false)
		for _, a := range as {
			if a.Labels["alertname"] == observe.AlertReplicaStale && a.Labels["replica"] == "off-products-ovh3" {
				return len(as) == 1, fmt.Sprint(alertKeys(as))
			}
		}
		return false, fmt.Sprint(err, alertKeys(as))
	})
	post("/api/replicas/off-products-ovh3/resume")
	waitFor(t, 60*time.Second, "every alert resolved with the replica resumed", func() (bool, string) {
		as, err := amAlerts(amAddr, true)
		return err == nil && len(as) == 0, fmt.Sprint(err, alertKeys(as))
	})

	// Every replica's target shares its newest snapshot with its source
	// (both ends are offedge nodes here): the recorded common snapshot
	// exists for each, and none alerts.
	waitFor(t, 60*time.Second, "a common snapshot for every replica", func() (bool, string) {
		return promValue(promAddr, `count(`+observe.RecordCommonSnapshotAge+` < 3600)`, float64(len(m.Replicas)))
	})

	// The target's zfs hangs (2023-05-23): each listing is killed at the
	// lab's 5 s timeout and the replica is measured down; resumed, up.
	post("/api/replicas/off-products-ovh3/hang")
	waitFor(t, 60*time.Second, "off-products-ovh3 measured down while its zfs hangs", func() (bool, string) {
		return promValue(promAddr, `offedge_replica_up{replica="off-products-ovh3"}`, 0)
	})
	post("/api/replicas/off-products-ovh3/resume")
	waitFor(t, 60*time.Second, "off-products-ovh3 measured up again", func() (bool, string) {
		return promValue(promAddr, `offedge_replica_up{replica="off-products-ovh3"}`, 1)
	})

	// The source pruned every snapshot the target holds (2023-06-08: the
	// products to ovh3): OffedgeReplicaNoCommonSnapshot fires for that
	// replica alone, the target being fresh.
	post("/api/replicas/off-products-ovh3/prune")
	waitFor(t, 60*time.Second, "OffedgeReplicaNoCommonSnapshot for off-products-ovh3", func() (bool, string) {
		as, err := amAlerts(amAddr, false)
		for _, a := range as {
			if a.Labels["alertname"] == observe.AlertReplicaNoCommon && a.Labels["replica"] == "off-products-ovh3" {
				return len(as) == 1, fmt.Sprint(alertKeys(as))
			}
		}
		return false, fmt.Sprint(err, alertKeys(as))
	})
	post("/api/replicas/off-products-ovh3/resume")
	waitFor(t, 60*time.Second, "every alert resolved with the source holding the common snapshot again", func() (bool, string) {
		as, err := amAlerts(amAddr, true)
		return err == nil && len(as) == 0, fmt.Sprint(err, alertKeys(as))
	})

	// A pool filled to 95% (the default critical is 90%): ovh3's rpool
	// fires OffedgePoolSpaceCritical alone; drained, it resolves.
	post("/api/pools/ovh3/rpool/fill")
	waitFor(t, 60*time.Second, "OffedgePoolSpaceCritical for ovh3 rpool", func() (bool, string) {
		as, err := amAlerts(amAddr, false)
		for _, a := range as {
			if a.Labels["alertname"] == observe.AlertPoolSpaceCritical && a.Labels["node"] == "ovh3" && a.Labels["pool"] == "rpool" {
				return len(as) == 1, fmt.Sprint(alertKeys(as))
			}
		}
		return false, fmt.Sprint(err, alertKeys(as))
	})
	post("/api/pools/ovh3/rpool/drain")
	waitFor(t, 60*time.Second, "every alert resolved with the pool drained", func() (bool, string) {
		as, err := amAlerts(amAddr, true)
		return err == nil && len(as) == 0, fmt.Sprint(err, alertKeys(as))
	})
}

// amAlerts lists Alertmanager's alerts: the active ones, and with
// inhibited the inhibited ones too (state "suppressed").
func amAlerts(addr string, inhibited bool) ([]amAlert, error) {
	var as []amAlert
	err := getJSON(fmt.Sprintf("http://%s/api/v2/alerts?active=true&silenced=false&inhibited=%v", addr, inhibited), &as)
	return as, err
}

// promValue reports whether the instant query q has exactly one sample,
// equal to want.
func promValue(addr, q string, want float64) (bool, string) {
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON("http://"+addr+"/api/v1/query?query="+url.QueryEscape(q), &r); err != nil {
		return false, err.Error()
	}
	if len(r.Data.Result) != 1 {
		return false, fmt.Sprintf("%d samples", len(r.Data.Result))
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return s == fmt.Sprint(want), s
}
