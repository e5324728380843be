package httpedge

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TLS policy of the edge's listeners.
const (
	// TicketKeyRotation is how often a new session ticket key starts
	// encrypting tickets.
	TicketKeyRotation = time.Hour
	// TicketKeysKept is how many keys still decrypt tickets: a ticket
	// resumes a session for at most TicketKeysKept × TicketKeyRotation
	// (a day; Go's own rotation accepts tickets for 7 days).
	TicketKeysKept = 24
	// DefaultHSTS is the Strict-Transport-Security value the plan gives
	// a site on a TLS listener unless the inventory opts out (two years,
	// Mozilla's recommendation and Open Food Facts' own header; no
	// includeSubDomains or preload: they bind other hosts).
	DefaultHSTS = "max-age=63072000"
)

// TLS12SuiteNames are the IANA names of the TLS 1.2 suites the edge
// offers, the only ones a site's ciphers may list.
func TLS12SuiteNames() []string {
	out := make([]string, len(tls12Suites))
	for i, id := range tls12Suites {
		out[i] = tls.CipherSuiteName(id)
	}
	return out
}

// tls12Suites are the TLS 1.2 cipher suites offered: ECDHE with an AEAD
// only (Mozilla's "intermediate" list). CBC suites (ECDHE-RSA-AES128-SHA,
// ...) are not offered. TLS 1.3 suites are all AEAD and not configurable.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// newTLSConfig is the listener's TLS configuration: TLS 1.2 minimum, AEAD
// suites only, HTTP/2 and HTTP/1.1 by ALPN, certificates by SNI, session
// tickets under keys that rotate (ticketKeys).
func (s *Server) newTLSConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		CipherSuites:       tls12Suites,
		NextProtos:         []string{"h2", "http/1.1"},
		GetCertificate:     s.getCertificate,
		GetConfigForClient: s.configForClient,
		Time:               s.opts.Now,
	}
	s.tickets.cfg = cfg
	s.tickets.now = s.opts.Now
	s.tickets.rotate()
	return cfg
}

// ACMETLS1 is the ALPN protocol of ACME's TLS-ALPN-01 validation (RFC 8737).
const ACMETLS1 = "acme-tls/1"

// configForClient answers a TLS-ALPN-01 validation (acmeTLSConfig), and
// gives a client whose SNI names a site with a TLS policy of its own that
// site's configuration; every other client gets the listener's (nil).
func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ACMETLS1 {
		return s.acmeTLSConfig(hello)
	}
	ch := s.chain.Load()
	st := ch.tlsDefault
	if host, ok := normalizeHost(hello.ServerName); ok {
		if found, ok := ch.hosts.lookup(host); ok {
			st = found
		}
	}
	if st == nil || st.tlsCfg == nil {
		return nil, nil
	}
	return st.tlsCfg.config(&s.tickets), nil
}

// siteTLS is a site's own tls.Config: the listener's, narrowed by its
// TLSPolicy. Its ticket keys follow the listener's rotation (gen).
type siteTLS struct {
	cfg     *tls.Config
	tickets bool
	gen     atomic.Uint64
}

// config returns the site's configuration with the listener's current
// ticket keys.
func (c *siteTLS) config(t *ticketKeys) *tls.Config {
	if c.tickets {
		if keys, gen := t.current(); c.gen.Load() != gen && len(keys) > 0 {
			c.cfg.SetSessionTicketKeys(keys)
			c.gen.Store(gen)
		}
	}
	return c.cfg
}

// tlsCurves are the key exchanges a site may list, by the names of
// Go's tls.CurveID (nginx's OpenSSL names too).
var tlsCurves = map[string]tls.CurveID{
	"X25519MLKEM768": tls.X25519MLKEM768, "X25519": tls.X25519, "x25519": tls.X25519,
	"P-256": tls.CurveP256, "prime256v1": tls.CurveP256, "secp256r1": tls.CurveP256,
	"P-384": tls.CurveP384, "secp384r1": tls.CurveP384,
	"P-521": tls.CurveP521, "secp521r1": tls.CurveP521,
}

// newSiteTLS builds a site's configuration from the listener's base.
func newSiteTLS(base *tls.Config, p *TLSPolicy) (*siteTLS, error) {
	cfg := base.Clone()
	cfg.GetConfigForClient = nil
	switch p.MinVersion {
	case "", "1.2":
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("tls min_version %q: use 1.2 or 1.3 (the edge offers nothing older than TLS 1.2)", p.MinVersion)
	}
	if len(p.Ciphers) > 0 {
		byName := map[string]uint16{}
		for _, id := range tls12Suites {
			byName[tls.CipherSuiteName(id)] = id
		}
		cfg.CipherSuites = nil
		for _, n := range p.Ciphers {
			id, ok := byName[n]
			if !ok {
				return nil, fmt.Errorf("tls cipher %q: the edge offers only ECDHE suites with AEAD (%s)", n, strings.Join(slices.Sorted(maps.Keys(byName)), ", "))
			}
			cfg.CipherSuites = append(cfg.CipherSuites, id)
		}
	}
	for _, n := range p.Curves {
		id, ok := tlsCurves[n]
		if !ok {
			return nil, fmt.Errorf("tls curve %q: use X25519MLKEM768, X25519, P-256, P-384 or P-521", n)
		}
		cfg.CurvePreferences = append(cfg.CurvePreferences, id)
	}
	cfg.SessionTicketsDisabled = p.NoSessionTickets
	return &siteTLS{cfg: cfg, tickets: !p.NoSessionTickets}, nil
}

// acmeTLSConfig answers a TLS-ALPN-01 validation: a client offering only
// acme-tls/1 (as RFC 8737 has the CA do) is given the challenge certificate
// of its server name, and nothing else; without one pending for that name
// the handshake fails.
func (s *Server) acmeTLSConfig(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	ch := s.chain.Load()
	if ch.alpn != nil {
		if host, ok := normalizeHost(hello.ServerName); ok {
			if cert, ok := ch.alpn.ChallengeCertificate(host); ok {
				return &tls.Config{
					MinVersion:             tls.VersionTLS12,
					CipherSuites:           tls12Suites,
					NextProtos:             []string{ACMETLS1},
					Certificates:           []tls.Certificate{*cert},
					SessionTicketsDisabled: true,
					Time:                   s.opts.Now,
				}, nil
			}
		}
	}
	return nil, fmt.Errorf("listener %q: no ACME TLS-ALPN-01 challenge pending for %q", ch.cfg.Listener, hello.ServerName)
}

// ticketKeys rotates the session ticket keys of a tls.Config: a new key
// every TicketKeyRotation, the last TicketKeysKept accepted. The check
// runs before each handshake (one comparison), so no timer is needed and
// an injected clock drives it in tests.
type ticketKeys struct {
	mu      sync.Mutex
	cfg     *tls.Config
	now     func() time.Time
	keys    [][32]byte  // newest first
	created []time.Time // of keys
	gen     uint64      // rotations so far
}

// current returns the keys in use and their generation.
func (t *ticketKeys) current() ([][32]byte, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keys, t.gen
}

func (t *ticketKeys) rotate() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.cfg == nil || (len(t.created) > 0 && now.Sub(t.created[0]) < TicketKeyRotation) {
		return
	}
	// Keys older than the bound go, however long since the last rotation
	// (a suspended machine, a jump of the clock).
	n := 0
	for n < len(t.created) && n < TicketKeysKept-1 && now.Sub(t.created[n]) < (TicketKeysKept-1)*TicketKeyRotation {
		n++
	}
	var k [32]byte
	rand.Read(k[:])
	t.keys = append([][32]byte{k}, t.keys[:n]...)
	t.created = append([]time.Time{now}, t.created[:n]...)
	t.gen++
	t.cfg.SetSessionTicketKeys(t.keys)
}
