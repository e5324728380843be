package httpedge

import "sync/atomic"

// Stats is a snapshot of a server's counters, for a status page or metrics.
type Stats struct {
	Requests           uint64 `json:"requests"`
	Status1xx          uint64 `json:"status_1xx"`
	Status2xx          uint64 `json:"status_2xx"`
	Status3xx          uint64 `json:"status_3xx"`
	Status4xx          uint64 `json:"status_4xx"`
	Status5xx          uint64 `json:"status_5xx"`
	UpstreamErrors     uint64 `json:"upstream_errors"` // failed attempts (connect, timeout, reset)
	CacheHits          uint64 `json:"cache_hits"`
	CacheMisses        uint64 `json:"cache_misses"`
	TLSHandshakeErrors uint64 `json:"tls_handshake_errors"`
	ZeroCopyBytes      uint64 `json:"zero_copy_bytes"` // file bytes handed to sendfile
	OpenConnections    int64  `json:"open_connections"`
	// RequestsInFlight are the requests being served now: counted from
	// the handler's start to the end of its bookkeeping (status, route
	// counters, access log), which may come just after the client has the
	// whole answer (nginx's "writing" of stub_status).
	RequestsInFlight int64 `json:"requests_in_flight"`
	// IdleConnections are the HTTP/1 keep-alive connections parked between
	// requests (no goroutine, no buffer); RefusedHeads the request heads
	// the HTTP/1 loop refused before the handler (400, 413-431, 501, 505).
	IdleConnections int64  `json:"idle_connections"`
	RefusedHeads    uint64 `json:"refused_heads"`
	WebSockets      int64  `json:"websockets"` // tunnels open now
	// QueueRejected and QueueTimeouts count requests answered 503 because
	// every server was at max_conns: the queue was full, or the wait too long.
	QueueRejected uint64 `json:"queue_rejected"`
	QueueTimeouts uint64 `json:"queue_timeouts"`
	// Upstreams are the servers of the pools this server's routes use. Pools
	// are shared by the node's listeners: the state is the pool's, the same
	// seen from every listener.
	Upstreams []UpstreamStats `json:"upstreams"`
	// Routes counts requests per site and route, with their duration and
	// bytes sent.
	Routes []RouteStats `json:"routes,omitempty"`
	// Bots counts the requests each site's bot rules matched.
	Bots []BotStats `json:"bots,omitempty"`
}

// UpstreamStats is the state of one server of one pool.
type UpstreamStats struct {
	Pool   string `json:"pool"`
	Addr   string `json:"addr"`
	Backup bool   `json:"backup,omitempty"`
	// Up is false while passive health (MaxFails) or an active check marks
	// the server down.
	Up       bool   `json:"up"`
	Requests uint64 `json:"requests"`
	Fails    uint64 `json:"fails"`
	// Retried counts the requests that failed on this server and were then
	// sent to another one.
	Retried uint64 `json:"retried"`
	// Active is the requests in flight to the server now (each holding a
	// connection); MaxConns its cap (0: none).
	Active   int `json:"active"`
	MaxConns int `json:"max_conns,omitempty"`
}

type counters struct {
	requests           atomic.Uint64
	status             [6]atomic.Uint64
	upstreamErrors     atomic.Uint64
	cacheHits          atomic.Uint64
	cacheMisses        atomic.Uint64
	tlsHandshakeErrors atomic.Uint64
	zeroCopyBytes      atomic.Uint64
	openConns          atomic.Int64
	inFlight           atomic.Int64
	websockets         atomic.Int64
	queueRejected      atomic.Uint64
	queueTimeouts      atomic.Uint64
}

func (c *counters) countStatus(code int) {
	if i := code / 100; i >= 1 && i <= 5 {
		c.status[i].Add(1)
	}
}

// Stats returns the counters since the server was created.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:           s.stats.requests.Load(),
		Status1xx:          s.stats.status[1].Load(),
		Status2xx:          s.stats.status[2].Load(),
		Status3xx:          s.stats.status[3].Load(),
		Status4xx:          s.stats.status[4].Load(),
		Status5xx:          s.stats.status[5].Load(),
		UpstreamErrors:     s.stats.upstreamErrors.Load(),
		CacheHits:          s.stats.cacheHits.Load(),
		CacheMisses:        s.stats.cacheMisses.Load(),
		TLSHandshakeErrors: s.stats.tlsHandshakeErrors.Load(),
		ZeroCopyBytes:      s.stats.zeroCopyBytes.Load(),
		OpenConnections:    s.stats.openConns.Load(),
		RequestsInFlight:   s.stats.inFlight.Load(),
		WebSockets:         s.stats.websockets.Load(),
		QueueRejected:      s.stats.queueRejected.Load(),
		QueueTimeouts:      s.stats.queueTimeouts.Load(),
	}
	if s.h1 != nil {
		hs := s.h1.Stats()
		st.IdleConnections = hs.Parked.Load()
		st.RefusedHeads = hs.Refused.Load()
	}
	st.Routes = s.routes.snapshot()
	st.Bots = s.bots.snapshot()
	st.Upstreams = poolStats(s.chain.Load().pools)
	return st
}
