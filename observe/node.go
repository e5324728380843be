package observe

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/tunnel"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/runtime"
)

// NodeOptions say what a node's metrics endpoint exports.
type NodeOptions struct {
	// Runtime is the node's runtime; nil for a node that serves nothing
	// but still runs probes (a consumer such as docker-prod).
	Runtime func() *runtime.Node
	// Prober runs the node's probes; nil when it has none.
	Prober *Prober
	// Storage measures the replicas the node holds (storage.Watch); nil
	// when it holds none.
	Storage prometheus.Collector
	// GoRuntime adds the Go runtime and process metrics (production; the
	// lab runs every node in one process and leaves them out).
	GoRuntime bool
}

// NewRegistry returns the registry of one node's metrics: its runtime
// (listeners, reloads, plan), its probes and optionally the Go runtime.
// Each node has its own registry: no package-level state.
func NewRegistry(opts NodeOptions) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	if opts.Runtime != nil {
		reg.MustRegister(runtimeCollector{opts.Runtime})
	}
	if opts.Prober != nil {
		reg.MustRegister(opts.Prober)
	}
	if opts.Storage != nil {
		reg.MustRegister(opts.Storage)
	}
	if opts.GoRuntime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return reg
}

// Handler serves a registry in the Prometheus text format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, MaxRequestsInFlight: 4})
}

var (
	listenerLabels   = []string{"listener", "kind", "network"}
	descAccepted     = prometheus.NewDesc("offedge_listener_connections_total", "Connections the listener's access list admitted.", listenerLabels, nil)
	descDenied       = prometheus.NewDesc("offedge_listener_denied_total", "Connections the listener's access list refused, before any byte was read.", listenerLabels, nil)
	descReloads      = prometheus.NewDesc("offedge_reloads_total", "Reloads, by result: applied, or failed (refused: the inventory failed to load, check or compile, or could not be applied; the running configuration kept serving).", []string{"result"}, nil)
	descLastReloadOK = prometheus.NewDesc("offedge_config_last_reload_successful", "1 when the last reload was applied (or none was tried), 0 when it failed.", nil, nil)
	descGeneration   = prometheus.NewDesc("offedge_plan_generation", "Number of plans this process has applied: 1 at start, plus one per applied reload.", nil, nil)
	descCertNotAfter = prometheus.NewDesc("offedge_certificate_not_after_seconds", "Expiry (Unix time) of a certificate the node serves; label certificate is the plan's resource name.", []string{"certificate"}, nil)
	descACMENext     = prometheus.NewDesc("offedge_acme_next_renewal_seconds", "When (Unix time) the node next tries to obtain an ACME certificate: its renewal, or the retry after a failure.", []string{"certificate"}, nil)
	descACMEAttempt  = prometheus.NewDesc("offedge_acme_last_attempt_seconds", "When (Unix time) the node last tried to obtain an ACME certificate (or its account).", []string{"certificate"}, nil)
	descACMESuccess  = prometheus.NewDesc("offedge_acme_last_success_seconds", "When (Unix time) the node last obtained an ACME certificate; absent until it has since it started.", []string{"certificate"}, nil)
	descACMEFailures = prometheus.NewDesc("offedge_acme_consecutive_failures", "Failed attempts to obtain an ACME certificate since its last success (0: the last attempt succeeded or none failed); the reason is in the log and `offedge certs`.", []string{"certificate"}, nil)
	descACMEPending  = prometheus.NewDesc("offedge_acme_placeholder", "1 while an ACME certificate's sites are served its fallback files or a self-signed placeholder (it has not been issued yet), else 0.", []string{"certificate"}, nil)
	descPlanInfo     = prometheus.NewDesc("offedge_plan_info", "The plan in force: label hash is the first 12 hex digits of the SHA-256 of its JSON form (`offedge plan --format json`).", []string{"hash"}, nil)
)

type runtimeCollector struct{ rt func() *runtime.Node }

func (c runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range append([]*prometheus.Desc{descAccepted, descDenied, descReloads, descLastReloadOK, descGeneration, descPlanInfo, descCertNotAfter,
		descACMENext, descACMEAttempt, descACMESuccess, descACMEFailures, descACMEPending}, roleDescs...) {
		ch <- d
	}
	for _, d := range protectDescs {
		ch <- d
	}
}

func (c runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	rt := c.rt()
	if rt == nil {
		return
	}
	st := rt.Status()
	var (
		routes [][]httpedge.RouteStats
		bots   [][]httpedge.BotStats
	)
	for _, l := range st.Listeners {
		lv := []string{l.Name, l.Kind, l.Network}
		ch <- prometheus.MustNewConstMetric(descAccepted, prometheus.CounterValue, float64(l.Accepted), lv...)
		ch <- prometheus.MustNewConstMetric(descDenied, prometheus.CounterValue, float64(l.Denied), lv...)
		switch rs := l.Stats; {
		case rs.HTTP != nil:
			collectHTTP(ch, l.Name, rs.HTTP)
			routes = append(routes, rs.HTTP.Routes)
			bots = append(bots, rs.HTTP.Bots)
		case rs.Tunnel != nil:
			collectTunnel(ch, l.Name, l.Kind, rs.Tunnel)
		case rs.Forward != nil:
			collectForward(ch, l.Name, l.Kind, rs.Forward)
		}
	}
	collectRoutes(ch, routes)
	collectUpstreams(ch, st.Upstreams)
	for _, c := range st.Certificates {
		if !c.NotAfter.IsZero() {
			gauge(ch, descCertNotAfter, float64(c.NotAfter.Unix()), c.Name)
		}
	}
	collectProtection(ch, st.Protection)
	collectCaches(ch, st.Caches)
	collectBots(ch, bots)
	applied := st.Reloads - min(st.FailedReloads, st.Reloads)
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(applied), "applied")
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(st.FailedReloads), "failed")
	ok := 1.0
	if st.LastError != "" {
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(descLastReloadOK, prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(descGeneration, prometheus.GaugeValue, float64(1+applied))
	ch <- prometheus.MustNewConstMetric(descPlanInfo, prometheus.GaugeValue, 1, PlanHash(rt.Plan()))
}

// collectACME exports the state of the node's ACME certificates; their
// expiry is offedge_certificate_not_after_seconds, as for every
// certificate the node serves, so the certificate alerts cover them.
func collectACME(ch chan<- prometheus.Metric, list []runtime.ACMEStatus) {
	unix := func(d *prometheus.Desc, t time.Time, name string) {
		if !t.IsZero() {
			gauge(ch, d, float64(t.Unix()), name)
		}
	}
	for _, a := range list {
		unix(descACMENext, a.NextRenewal, a.Name)
		unix(descACMEAttempt, a.LastAttempt, a.Name)
		unix(descACMESuccess, a.LastSuccess, a.Name)
		gauge(ch, descACMEFailures, float64(a.Failures), a.Name)
		pending := 0.0
		if a.Placeholder {
			pending = 1
		}
		gauge(ch, descACMEPending, pending, a.Name)
	}
}

// PlanHash is the short hash of a plan that offedge_plan_info reports.
func PlanHash(p *plan.Plan) string {
	b, err := json.Marshal(p)
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// TunnelOpener adapts a runtime's OpenTunnel for NetDialer and the lab:
// a failure the TLS layer reports (an alert from the exit, a certificate
// or key that does not verify) is a tls failure; any other (the exit
// unreachable) stays a connect failure or a timeout.
func TunnelOpener(open func(ctx context.Context, name string) (net.Conn, error)) func(ctx context.Context, name string) (net.Conn, error) {
	return func(ctx context.Context, name string) (net.Conn, error) {
		c, err := open(ctx, name)
		if err == nil {
			return c, nil
		}
		if isTLSFailure(err) {
			return nil, &ReasonError{ReasonTLS, err}
		}
		return nil, err
	}
}

func isTLSFailure(err error) bool {
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	return errors.As(err, &alert) || errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &unknown) ||
		errors.As(err, &invalid) || errors.As(err, &host) ||
		errors.Is(err, tunnel.ErrPeerKeyMismatch) || errors.Is(err, tunnel.ErrPeerNameMismatch)
}
