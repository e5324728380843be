package openfoodfacts_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/protect"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/plan"
)

// TestProductOpenerProtection holds the example's off site to the
// reference proxy (proxy-off/nginx/openfoodfacts.org and nginx.conf),
// read where it stands: the limit zone's rate, burst, nodelay, status and
// dry run; the /api/ micro-cache's key and validity; the cache size; the
// user agents sent to the stop-crawling page. (How each behaves is
// tested in edge/http and edge/protect.)
func TestProductOpenerProtection(t *testing.T) {
	ref := testutil.RequireReference(t)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(ref, "confs", "proxy-off", "nginx", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	site, conf := read("openfoodfacts.org"), read("nginx.conf")
	find := func(text, expr string) []string {
		m := regexp.MustCompile(expr).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("the reference no longer says %s", expr)
		}
		return m
	}
	zone := find(site, `limit_req_zone \$binary_remote_addr zone=off:\S+ rate=(\d+)r/m;`)
	burst := find(site, `limit_req zone=off burst=(\d+) (nodelay)?`)
	status := find(site, `limit_req_status (\d+);`)
	find(site, `limit_req_dry_run on;`)
	apiKey := find(site, `location /api/ \{(?s:.*?)proxy_cache_key \$host\$request_uri\$cookie_user;\s*proxy_cache_valid any (\d+)s;`)
	size := find(conf, `keys_zone=mycache:\S+ max_size=(\d+)m inactive=(\d+)m`)

	p, err := plan.Compile(load(t), "off1", plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	z := p.Resources.Zones["off"]
	want := protect.ZoneConfig{Rate: float64(atoi(zone[1])) / 60, Burst: atoi(burst[1]), NoDelay: burst[2] != "", DryRun: true,
		Status: atoi(status[1]), MaxKeys: plan.DefaultZoneMaxKeys, Key: protect.KeyAddress, MaxBurst: atoi(burst[1])}
	if z != want {
		t.Errorf("zone off: %+v\nwant %+v (the reference)", z, want)
	}
	if c := p.Resources.Caches["off-micro"]; c.MaxBytes != int64(atoi(size[1]))<<20 || c.Dir != "" || c.Inactive != time.Duration(atoi(size[2]))*time.Minute {
		t.Errorf("cache off-micro: %+v; want %s MiB in memory, inactive %s minutes", c, size[1], size[2])
	}
	var off *httpedge.Site
	for _, l := range p.Listeners {
		if l.HTTP == nil || !l.HTTP.TLS {
			continue
		}
		for i := range l.HTTP.Sites {
			if l.HTTP.Sites[i].Name == "off" {
				off = &l.HTTP.Sites[i]
			}
		}
	}
	if off == nil {
		t.Fatal("no off site on a TLS listener of off1")
	}
	routes := map[string]httpedge.Route{}
	for _, r := range off.Routes {
		routes[r.Path] = r
	}
	api := routes["/api/"].Cache
	if api == nil || !slices.Equal(api.Key, []string{"host", "uri", "cookie:user"}) || api.Valid[0] != time.Duration(atoi(apiKey[1]))*time.Second {
		t.Errorf("/api/ cache %+v; want key host+uri+cookie:user, valid any %ss", api, apiKey[1])
	}
	var zones []string
	for _, l := range routes["/"].Limits {
		zones = append(zones, l.Zone)
	}
	if !slices.Equal(zones, []string{"off", "off-crawlers"}) || len(routes["/api/"].Limits) != 0 || routes["/"].Limits[0].Burst != atoi(burst[1]) {
		t.Errorf("limits: / %v, /api/ %v; the reference limits location / only", routes["/"].Limits, routes["/api/"].Limits)
	}
	var uas []string
	for _, m := range regexp.MustCompile(`if \(\$http_user_agent = "([^"]*)"\)\{\s*rewrite \^ /stop-crawling.txt last;`).FindAllStringSubmatch(site, -1) {
		if !slices.Contains(uas, m[1]) {
			uas = append(uas, m[1])
		}
	}
	var got []string
	for _, b := range off.Bots {
		if b.Action == protect.ActionPage {
			for _, u := range b.UserAgent {
				got = append(got, u.Exact)
			}
		}
	}
	slices.Sort(uas)
	slices.Sort(got)
	if len(uas) == 0 || !slices.Equal(got, uas) {
		t.Errorf("stop-crawling user agents %q; the reference sends %q", got, uas)
	}
}
