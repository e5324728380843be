package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/offedge/offedge/certs/acme"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/runtime"
)

// certHandlers are the admin endpoints of the node's certificates: GET
// /certs (what it serves and the state of its ACME certificates), POST
// /certs/renew?name=NAME (renew one now).
func certHandlers(mux *http.ServeMux, rt func() *runtime.Node) {
	mux.HandleFunc("GET /certs", func(w http.ResponseWriter, r *http.Request) {
		st := rt().Status()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(certsAnswer{Node: st.Node, Certificates: st.Certificates, ACME: st.ACME})
	})
	mux.HandleFunc("POST /certs/renew", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if name == "" {
			http.Error(w, "give the name to renew (name=images.openfoodfacts.org)", http.StatusBadRequest)
			return
		}
		if err := rt().RenewCertificate(name); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, "renewing %s\n", name)
	})
}

// acmeClient is how offedge run talks to ACME CAs: the system's roots,
// plus those of caFile when given.
func acmeClient(caFile string) (runtime.ACMEOptions, error) {
	if caFile == "" {
		return runtime.ACMEOptions{}, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return runtime.ACMEOptions{}, fmt.Errorf("--acme-ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return runtime.ACMEOptions{}, fmt.Errorf("--acme-ca %s: no PEM certificate in it", caFile)
	}
	return runtime.ACMEOptions{HTTPClient: &http.Client{Timeout: 60 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Proxy: http.ProxyFromEnvironment}}}, nil
}

// certsAnswer is GET /certs.
type certsAnswer struct {
	Node         string                      `json:"node"`
	Certificates []runtime.CertificateStatus `json:"certificates"`
	ACME         []runtime.ACMEStatus        `json:"acme"`
}

// certRow is one name of `offedge certs`.
type certRow struct {
	name, node, served, issuer string
	notAfter, next             time.Time
	problem                    string
}

func cmdCerts(e *env, args []string) error {
	if len(args) > 0 && args[0] == "renew" {
		return certsRenew(e, args[1:])
	}
	fs := e.newFlags("certs")
	inv := inventoryFlag(fs)
	node := fs.String("node", "", "only the node `NAME` (default: every node serving a site with TLS)")
	admin := fs.String("admin", "", "admin `ADDR` of the running node (needs --node): its live state instead of the files on this machine")
	root := fs.String("root", "", "`DIR` prefixed to every file path in the plan")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	path, err := inventoryArg(*inv, pos)
	if err != nil {
		return err
	}
	if *admin != "" && *node == "" {
		return usageError("--admin needs --node: the node whose admin endpoint it is")
	}
	m, err := loadInventory(path)
	if err != nil {
		return err
	}
	nodes := []string{*node}
	if *node == "" {
		nodes = nil
		for _, n := range nodeNames(m) {
			for _, s := range m.SitesOn(n) {
				if s.TLS != nil {
					nodes = append(nodes, n)
					break
				}
			}
		}
	}
	var rows []certRow
	for _, n := range nodes {
		if err := checkNode(m, n); err != nil {
			return err
		}
		p, err := plan.Compile(m, n, plan.Options{Root: *root})
		if err != nil {
			return err
		}
		if *admin != "" {
			live, err := certsFromAdmin(*admin)
			if err != nil {
				return err
			}
			if live.Node != n {
				return fmt.Errorf("the admin endpoint %s is node %s's, not %s's", *admin, live.Node, n)
			}
			rows = append(rows, liveRows(p, live)...)
		} else {
			rows = append(rows, fileRows(p)...)
		}
	}
	if *admin != "" {
		fmt.Fprintf(e.stdout, "# from the plan and the running node's admin endpoint %s\n", *admin)
	} else {
		fmt.Fprintln(e.stdout, "# from the plan and the certificate files on this machine (--admin for a running node's state)")
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tNODE\tSERVED WITH\tISSUER\tNOT AFTER\tNEXT RENEWAL")
	day := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04")
	}
	var problems []string
	for _, r := range rows {
		issuer := r.issuer
		if issuer == "" {
			issuer = "-"
		}
		if r.problem != "" {
			issuer = "? (below)"
			if p := r.node + ": " + r.problem; !slices.Contains(problems, p) {
				problems = append(problems, p)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.node, r.served, issuer, day(r.notAfter), day(r.next))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(e.stdout, "  %s\n", p)
	}
	return nil
}

// siteNames returns, for each certificate resource, the hosts of the
// sites served with it.
func siteNames(p *plan.Plan) map[string][]string {
	out := map[string][]string{}
	for _, l := range p.Listeners {
		if l.HTTP == nil {
			continue
		}
		for _, s := range l.HTTP.Sites {
			if s.Certificate == "" {
				continue
			}
			for _, h := range s.Hosts {
				if !slices.Contains(out[s.Certificate], h) {
					out[s.Certificate] = append(out[s.Certificate], h)
				}
			}
		}
	}
	return out
}

// fileRows reads what the node would serve from the files on this machine.
func fileRows(p *plan.Plan) []certRow {
	var rows []certRow
	names := siteNames(p)
	for _, res := range slices.Sorted(maps.Keys(p.Resources.Certificates)) {
		c := p.Resources.Certificates[res]
		a, isACME := p.Resources.ACME[res]
		row := certRow{node: p.Node, served: "files " + c.CertFile}
		leaf, err := readLeaf(c.CertFile)
		switch {
		case err == nil:
			row.issuer, row.notAfter = leaf.Issuer.CommonName, leaf.NotAfter
			if isACME {
				row.served = "acme " + a.Challenge + " " + c.CertFile
				// The manager renews at two thirds of the lifetime, less
				// a jitter of up to a twentieth (or in the CA's ARI
				// window, which only the running node knows).
				row.next = acme.RenewAt(leaf, 0)
			}
		case isACME && errors.Is(err, os.ErrNotExist):
			row.served = "acme " + a.Challenge + ": not issued yet (served a self-signed placeholder until it is)"
			if a.Fallback != nil {
				row.served = "acme " + a.Challenge + ": not issued yet (served " + a.Fallback.CertFile + " until it is)"
			}
		default:
			row.problem = err.Error()
		}
		for _, n := range names[res] {
			r := row
			r.name = n
			rows = append(rows, r)
		}
	}
	return rows
}

// liveRows is what the running node says it serves.
func liveRows(p *plan.Plan, live certsAnswer) []certRow {
	var rows []certRow
	names := siteNames(p)
	byName := map[string]runtime.ACMEStatus{}
	for _, a := range live.ACME {
		byName[a.Name] = a
	}
	for _, c := range live.Certificates {
		row := certRow{node: live.Node, notAfter: c.NotAfter}
		if f, ok := p.Resources.Certificates[c.Name]; ok {
			row.served = "files " + f.CertFile
		}
		if a, ok := byName[c.Name]; ok {
			row.served = "acme " + a.Challenge + " " + a.Serving
			row.issuer, row.next = a.Issuer, a.NextRenewal
			if a.LastError != "" {
				row.problem = fmt.Sprintf("last attempt %s failed (%d in a row): %s", a.LastAttempt.UTC().Format(time.RFC3339), a.Failures, a.LastError)
			}
		} else if f, ok := p.Resources.Certificates[c.Name]; ok {
			if leaf, err := readLeaf(f.CertFile); err == nil {
				row.issuer = leaf.Issuer.CommonName
			}
		}
		hosts := names[c.Name]
		if len(hosts) == 0 {
			hosts = c.Names
		}
		for _, n := range hosts {
			r := row
			r.name = n
			rows = append(rows, r)
		}
	}
	return rows
}

// readLeaf reads the first certificate of a PEM chain (certbot's fullchain.pem).
func readLeaf(certFile string) (*x509.Certificate, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", certFile)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func certsFromAdmin(admin string) (certsAnswer, error) {
	c, err := adminClient(30 * time.Second)
	if err != nil {
		return certsAnswer{}, err
	}
	resp, err := c.Get("http://" + admin + "/certs")
	if err != nil {
		return certsAnswer{}, err
	}
	body, err := adminBody(resp)
	if err != nil {
		return certsAnswer{}, err
	}
	var a certsAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return certsAnswer{}, fmt.Errorf("reading %s/certs: %w", admin, err)
	}
	return a, nil
}

func certsRenew(e *env, args []string) error {
	fs := e.newFlags("certs renew")
	admin := fs.String("admin", "", "admin `ADDR` of the running offedge (required)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if *admin == "" {
		return usageError("--admin is required: the address of the running offedge's admin endpoint")
	}
	if len(pos) != 1 {
		return usageError("certs renew takes one name (a host of the site, e.g. images.openfoodfacts.org)")
	}
	c, err := adminClient(30 * time.Second)
	if err != nil {
		return err
	}
	resp, err := c.Post("http://"+*admin+"/certs/renew?"+url.Values{"name": {pos[0]}}.Encode(), "", nil)
	if err != nil {
		return err
	}
	body, err := adminBody(resp)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, strings.TrimSpace(string(body))+" (offedge certs --node N --admin ADDR shows the result)\n")
	return nil
}
