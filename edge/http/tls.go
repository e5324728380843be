package httpedge

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"sync"
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
		GetConfigForClient: s.acmeTLSConfig,
		Time:               s.opts.Now,
	}
	s.tickets.cfg = cfg
	s.tickets.now = s.opts.Now
	s.tickets.rotate()
	return cfg
}

// ACMETLS1 is the ALPN protocol of ACME's TLS-ALPN-01 validation (RFC 8737).
const ACMETLS1 = "acme-tls/1"

// acmeTLSConfig answers a TLS-ALPN-01 validation: a client offering only
// acme-tls/1 (as RFC 8737 has the CA do) is given the challenge certificate
// of its server name, and nothing else; without one pending for that name
// the handshake fails. Every other client gets the listener's own
// configuration (nil).
func (s *Server) acmeTLSConfig(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if len(hello.SupportedProtos) != 1 || hello.SupportedProtos[0] != ACMETLS1 {
		return nil, nil
	}
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
	t.cfg.SetSessionTicketKeys(t.keys)
}
