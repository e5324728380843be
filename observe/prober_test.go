package observe

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestProberScheduleAndMetrics(t *testing.T) {
	smtp := standinAddr(t, "smtp")
	good := Probe{Name: "service/a/mail", From: "a", Kind: KindService, Object: "mail", Protocol: ProtoSMTP, Network: "lan", Addr: smtp}
	bad := Probe{Name: "service/a/db", From: "a", Kind: KindService, Object: "db", Protocol: ProtoRedis, Network: "lan", Addr: closedPort(t)}
	pr := NewProber([]Probe{good, bad}, NetDialer{}, ProberOptions{Interval: 20 * time.Millisecond, Concurrency: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pr.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitResults := func(n int, cond func([]Result) bool) []Result {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			ch := pr.Changed()
			if rs := pr.Results(); len(rs) == n && cond(rs) {
				return rs
			}
			select {
			case <-ch:
			case <-deadline:
				t.Fatalf("no results: %+v", pr.Results())
			}
		}
	}
	rs := waitResults(2, func([]Result) bool { return true })
	if !rs[0].Success || rs[1].Success || rs[1].Reason != ReasonConnect {
		t.Fatalf("results %+v", rs)
	}
	reg := NewRegistry(NodeOptions{Prober: pr})
	text := scrape(t, reg)
	for _, want := range []string{
		`offedge_probe_success{from="a",kind="service",object="mail",probe="service/a/mail",protocol="smtp"} 1`,
		`offedge_probe_success{from="a",kind="service",object="db",probe="service/a/db",protocol="redis"} 0`,
		`offedge_probe_failure_reason{from="a",kind="service",object="db",probe="service/a/db",protocol="redis",reason="connect"} 1`,
		`offedge_probe_failures_total{from="a",kind="service",object="db",probe="service/a/db",protocol="redis",reason="connect"} `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, `reason="connect"} 1`+"\n"+`offedge_probe_failure_reason{from="a",kind="service",object="mail"`) {
		t.Error("a succeeding probe has a failure reason")
	}
	// After a reload without the failing probe, its series are gone.
	pr.SetProbes([]Probe{good})
	waitResults(1, func(rs []Result) bool { return rs[0].Probe.Name == good.Name })
	if text := scrape(t, reg); strings.Contains(text, "offedge_probe_failure_reason{") || strings.Contains(text, `probe="service/a/db"`) {
		t.Errorf("the removed probe still has series:\n%s", text)
	}
}

// TestProberConcurrency: RunOnce never runs more probes at once than
// Concurrency.
func TestProberConcurrency(t *testing.T) {
	var probes []Probe
	for i := range 12 {
		probes = append(probes, Probe{Name: "p" + string(rune('a'+i)), Protocol: ProtoTCP})
	}
	var mu sync.Mutex
	inFlight, peak := 0, 0
	release := make(chan struct{})
	d := DialerFunc(func(ctx context.Context, p *Probe) (net.Conn, error) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil, errors.New("refused")
	})
	pr := NewProber(probes, d, ProberOptions{Concurrency: 3})
	done := make(chan []Result)
	go func() { done <- pr.RunOnce(context.Background()) }()
	for range probes {
		release <- struct{}{}
	}
	rs := <-done
	mu.Lock()
	defer mu.Unlock()
	if len(rs) != len(probes) || peak > 3 {
		t.Fatalf("%d results, peak %d in flight, want %d and at most 3", len(rs), peak, len(probes))
	}
}

// scrape renders a registry in the text format, as Prometheus reads it.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}
