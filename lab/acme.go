package lab

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-acme/lego/v5/challenge"

	"github.com/offedge/offedge/certs/acme"
	httpedge "github.com/offedge/offedge/edge/http"
	"github.com/offedge/offedge/internal/pebble"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/runtime"
)

// The lab's ACME: with Options.Pebble and pebble installed, the lab starts
// pebble (with challtestsrv as its DNS) and every node obtains its sites'
// certificates from it, by DNS-01 (wildcards included; every name
// resolves in challtestsrv). Until a certificate is issued the node serves
// the lab CA's (its fallback, as a copied certbot certificate is in
// production); without pebble the lab CA's stay.

// labEmail is the lab nodes' ACME account address.
const labEmail = "lab@offedge.invalid"

// startPebble starts pebble in the lab's directory; it runs while the
// rest of Start prepares the nodes.
func (l *Lab) startPebble(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	if !l.opts.Pebble {
		done <- nil
		return done
	}
	if _, _, err := pebble.LookPath(); err != nil {
		l.log.Info("lab: pebble is not installed; sites keep the lab CA's certificates", "err", err)
		done <- nil
		return done
	}
	go func() {
		srv, err := pebble.Start(ctx, pebble.Options{Dir: filepath.Join(l.dir, "pebble"), HTTPPort: int(labPort(80)), TLSPort: int(labPort(443))})
		if err != nil {
			done <- err
			return
		}
		l.pebble = srv
		done <- nil
	}()
	return done
}

// usePebble makes the lab trust pebble's root (its clients, the nodes'
// TLS upstreams, the CA file) and turns every node's certificates into
// ACME certificates issued by pebble, the lab CA's files their fallback.
// It runs before any node starts: the pool is not shared yet.
func (l *Lab) usePebble() error {
	pemRoots, err := l.pebble.RootPEM(context.Background())
	if err != nil {
		return err
	}
	l.ca.pool.AppendCertsFromPEM(pemRoots)
	f, err := os.OpenFile(l.ca.pemPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(pemRoots)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	for _, ln := range l.nodes {
		acmeFromPebble(ln.plan, l.pebble.Directory, filepath.Join(l.nodeDir(ln.node.Name), "acme"))
	}
	return nil
}

// acmeFromPebble rewrites a lab node's plan: each certificate its sites
// are served with becomes an ACME certificate of the same name, for the
// hosts of those sites, issued by pebble through DNS-01; the lab CA's
// files are served until it is.
func acmeFromPebble(p *plan.Plan, directory, stateDir string) {
	hosts := map[string][]string{}
	site := map[string]string{}
	for _, l := range p.Listeners {
		if l.HTTP == nil || !l.HTTP.TLS {
			continue
		}
		for _, s := range l.HTTP.Sites {
			if s.Certificate == "" {
				continue
			}
			if _, ok := site[s.Certificate]; !ok {
				site[s.Certificate] = s.Name
			}
			for _, h := range s.Hosts {
				if !slices.Contains(hosts[s.Certificate], h) {
					hosts[s.Certificate] = append(hosts[s.Certificate], h)
				}
			}
		}
	}
	for name, names := range hosts {
		if _, isACME := p.Resources.ACME[name]; isACME || len(names) == 0 {
			continue
		}
		files := p.Resources.Certificates[name]
		cf, kf := acme.CertFiles(stateDir, names[0])
		p.Resources.Certificates[name] = httpedge.Certificate{CertFile: cf, KeyFile: kf}
		if p.Resources.ACME == nil {
			p.Resources.ACME = map[string]plan.ACMECertificate{}
		}
		p.Resources.ACME[name] = plan.ACMECertificate{
			Site: site[name], Names: names, Challenge: "dns-01",
			Account:  plan.ACMEAccount{Directory: directory, Email: labEmail, StateDir: stateDir, DNSProvider: "pebble-challtestsrv"},
			Fallback: &files,
		}
	}
}

// acmeOptions is how the lab's nodes reach pebble.
func (l *Lab) acmeOptions() runtime.ACMEOptions {
	if l.pebble == nil {
		return runtime.ACMEOptions{}
	}
	dns := l.pebble.DNSProvider()
	return runtime.ACMEOptions{HTTPClient: l.pebble.Client, Nameservers: []string{l.pebble.DNS},
		DNSProvider: func(string, string, *slog.Logger) (challenge.Provider, error) { return dns, nil }}
}
