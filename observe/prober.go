package observe

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProberOptions schedule a set of probes.
type ProberOptions struct {
	RunOptions
	// Interval between two runs of one probe (default 30s); each run is
	// shifted by up to a tenth of it, and the first run by up to a whole
	// interval, so that probes spread out instead of firing together.
	Interval time.Duration
	// Concurrency bounds the probes running at once (default 8).
	Concurrency int
}

// DefaultInterval is how often a probe runs when ProberOptions leave it unset.
const DefaultInterval = 30 * time.Second

// Prober runs a node's probes on a schedule and keeps their latest results:
// the state the metrics endpoint, `offedge probe` and the dashboard read.
type Prober struct {
	probes []Probe
	dial   Dialer
	opts   ProberOptions
	sem    chan struct{}

	mu      sync.Mutex
	latest  map[string]Result
	runs    map[string]uint64
	fails   map[[2]string]uint64 // probe name, reason
	changed chan struct{}
	reset   chan struct{} // closed by SetProbes while Run runs
}

// NewProber returns a prober for probes, dialing through d.
func NewProber(probes []Probe, d Dialer, opts ProberOptions) *Prober {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	return &Prober{probes: probes, dial: d, opts: opts, sem: make(chan struct{}, opts.Concurrency),
		latest: map[string]Result{}, runs: map[string]uint64{}, fails: map[[2]string]uint64{}, changed: make(chan struct{})}
}

// Probes returns the probes this prober runs.
func (p *Prober) Probes() []Probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probes
}

// SetProbes replaces the probes (after a reload): results of probes that
// keep their name are kept, the others dropped, and a running schedule
// restarts with the new set.
func (p *Prober) SetProbes(probes []Probe) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := map[string]bool{}
	for _, pr := range probes {
		keep[pr.Name] = true
	}
	for name := range p.latest {
		if !keep[name] {
			delete(p.latest, name)
			delete(p.runs, name)
		}
	}
	for k := range p.fails {
		if !keep[k[0]] {
			delete(p.fails, k)
		}
	}
	p.probes = probes
	if p.reset != nil {
		close(p.reset)
		p.reset = make(chan struct{})
	}
}

func (p *Prober) runOne(ctx context.Context, pr Probe) Result {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return Result{Probe: pr, Reason: ReasonTimeout, Detail: ctx.Err().Error(), At: time.Now()}
	}
	r := Run(ctx, pr, p.dial, p.opts.RunOptions)
	<-p.sem
	p.mu.Lock()
	if ctx.Err() != nil && !r.Success || !slices.ContainsFunc(p.probes, func(q Probe) bool { return q.Name == pr.Name }) {
		p.mu.Unlock()
		return r // cancelled, or replaced: not a result worth keeping
	}
	p.latest[pr.Name] = r
	p.runs[pr.Name]++
	if !r.Success {
		p.fails[[2]string{pr.Name, r.Reason}]++
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	return r
}

// RunOnce runs every probe now, at most Concurrency at a time, and returns
// the results in probe order.
func (p *Prober) RunOnce(ctx context.Context) []Result {
	probes := p.Probes()
	out := make([]Result, len(probes))
	var wg sync.WaitGroup
	for i, pr := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = p.runOne(ctx, pr)
		}()
	}
	wg.Wait()
	return out
}

// Run runs every probe on its schedule until ctx ends.
func (p *Prober) Run(ctx context.Context) {
	for {
		p.mu.Lock()
		probes := p.probes
		p.reset = make(chan struct{})
		reset := p.reset
		p.mu.Unlock()
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, pr := range probes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.schedule(rctx, pr)
			}()
		}
		select {
		case <-ctx.Done():
		case <-reset:
		}
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
	}
}

func (p *Prober) schedule(ctx context.Context, pr Probe) {
	iv := p.opts.Interval
	t := time.NewTimer(rand.N(iv))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.runOne(ctx, pr)
		t.Reset(iv - iv/20 + rand.N(iv/10+1))
	}
}

// Results returns the latest result of every probe that has run, in probe
// order. It is the in-process API for "current probe results".
func (p *Prober) Results() []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Result
	for _, pr := range p.probes {
		if r, ok := p.latest[pr.Name]; ok {
			out = append(out, r)
		}
	}
	return out
}

// Changed returns a channel closed at the next new result, for callers
// that wait on probe state (tests, live dashboards).
func (p *Prober) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

var probeLabels = []string{"probe", "from", "kind", "object", "protocol"}

var (
	descSuccess  = prometheus.NewDesc("offedge_probe_success", "Whether the probe's last run succeeded (1) or failed (0), as blackbox_exporter's probe_success.", probeLabels, nil)
	descDuration = prometheus.NewDesc("offedge_probe_duration_seconds", "How long the probe's last run took, connection included.", probeLabels, nil)
	descReason   = prometheus.NewDesc("offedge_probe_failure_reason", "1 for the reason of the probe's last failure (dns, connect, denied, tls, timeout, status, protocol); absent while the probe succeeds.", append(probeLabels[:5:5], "reason"), nil)
	descStatus   = prometheus.NewDesc("offedge_probe_http_status_code", "The HTTP status of the probe's last answer.", probeLabels, nil)
	descNotAfter = prometheus.NewDesc("offedge_probe_tls_not_after_seconds", "Expiry (Unix time) of the earliest certificate the probe's TLS peer sent.", probeLabels, nil)
	descRuns     = prometheus.NewDesc("offedge_probe_runs_total", "Runs of the probe.", probeLabels, nil)
	descFails    = prometheus.NewDesc("offedge_probe_failures_total", "Failed runs of the probe, by reason.", append(probeLabels[:5:5], "reason"), nil)
)

// Describe implements prometheus.Collector.
func (p *Prober) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSuccess, descDuration, descReason, descStatus, descNotAfter, descRuns, descFails} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the latest result of every
// probe that has run.
func (p *Prober) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.probes {
		r, ok := p.latest[pr.Name]
		if !ok {
			continue
		}
		lv := []string{pr.Name, pr.From, pr.Kind, pr.Object, pr.Protocol}
		ok1 := 0.0
		if r.Success {
			ok1 = 1
		} else {
			ch <- prometheus.MustNewConstMetric(descReason, prometheus.GaugeValue, 1, append(lv, r.Reason)...)
		}
		ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.GaugeValue, ok1, lv...)
		ch <- prometheus.MustNewConstMetric(descDuration, prometheus.GaugeValue, r.Duration.Seconds(), lv...)
		if r.Status != 0 {
			ch <- prometheus.MustNewConstMetric(descStatus, prometheus.GaugeValue, float64(r.Status), lv...)
		}
		if !r.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(descNotAfter, prometheus.GaugeValue, float64(r.NotAfter.Unix()), lv...)
		}
		ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, float64(p.runs[pr.Name]), lv...)
		for _, reason := range Reasons {
			if n := p.fails[[2]string{pr.Name, reason}]; n > 0 {
				ch <- prometheus.MustNewConstMetric(descFails, prometheus.CounterValue, float64(n), append(lv, reason)...)
			}
		}
	}
}
