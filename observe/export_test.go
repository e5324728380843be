package observe

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/offedge/offedge/internal/testutil"
)

func offTargets(t *testing.T) ExportOptions {
	m := loadOFF(t)
	targets := map[string]string{}
	for i, n := range m.Nodes {
		targets[n.Name] = fmt.Sprintf("127.0.0.%d:9901", i+1)
	}
	return ExportOptions{Targets: targets, InternetTarget: "127.0.0.254:9901", Alertmanagers: []string{"127.0.0.1:9093"}}
}

// TestExportPassesPromtool writes the files for the Open Food Facts
// inventory and has Prometheus' and Alertmanager's own tools check them.
func TestExportPassesPromtool(t *testing.T) {
	promtool := testutil.RequireBinary(t, "promtool")
	amtool := testutil.RequireBinary(t, "amtool")
	m := loadOFF(t)
	files, err := Export(m, Generate(m), offTargets(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := files.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{promtool, "check", "config", filepath.Join(dir, PrometheusFile)},
		{promtool, "check", "rules", filepath.Join(dir, RulesFile)},
		{amtool, "check-config", filepath.Join(dir, AlertmanagerFile)},
	} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(args[1:], " "), err, out)
		}
	}
}

// TestExportCauses: the alerts carry the nodes whose failure causes them,
// from offedge impact, and each such node has an inhibit rule.
func TestExportCauses(t *testing.T) {
	m := loadOFF(t)
	files, err := Export(m, Generate(m), offTargets(t))
	if err != nil {
		t.Fatal(err)
	}
	var rules ruleFile
	if err := yaml.Unmarshal(files[RulesFile], &rules); err != nil {
		t.Fatal(err)
	}
	find := func(alert, key, value string) *rule {
		for _, g := range rules.Groups {
			for i, r := range g.Rules {
				if r.Alert == alert && r.Labels[key] == value {
					return &g.Rules[i]
				}
			}
		}
		t.Fatalf("no %s alert with %s=%s", alert, key, value)
		return nil
	}
	cases := []struct {
		alert, key, value string
		causes            string
	}{
		{AlertNodeDown, "node", "ovh-proxy", ",ovh1,"},
		{AlertNodeDown, "node", "ovh1", ""},
		{AlertSiteDown, "probe", "site/blog.openfoodfacts.org", ",ovh1,ovh-proxy,ovh-blog,"},
		{AlertServiceUnreachable, "probe", "service/docker-prod/mongodb", ",off2,ovh1,ovh-stunnel-client,"},
		{AlertTunnelDown, "probe", "tunnel/robotoff", ",osm45,ovh1,moji-stunnel-server,moji-docker-prod,ovh-proxy,"},
		{AlertUpstreamDown, "object", "blog", ",ovh-blog,"},
		{AlertReplicaStale, "replica", "proxy-pvesr-ovh3", ""},
	}
	for _, tc := range cases {
		r := find(tc.alert, tc.key, tc.value)
		if tc.causes == "" {
			if tc.alert == AlertReplicaStale {
				if !strings.Contains(r.Labels["causes"], ",ovh1,") {
					t.Errorf("%s %s: causes %q, want ovh1 among them", tc.alert, tc.value, r.Labels["causes"])
				}
				continue
			}
			if c, ok := r.Labels["causes"]; ok {
				t.Errorf("%s %s: causes %q, want none", tc.alert, tc.value, c)
			}
			continue
		}
		if got := r.Labels["causes"]; got != tc.causes {
			t.Errorf("%s %s: causes %q, want %q", tc.alert, tc.value, got, tc.causes)
		}
	}
	ovh1 := find(AlertNodeDown, "node", "ovh1")
	for _, s := range []string{"node ovh-proxy", "site blog (blog.openfoodfacts.org)", "tunnel mongodb-ovh", "forward pmg-smtp"} {
		if !strings.Contains(ovh1.Annotations["consequences"], s) {
			t.Errorf("ovh1 down does not list %q among its consequences:\n%s", s, ovh1.Annotations["consequences"])
		}
	}
	var am amFile
	if err := yaml.Unmarshal(files[AlertmanagerFile], &am); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ir := range am.Inhibit {
		if slices.Equal(ir.SourceMatchers, []string{`alertname="OffedgeNodeDown"`, `node="ovh1"`}) {
			found = slices.Equal(ir.TargetMatchers, []string{`causes=~".*,ovh1,.*"`})
		}
	}
	if !found {
		t.Errorf("no inhibit rule for ovh1 down: %+v", am.Inhibit)
	}
}

// TestRulesFire has promtool evaluate the generated rules on synthetic
// series: the alerts whose metrics the e2e test does not drive (a
// certificate near expiry, a refused reload, a stale replica) fire on
// exactly the series they are about.
func TestRulesFire(t *testing.T) {
	promtool := testutil.RequireBinary(t, "promtool")
	m := loadOFF(t)
	opts := offTargets(t)
	opts.ProbeFor, opts.NodeDownFor = time.Minute, time.Minute
	files, err := Export(m, Generate(m), opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := files.Write(dir); err != nil {
		t.Fatal(err)
	}
	var rules ruleFile
	if err := yaml.Unmarshal(files[RulesFile], &rules); err != nil {
		t.Fatal(err)
	}
	var replicaCauses, replicaSummary, replicaDesc string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == AlertReplicaStale && r.Labels["replica"] == "proxy-pvesr-ovh3" {
				replicaCauses, replicaSummary = r.Labels["causes"], r.Annotations["summary"]
				replicaDesc = strings.ReplaceAll(strings.ReplaceAll(r.Annotations["description"], "{{ $labels.dataset }}", "rpool/data"),
					"{{ $value | humanizeDuration }}", "3h 20m 0s")
			}
		}
	}
	// time() is 0 at the start of a promtool test: a not-after of 10 days
	// in seconds is 10 days away, -1 is expired.
	test := `rule_files: [` + RulesFile + `]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'offedge_probe_tls_not_after_seconds{probe="site/blog.openfoodfacts.org", from="internet", node="internet"}'
        values: '864000x30'
      - series: 'offedge_certificate_not_after_seconds{certificate="images", node="off1"}'
        values: '-1x30'
      - series: 'offedge_config_last_reload_successful{node="off2"}'
        values: '1 1 0x10'
      - series: 'offedge_replica_lag_seconds{replica="proxy-pvesr-ovh3", dataset="rpool/data", node="ovh3"}'
        values: '0+600x30'  # ten minutes older every minute: past max_lag (1h) after 7m, alerting 5m later
    alert_rule_test:
      - eval_time: 15m
        alertname: ` + AlertCertificateExpiring + `
        exp_alerts:
          - exp_labels: {severity: warning, probe: site/blog.openfoodfacts.org, from: internet, node: internet}
            exp_annotations:
              summary: the certificate of site/blog.openfoodfacts.org expires in less than 14 days
              description: the certificate of site/blog.openfoodfacts.org (seen from internet) expires in 9d 23h 45m 0s.
              runbook_url: ` + opts.withDefaults().runbook("offedgecertificateexpiring") + `
      - eval_time: 15m
        alertname: ` + AlertCertificateExpired + `
        exp_alerts:
          - exp_labels: {severity: critical, certificate: images, node: off1}
            exp_annotations:
              summary: certificate images has expired
              description: certificate images (seen from off1) is past its expiry.
              runbook_url: ` + opts.withDefaults().runbook("offedgecertificateexpired") + `
      - eval_time: 5m
        alertname: ` + AlertReloadRefused + `
        exp_alerts:
          - exp_labels: {severity: warning, node: off2}
            exp_annotations:
              summary: off2 refused its last reload
              description: The last reload of off2 was refused or failed; it keeps serving its previous configuration (offedge_plan_generation says which).
              runbook_url: ` + opts.withDefaults().runbook("offedgereloadrefused") + `
      - eval_time: 1m
        alertname: ` + AlertReloadRefused + `
        exp_alerts: []
      - eval_time: 5m
        alertname: ` + AlertReplicaStale + `
        exp_alerts: []
      - eval_time: 20m
        alertname: ` + AlertReplicaStale + `
        exp_alerts:
          - exp_labels: {severity: warning, replica: proxy-pvesr-ovh3, dataset: rpool/data, node: ovh3, causes: "` + replicaCauses + `"}
            exp_annotations:
              summary: ` + replicaSummary + `
              description: ` + replicaDesc + `
              runbook_url: ` + opts.withDefaults().runbook("offedgereplicastale") + `
`
	if err := os.WriteFile(filepath.Join(dir, "test.yml"), []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", filepath.Join(dir, "test.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
