package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/offedge/offedge/certs"
)

func tlsPair(certPEM, keyPEM []byte) (*x509.Certificate, error) {
	p, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if p.Leaf != nil {
		return p.Leaf, nil
	}
	return x509.ParseCertificate(p.Certificate[0])
}

// Status is what a [Manager] knows of one certificate.
type Status struct {
	Names       []string
	CertFile    string
	KeyFile     string
	Issuer      string
	NotAfter    time.Time
	NextRenewal time.Time
	LastAttempt time.Time
	LastError   string
	Failures    int
}

// Manager keeps a node's ACME certificates issued and renewed: each one is
// obtained when its files are missing, unusable or not for its names, and
// renewed at [RenewAt]; a failure is logged with its reason and retried
// after [Backoff]. Every new pair is loaded into the certs.Store at once
// (certs' own reload), so the next handshake serves it.
type Manager struct {
	issuer *Issuer
	store  *certs.Store
	log    *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	certs []*managed
}

type managed struct {
	names []string
	force chan struct{}
	mu    sync.Mutex
	st    Status
	cert  *certs.Cert
}

// NewManager manages certificates for the issuer; new pairs go to store.
func NewManager(issuer *Issuer, store *certs.Store) *Manager {
	return &Manager{issuer: issuer, store: store, log: issuer.cfg.Logger, now: time.Now}
}

// Add manages a certificate for names. It does not issue: [Manager.Run] does.
func (m *Manager) Add(names []string) {
	certFile, keyFile := CertFiles(m.issuer.cfg.StateDir, names[0])
	mc := &managed{names: slices.Clone(names), force: make(chan struct{}, 1),
		st: Status{Names: slices.Clone(names), CertFile: certFile, KeyFile: keyFile}}
	m.mu.Lock()
	m.certs = append(m.certs, mc)
	m.mu.Unlock()
}

// Statuses returns the state of every managed certificate.
func (m *Manager) Statuses() []Status {
	m.mu.Lock()
	list := slices.Clone(m.certs)
	m.mu.Unlock()
	out := make([]Status, 0, len(list))
	for _, c := range list {
		c.mu.Lock()
		s := c.st
		s.Names = slices.Clone(c.st.Names)
		c.mu.Unlock()
		out = append(out, s)
	}
	return out
}

// Renew asks for the certificate that names name to be renewed now; it
// reports whether the manager has one.
func (m *Manager) Renew(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.certs {
		if slices.Contains(c.names, name) {
			select {
			case c.force <- struct{}{}:
			default:
			}
			return true
		}
	}
	return false
}

// Run keeps every added certificate current until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	list := slices.Clone(m.certs)
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range list {
		wg.Go(func() { m.loop(ctx, c) })
	}
	wg.Wait()
}

// current loads the pair on disk, if it is usable and covers the names.
func (m *Manager) current(c *managed) (*x509.Certificate, error) {
	cf, kf := c.st.CertFile, c.st.KeyFile
	if _, err := os.Stat(cf); err != nil {
		return nil, err
	}
	h, err := m.store.Add(cf, kf)
	if err != nil {
		return nil, err
	}
	if _, err := h.Reload(); err != nil {
		return nil, err
	}
	leaf := h.Leaf()
	for _, n := range c.names {
		if leaf.VerifyHostname(n) != nil {
			return nil, fmt.Errorf("the certificate on disk does not name %s", n)
		}
	}
	c.cert = h
	return leaf, nil
}

func (m *Manager) loop(ctx context.Context, c *managed) {
	jitter := mrand.Float64()
	var next time.Time
	if leaf, err := m.current(c); err == nil {
		next = m.record(c, leaf, jitter)
	} else if !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("ACME certificate on disk unusable; issuing", "names", c.names, "err", err)
	}
	for {
		wait := time.Until(next)
		if !next.IsZero() && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-c.force:
			case <-t.C:
			}
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.st.LastAttempt = m.now()
		c.mu.Unlock()
		leaf, err := m.obtain(ctx, c)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			c.st.Failures++
			c.st.LastError = err.Error()
			d := Backoff(c.st.Failures, err)
			next = m.now().Add(d)
			c.st.NextRenewal = next
			c.mu.Unlock()
			m.log.Error("ACME certificate not obtained; retrying", "names", c.names, "err", err, "retry_in", d)
			continue
		}
		next = m.record(c, leaf, jitter)
	}
}

func (m *Manager) obtain(ctx context.Context, c *managed) (*x509.Certificate, error) {
	if _, err := m.issuer.Obtain(ctx, c.names); err != nil {
		return nil, err
	}
	return m.current(c)
}

func (m *Manager) record(c *managed, leaf *x509.Certificate, jitter float64) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Issuer = leaf.Issuer.String()
	c.st.NotAfter = leaf.NotAfter
	c.st.Failures = 0
	c.st.LastError = ""
	c.st.NextRenewal = RenewAt(leaf, jitter)
	return c.st.NextRenewal
}
