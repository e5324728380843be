package runtime

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	legolog "github.com/go-acme/lego/v5/log"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/certs/acme"
	"github.com/offedge/offedge/plan"
)

// ACMEOptions adjust how a node talks to ACME CAs; the zero value is
// production.
type ACMEOptions struct {
	// HTTPClient talks to the CA; nil is lego's default (the system's
	// roots). Tests and the lab give one trusting pebble.
	HTTPClient *http.Client
	// DNSProvider builds a DNS-01 provider from a plan's dns_provider and
	// credentials file; nil is acme.NewDNSProvider (OVH). Tests give one
	// writing to pebble-challtestsrv.
	DNSProvider func(name, credentials string, log *slog.Logger) (challenge.Provider, error)
	// Nameservers are the resolvers DNS-01 propagation is checked
	// against (process-wide, as lego's DNS client is); empty: the system's.
	Nameservers []string
}

// acmeNode is a node's ACME machinery, built once for the node's life:
// the certificate store its ACME certificates are served from (shared
// with their managers, so a new pair is served on the next handshake),
// the HTTP-01 challenge store its plain-HTTP listeners answer, and its
// ACME accounts, each registered once however many certificates use it.
type acmeNode struct {
	opts       ACMEOptions
	log        *slog.Logger
	store      *certs.Store
	challenges *acme.Challenges
	alpn       *acme.ALPNChallenges

	mu      sync.Mutex // serialises account creation: one registration per account
	issuers map[string]*acme.Issuer
}

func newACMENode(opts ACMEOptions, log *slog.Logger) *acmeNode {
	return &acmeNode{opts: opts, log: log, store: certs.NewStore(certs.Options{Logger: log}),
		challenges: acme.NewChallenges(), alpn: acme.NewALPNChallenges(), issuers: map[string]*acme.Issuer{}}
}

// issuer returns the account a certificate is ordered with, registering
// it the first time (a network round trip to the CA).
func (an *acmeNode) issuer(ctx context.Context, c *plan.ACMECertificate) (*acme.Issuer, error) {
	b, _ := json.Marshal(struct {
		A plan.ACMEAccount
		C string
	}{c.Account, c.Challenge})
	key := string(b)
	an.mu.Lock()
	defer an.mu.Unlock()
	if iss, ok := an.issuers[key]; ok {
		return iss, nil
	}
	cfg := acme.Config{Directory: c.Account.Directory, Email: c.Account.Email, StateDir: c.Account.StateDir,
		HTTPClient: an.opts.HTTPClient, Logger: an.log}
	switch c.Challenge {
	case "http-01":
		cfg.HTTP01 = an.challenges
	case "tls-alpn-01":
		cfg.TLSALPN01 = an.alpn
	case "dns-01":
		newProvider := an.opts.DNSProvider
		if newProvider == nil {
			newProvider = acme.NewDNSProvider
		}
		p, err := newProvider(c.Account.DNSProvider, c.Account.Credentials, an.log)
		if err != nil {
			return nil, fmt.Errorf("dns-01 provider %s: %w", c.Account.DNSProvider, err)
		}
		cfg.DNS01, cfg.Nameservers = p, an.opts.Nameservers
	default:
		return nil, fmt.Errorf("unknown challenge %q", c.Challenge)
	}
	iss, err := acme.NewIssuer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	an.issuers[key] = iss
	return iss, nil
}

// acmeCert is one ACME certificate resource: the handle its sites are
// served from and the goroutine keeping it issued and renewed.
type acmeCert struct {
	name string
	log  *slog.Logger
	spec plan.ACMECertificate
	cert *certs.Cert
	stop context.CancelFunc
	done chan struct{}

	mu  sync.Mutex
	mgr *acme.Manager
	// Before the account exists (the CA unreachable at start): the
	// attempts to create it.
	st acme.Status
}

// newACMECert starts keeping the certificate name issued. Its handle
// serves the certificate on disk when there is one, else the plan's
// fallback files (a copy from the site's previous node), else a
// self-signed placeholder for its names, until the first issue.
func (an *acmeNode) newACMECert(name string, files plan.ACMECertificate, served certFiles) (*acmeCert, error) {
	ph, err := an.placeholder(&files)
	if err != nil {
		return nil, err
	}
	h, err := an.store.AddPending(served.cert, served.key, ph)
	if err != nil {
		return nil, fmt.Errorf("ACME certificate %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ac := &acmeCert{name: name, log: an.log, spec: files, cert: h, stop: cancel, done: make(chan struct{}),
		st: acme.Status{Names: slices.Clone(files.Names), CertFile: served.cert, KeyFile: served.key}}
	legoLogs.add(an.log, files.Names)
	go func() {
		defer close(ac.done)
		ac.run(ctx, an)
	}()
	return ac, nil
}

type certFiles struct{ cert, key string }

// placeholder is what a certificate's sites are served until it is issued.
func (an *acmeNode) placeholder(c *plan.ACMECertificate) (*tls.Certificate, error) {
	if fb := c.Fallback; fb != nil {
		p, err := certs.LoadKeyPair(fb.CertFile, fb.KeyFile, false)
		if err == nil {
			return &p, nil
		}
		an.log.Warn("ACME certificate: its fallback files do not load; serving a self-signed placeholder until it is issued", "names", c.Names, "err", err)
	}
	cp, kp, err := certs.SelfSigned(certs.SelfSignedOptions{Names: c.Names})
	if err != nil {
		return nil, err
	}
	p, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func (ac *acmeCert) run(ctx context.Context, an *acmeNode) {
	for {
		ac.mu.Lock()
		ac.st.LastAttempt = time.Now()
		ac.mu.Unlock()
		iss, err := an.issuer(ctx, &ac.spec)
		if err == nil {
			m := acme.NewManager(iss, an.store)
			m.Add(ac.spec.Names)
			ac.mu.Lock()
			ac.mgr = m
			ac.mu.Unlock()
			m.Run(ctx)
			return
		}
		if ctx.Err() != nil {
			return
		}
		ac.mu.Lock()
		ac.st.Failures++
		ac.st.LastError = err.Error()
		d := acme.Backoff(ac.st.Failures, err)
		ac.st.NextRenewal = time.Now().Add(d)
		ac.mu.Unlock()
		an.log.Error("ACME account not ready; retrying", "names", ac.spec.Names, "err", err, "retry_in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// acmeStopWait bounds how long closing a certificate waits for an order
// in flight to give up (lego may be waiting on a DNS propagation check);
// past it the order finishes, or fails, on its own, its files written
// atomically as always.
const acmeStopWait = 2 * time.Second

func (ac *acmeCert) close() error {
	ac.stop()
	t := time.NewTimer(acmeStopWait)
	defer t.Stop()
	select {
	case <-ac.done:
	case <-t.C:
	}
	legoLogs.remove(ac.log, ac.spec.Names)
	return nil
}

// status is the certificate's state: its manager's, or the account's
// attempts before there is one.
func (ac *acmeCert) status() ACMEStatus {
	ac.mu.Lock()
	st, m := ac.st, ac.mgr
	ac.mu.Unlock()
	if m != nil {
		if l := m.Statuses(); len(l) > 0 {
			st = l[0]
		}
	}
	s := ACMEStatus{Name: ac.name, Site: ac.spec.Site, Names: st.Names, Challenge: ac.spec.Challenge, Directory: ac.spec.Account.Directory,
		Issuer: st.Issuer, NotAfter: st.NotAfter, NextRenewal: st.NextRenewal, LastAttempt: st.LastAttempt,
		LastSuccess: st.LastSuccess, LastError: st.LastError, Failures: st.Failures, Placeholder: ac.cert.Pending()}
	if s.Placeholder {
		s.Issuer, s.NotAfter = "", time.Time{}
		if ac.spec.Fallback != nil {
			s.Serving = "fallback " + ac.spec.Fallback.CertFile
		} else {
			s.Serving = "self-signed placeholder"
		}
	} else {
		s.Serving = st.CertFile
	}
	return s
}

// renew forces a renewal now; it fails while the account is not ready.
func (ac *acmeCert) renew() error {
	ac.mu.Lock()
	m := ac.mgr
	ac.mu.Unlock()
	if m == nil {
		return errors.New("its ACME account is not ready yet (see last_error); it is retried on its own")
	}
	if !m.Renew(ac.spec.Names[0]) {
		return errors.New("its manager does not know it")
	}
	return nil
}

// ACMEStatus is one ACME certificate of the node.
type ACMEStatus struct {
	// Name is the plan's resource name; Site the inventory site.
	Name      string   `json:"name"`
	Site      string   `json:"site"`
	Names     []string `json:"names"`
	Challenge string   `json:"challenge"`
	Directory string   `json:"directory"`
	// Serving says what handshakes get: the certificate's file, or the
	// fallback or self-signed placeholder while the first issue runs
	// (Placeholder true).
	Serving     string    `json:"serving"`
	Placeholder bool      `json:"placeholder,omitempty"`
	Issuer      string    `json:"issuer,omitempty"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	NextRenewal time.Time `json:"next_renewal,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Failures    int       `json:"failures,omitempty"`
}

// legoLogs carries lego's log records (lego logs through one
// process-wide logger) to the logger of the node whose certificate they
// are about, by the domain they name; a record naming none goes to every
// node with ACME certificates (in production, the one node). It is the
// one package-level variable of the runtime, because lego's logger is one.
var legoLogs = &legoRouter{byName: map[string][]*slog.Logger{}}

type legoRouter struct {
	once   sync.Once
	mu     sync.Mutex
	byName map[string][]*slog.Logger
}

func (r *legoRouter) add(l *slog.Logger, names []string) {
	r.once.Do(func() { legolog.SetDefault(slog.New(legoHandler{r: r})) })
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		r.byName[n] = append(r.byName[n], l)
	}
}

func (r *legoRouter) remove(l *slog.Logger, names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		ls := r.byName[n]
		if i := slices.Index(ls, l); i >= 0 {
			ls = slices.Delete(ls, i, i+1)
		}
		if len(ls) == 0 {
			delete(r.byName, n)
		} else {
			r.byName[n] = ls
		}
	}
}

// loggers returns the loggers a record naming domains goes to.
func (r *legoRouter) loggers(domains []string) []*slog.Logger {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*slog.Logger
	for _, d := range domains {
		for _, l := range r.byName[d] {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	if len(out) == 0 {
		for _, ls := range r.byName {
			for _, l := range ls {
				if !slices.Contains(out, l) {
					out = append(out, l)
				}
			}
		}
	}
	return out
}

type legoHandler struct {
	r     *legoRouter
	attrs []slog.Attr
}

func (h legoHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h legoHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return legoHandler{r: h.r, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h legoHandler) WithGroup(string) slog.Handler { return h }

func (h legoHandler) Handle(ctx context.Context, rec slog.Record) error {
	var domains []string
	collect := func(a slog.Attr) bool {
		switch a.Key {
		case "domain":
			domains = append(domains, a.Value.String())
		case "domains":
			domains = append(domains, strings.Split(a.Value.String(), ", ")...)
		}
		return true
	}
	for _, a := range h.attrs {
		collect(a)
	}
	rec.Attrs(collect)
	out := rec.Clone()
	out.AddAttrs(h.attrs...)
	out.AddAttrs(slog.String("from", "lego"))
	for _, l := range h.r.loggers(domains) {
		if l.Handler().Enabled(ctx, rec.Level) {
			l.Handler().Handle(ctx, out.Clone())
		}
	}
	return nil
}
