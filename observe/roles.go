package observe

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offedge/offedge/edge/forward"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/edge/tunnel"
)

// The role metrics are read from the roles' own counters at scrape time:
// nothing is added to the data path but the atomic counters the roles keep
// anyway.

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descHTTPRequests    = desc("offedge_http_requests_total", "HTTP requests answered by the listener, by status class (1xx..5xx).", "listener", "code")
	descHTTPUpErrors    = desc("offedge_http_upstream_errors_total", "Failed attempts to reach an upstream server (connect, timeout, reset), retried or not.", "listener")
	descHTTPCache       = desc("offedge_http_cache_requests_total", "Requests to the fallback cache of a static route, by result (hit, miss).", "listener", "result")
	descHTTPTLSErrors   = desc("offedge_http_tls_handshake_errors_total", "TLS handshakes that failed on the listener.", "listener")
	descHTTPOpen        = desc("offedge_http_open_connections", "Client connections open on the listener.", "listener")
	descHTTPInFlight    = desc("offedge_http_requests_in_flight", "Requests being served on the listener now (from the handler's start to the end of its counting and logging).", "listener")
	descHTTPWebSockets  = desc("offedge_http_websockets", "WebSocket tunnels open on the listener.", "listener")
	descHTTPQueue       = desc("offedge_http_queue_rejected_total", "Requests answered 503 because every upstream server was at max_conns, by cause (full, timeout).", "listener", "cause")
	descHTTPZeroCopy    = desc("offedge_http_sendfile_bytes_total", "File bytes handed to sendfile by static routes.", "listener")
	upstreamLabels      = []string{"upstream", "server"}
	descUpstreamUp      = desc("offedge_upstream_server_up", "1 while the upstream server is usable, 0 while passive health (max_fails) or the active check has it down.", upstreamLabels...)
	descUpstreamReqs    = desc("offedge_upstream_requests_total", "Requests sent to the upstream server.", upstreamLabels...)
	descUpstreamFails   = desc("offedge_upstream_failures_total", "Failed requests to the upstream server (passive health failures).", upstreamLabels...)
	descUpstreamRetries = desc("offedge_upstream_retries_total", "Requests that failed on the upstream server and were retried on another.", upstreamLabels...)
	descUpstreamActive  = desc("offedge_upstream_active_requests", "Requests in flight to the upstream server.", upstreamLabels...)
	connLabels          = []string{"listener", "kind"}
	descConnTotal       = desc("offedge_conn_connections_total", "Connections a tunnel entrance or exit, or a forward, accepted (after the access list).", connLabels...)
	descConnActive      = desc("offedge_conn_active_connections", "Connections open now on the tunnel end or forward.", connLabels...)
	descConnHandshake   = desc("offedge_conn_handshake_failures_total", "TLS handshakes of a tunnel end that failed, by reason (wrong_key, peer_name, timeout, protocol, reset, other).", "listener", "kind", "reason")
	descConnDial        = desc("offedge_conn_dial_failures_total", "Connections to a tunnel's exit or a forward's target (or an exit's service) that failed, by reason (refused, timeout, unreachable, source, reset, other).", "listener", "kind", "reason")
	descConnRefused     = desc("offedge_conn_refused_per_client_total", "Connections reset because their client already had max_conns_per_client open.", connLabels...)
	descConnBytes       = desc("offedge_conn_bytes_total", "Bytes relayed, by direction: up (client to service), down (service to client).", "listener", "kind", "direction")
	descTunnelSessions  = desc("offedge_tunnel_sessions", "Multiplexed TLS sessions (offedge-mux/1) open now on the tunnel end.", connLabels...)
	descTunnelStreams   = desc("offedge_tunnel_streams_total", "Client connections carried as streams of a multiplexed session.", connLabels...)
	descTunnelRefused   = desc("offedge_tunnel_streams_refused_total", "Streams an exit reset at once (over the session's stream limit, max_conns, max_conns_per_client, or during shutdown), and sessions over the per-entrance limit.", connLabels...)
	descConnIdle        = desc("offedge_conn_idle_closed_total", "Forwarded connections closed for idling.", connLabels...)
	descRouteRequests   = desc("offedge_http_route_requests_total", "HTTP requests by site, route (its path as the inventory writes it; \"\" outside the site's routes) and status class.", "site", "route", "code")
	descRouteBytes      = desc("offedge_http_route_response_bytes_total", "Response body bytes sent, by site and route.", "site", "route")
	descRouteDuration   = desc("offedge_http_route_request_duration_seconds", "Time from reading a request's head to the end of its response, by site and route.", "site", "route")
)

var roleDescs = []*prometheus.Desc{descHTTPRequests, descHTTPUpErrors, descHTTPCache, descHTTPTLSErrors, descHTTPOpen,
	descHTTPInFlight, descHTTPWebSockets, descHTTPQueue, descHTTPZeroCopy, descUpstreamUp, descUpstreamReqs, descUpstreamFails,
	descUpstreamRetries, descUpstreamActive, descConnTotal, descConnActive, descConnHandshake, descConnDial,
	descConnRefused, descConnBytes, descConnIdle, descTunnelSessions, descTunnelStreams, descTunnelRefused, descRouteRequests, descRouteBytes, descRouteDuration}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, lv ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, lv ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
}

func collectHTTP(ch chan<- prometheus.Metric, listener string, st *httpedge.Stats) {
	for i, v := range []uint64{st.Status1xx, st.Status2xx, st.Status3xx, st.Status4xx, st.Status5xx} {
		counter(ch, descHTTPRequests, v, listener, string(rune('1'+i))+"xx")
	}
	counter(ch, descHTTPUpErrors, st.UpstreamErrors, listener)
	counter(ch, descHTTPCache, st.CacheHits, listener, "hit")
	counter(ch, descHTTPCache, st.CacheMisses, listener, "miss")
	counter(ch, descHTTPTLSErrors, st.TLSHandshakeErrors, listener)
	gauge(ch, descHTTPOpen, float64(st.OpenConnections), listener)
	gauge(ch, descHTTPInFlight, float64(st.RequestsInFlight), listener)
	gauge(ch, descHTTPWebSockets, float64(st.WebSockets), listener)
	counter(ch, descHTTPQueue, st.QueueRejected, listener, "full")
	counter(ch, descHTTPQueue, st.QueueTimeouts, listener, "timeout")
	counter(ch, descHTTPZeroCopy, st.ZeroCopyBytes, listener)
}

func collectUpstreams(ch chan<- prometheus.Metric, ups []httpedge.UpstreamStats) {
	seen := map[[2]string]bool{}
	for _, u := range ups {
		k := [2]string{u.Pool, u.Addr}
		if seen[k] {
			continue // one pool shared by several listeners
		}
		seen[k] = true
		up := 0.0
		if u.Up {
			up = 1
		}
		gauge(ch, descUpstreamUp, up, u.Pool, u.Addr)
		counter(ch, descUpstreamReqs, u.Requests, u.Pool, u.Addr)
		counter(ch, descUpstreamFails, u.Fails, u.Pool, u.Addr)
		counter(ch, descUpstreamRetries, u.Retried, u.Pool, u.Addr)
		gauge(ch, descUpstreamActive, float64(u.Active), u.Pool, u.Addr)
	}
}

func collectReasons(ch chan<- prometheus.Metric, d *prometheus.Desc, by map[string]uint64, listener, kind string) {
	for _, r := range slices.Sorted(maps.Keys(by)) {
		counter(ch, d, by[r], listener, kind, r)
	}
}

func collectTunnel(ch chan<- prometheus.Metric, listener, kind string, st *tunnel.Stats) {
	counter(ch, descConnTotal, st.Accepted, listener, kind)
	gauge(ch, descConnActive, float64(st.Active), listener, kind)
	collectReasons(ch, descConnHandshake, st.HandshakeFailuresBy, listener, kind)
	collectReasons(ch, descConnDial, st.DialFailuresBy, listener, kind)
	counter(ch, descConnRefused, st.RefusedPerClient, listener, kind)
	counter(ch, descConnBytes, st.BytesUp, listener, kind, "up")
	counter(ch, descConnBytes, st.BytesDown, listener, kind, "down")
	gauge(ch, descTunnelSessions, float64(st.Sessions), listener, kind)
	counter(ch, descTunnelStreams, st.Streams, listener, kind)
	counter(ch, descTunnelRefused, st.RefusedStreams, listener, kind)
}

func collectForward(ch chan<- prometheus.Metric, listener, kind string, st *forward.Stats) {
	counter(ch, descConnTotal, st.Accepted, listener, kind)
	gauge(ch, descConnActive, float64(st.Active), listener, kind)
	collectReasons(ch, descConnDial, st.DialFailuresBy, listener, kind)
	counter(ch, descConnRefused, st.RefusedPerClient, listener, kind)
	counter(ch, descConnBytes, st.BytesUp, listener, kind, "up")
	counter(ch, descConnBytes, st.BytesDown, listener, kind, "down")
	counter(ch, descConnIdle, st.IdleClosed, listener, kind)
}

// collectRoutes exports the per-route counters, summed over the listeners
// that serve the same site (a site on ports 80 and 443, IPv4 and IPv6).
func collectRoutes(ch chan<- prometheus.Metric, all [][]httpedge.RouteStats) {
	type key struct{ site, route string }
	sums := map[key]*httpedge.RouteStats{}
	var order []key
	for _, rs := range all {
		for _, r := range rs {
			k := key{r.Site, r.Route}
			sum := sums[k]
			if sum == nil {
				sum = &httpedge.RouteStats{Site: r.Site, Route: r.Route, Buckets: make([]uint64, len(r.Buckets))}
				sums[k] = sum
				order = append(order, k)
			}
			for i := range r.Status {
				sum.Status[i] += r.Status[i]
			}
			for i := range r.Buckets {
				sum.Buckets[i] += r.Buckets[i]
			}
			sum.Bytes += r.Bytes
			sum.Count += r.Count
			sum.SumSeconds += r.SumSeconds
		}
	}
	for _, k := range order {
		r := sums[k]
		if r.Count == 0 {
			continue // a route no request reached yet: no series
		}
		for i := 1; i <= 5; i++ {
			counter(ch, descRouteRequests, r.Status[i], r.Site, r.Route, string(rune('0'+i))+"xx")
		}
		counter(ch, descRouteBytes, r.Bytes, r.Site, r.Route)
		buckets := make(map[float64]uint64, len(r.Buckets))
		for i, b := range r.Buckets {
			buckets[httpedge.DurationBuckets[i].Seconds()] = b
		}
		ch <- prometheus.MustNewConstHistogram(descRouteDuration, r.Count, r.SumSeconds, buckets, r.Site, r.Route)
	}
}
