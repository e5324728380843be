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

	legoapi "github.com/go-acme/lego/v5/acme/api"

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
	// LastSuccess is when the manager last obtained the certificate (zero:
	// not since it started; the pair on disk was current).
	LastSuccess time.Time
	LastError   string
	Failures    int
	// WindowStart and WindowEnd are the CA's suggested renewal window
	// (ARI) of the current certificate; zero when the CA gives none and
	// the renewal is at two thirds of the lifetime.
	WindowStart, WindowEnd time.Time
}

// Manager keeps a node's ACME certificates issued and renewed: each one is
// obtained when its files are missing, unusable or not for its names, and
// renewed in the CA's suggested renewal window when it publishes renewal
// information (ARI, RFC 9773; asked again after its Retry-After, so a
// window moved earlier is followed), else at [RenewAt]; a failure is logged with its reason and retried
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
	// replaces is the certificate a renewal replaces, when the CA gave
	// its renewal information.
	replaces *x509.Certificate
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
	var leaf *x509.Certificate
	var renew, recheck time.Time // zero renew: now
	if l, err := m.current(c); err == nil {
		leaf = l
		m.record(c, leaf)
		renew, recheck = m.schedule(ctx, c, leaf, jitter)
	} else if !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("ACME certificate on disk unusable; issuing", "names", c.names, "err", err)
	}
	for {
		if !renew.IsZero() {
			wake := renew
			if !recheck.IsZero() && recheck.Before(wake) {
				wake = recheck
			}
			forced := false
			if wait := time.Until(wake); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-c.force:
					forced = true
				case <-t.C:
				}
				t.Stop()
			}
			if ctx.Err() != nil {
				return
			}
			if !forced && leaf != nil && m.now().Before(renew) {
				// Woken to ask the CA again: its window may have moved.
				renew, recheck = m.schedule(ctx, c, leaf, jitter)
				continue
			}
		}
		c.mu.Lock()
		c.st.LastAttempt = m.now()
		replaces := c.replaces
		c.mu.Unlock()
		l, err := m.obtain(ctx, c, replaces)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			c.st.Failures++
			c.st.LastError = err.Error()
			d := Backoff(c.st.Failures, err)
			renew, recheck = m.now().Add(d), time.Time{}
			c.st.NextRenewal = renew
			c.mu.Unlock()
			m.log.Error("ACME certificate not obtained; retrying", "names", c.names, "err", err, "retry_in", d)
			continue
		}
		c.mu.Lock()
		c.st.LastSuccess = m.now()
		c.mu.Unlock()
		leaf = l
		m.record(c, leaf)
		renew, recheck = m.schedule(ctx, c, leaf, jitter)
	}
}

func (m *Manager) obtain(ctx context.Context, c *managed, replaces *x509.Certificate) (*x509.Certificate, error) {
	if _, err := m.issuer.obtain(ctx, c.names, replaces); err != nil {
		return nil, err
	}
	return m.current(c)
}

func (m *Manager) record(c *managed, leaf *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Issuer = leaf.Issuer.String()
	c.st.NotAfter = leaf.NotAfter
	c.st.Failures = 0
	c.st.LastError = ""
}

// How often the CA's renewal information is asked again: after the
// Retry-After it answers, within these bounds (6 hours when it gives none,
// Let's Encrypt's own suggestion). Variables so that tests can shorten them.
var (
	ariRecheckMin     = time.Minute
	ariRecheckDefault = 6 * time.Hour
	ariRecheckMax     = 24 * time.Hour
)

// ariTimeout bounds one renewal-information request.
const ariTimeout = 30 * time.Second

// schedule decides when leaf is renewed: at a point of the CA's suggested
// renewal window (ARI, RFC 9773) chosen by the certificate's jitter — now,
// if the window has begun — when the CA publishes one, else at [RenewAt].
// It also returns when to ask the CA again (zero: never, it has no ARI).
func (m *Manager) schedule(ctx context.Context, c *managed, leaf *x509.Certificate, jitter float64) (renew, recheck time.Time) {
	actx, cancel := context.WithTimeout(ctx, ariTimeout)
	ri, err := m.issuer.renewalInfo(actx, leaf)
	cancel()
	now := m.now()
	renew = RenewAt(leaf, jitter)
	c.mu.Lock()
	defer func() {
		c.st.NextRenewal = renew
		c.mu.Unlock()
	}()
	c.st.WindowStart, c.st.WindowEnd, c.replaces = time.Time{}, time.Time{}, nil
	switch {
	case errors.Is(err, legoapi.ErrNoARI):
		return renew, time.Time{}
	case err != nil:
		if ctx.Err() == nil {
			m.log.Warn("ACME renewal information unavailable; renewing at two thirds of the lifetime meanwhile", "names", c.names, "err", err)
		}
		return renew, now.Add(ariRecheckDefault)
	}
	start, end := ri.SuggestedWindow.Start, ri.SuggestedWindow.End
	if !start.Before(leaf.NotAfter) {
		m.log.Warn("ACME renewal window starts after the certificate expires; ignoring it", "names", c.names, "window_start", start, "not_after", leaf.NotAfter)
		return renew, now.Add(ariRecheckDefault)
	}
	renew = start.Add(time.Duration(jitter * float64(end.Sub(start))))
	if renew.Before(now) {
		renew = now
	}
	ra := ri.RetryAfter
	if ra <= 0 {
		ra = ariRecheckDefault
	}
	ra = min(max(ra, ariRecheckMin), ariRecheckMax)
	c.st.WindowStart, c.st.WindowEnd, c.replaces = start, end, leaf
	return renew, now.Add(ra)
}
