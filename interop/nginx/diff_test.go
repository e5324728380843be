package nginx

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/offedge/offedge/certs"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/runtime"
)

// The differential test: one configuration served by the real nginx and
// by offedge with the imported inventory, the same requests to both.
//
// The parsed tree is rewritten for the test (listen addresses and ports,
// upstream addresses, certificates, roots, logs and caches moved into a
// temporary directory and onto loopback) and printed back for nginx; the
// same rewrite, with offedge's listen address, is what is imported. So
// both serve one configuration, and every difference is the import's or
// the edge's.

const (
	nginxIP   = "127.0.0.31"
	offedgeIP = "127.0.0.32"
	// backendMark is in every backend answer: a body with it came from
	// the backend, through the proxy.
	backendMark = "offedge-diff-backend"
	probeFile   = "offedge-probe.txt"
)

// diffEnv is one configuration's test setup.
type diffEnv struct {
	t       *testing.T
	dir     string
	ports   map[int]int // original listen port → test port (same on both)
	backend map[string]string
	pool    *x509.CertPool
	roots   map[string]string // original root → test directory
	files   []string          // URIs every root holds a file for
	headers map[string]bool   // add_header names of the configuration
	names   []string          // server names and literal Host values: the backends' certificates carry them
	htpw    string
}

func newDiffEnv(t *testing.T, ds []*Directive, tn *testNet) *diffEnv {
	e := &diffEnv{t: t, dir: t.TempDir(), ports: map[int]int{}, backend: map[string]string{}, pool: x509.NewCertPool(),
		roots: map[string]string{}, headers: map[string]bool{}}
	walk(ds, func(d *Directive) {
		switch d.Name {
		case "listen":
			if p := listenPort(d.Arg(0)); p > 0 && e.ports[p] == 0 {
				e.ports[p] = freePort(t)
			}
		case "add_header":
			e.headers[http.CanonicalHeaderKey(d.Arg(0))] = true
		case "server_name":
			e.names = append(e.names, d.Args...)
		case "proxy_set_header":
			if strings.EqualFold(d.Arg(0), "host") && !strings.Contains(d.Arg(1), "$") {
				e.names = append(e.names, d.Arg(1))
			}
		case "error_page":
			e.files = append(e.files, d.Arg(len(d.Args)-1))
		case "rewrite":
			e.files = append(e.files, d.Arg(1))
		case "location":
			l := parseLocation(d, nil)
			if l == nil {
				return
			}
			switch {
			case l.re != nil:
				if s, ok := sample(l.path, l.mod == "~*"); ok {
					e.files = append(e.files, s)
				}
			case l.mod == "=":
				e.files = append(e.files, l.path)
			case l.mod != "@":
				e.files = append(e.files, strings.TrimSuffix(l.path, "/")+"/"+probeFile)
			}
		}
	})
	e.files = append(e.files, "/"+probeFile)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	e.htpw = filepath.Join(e.dir, "htpasswd")
	os.WriteFile(e.htpw, []byte("test:"+string(hash)+"\n"), 0o644)
	return e
}

func listenPort(a string) int {
	if _, p, err := net.SplitHostPort(a); err == nil {
		n, _ := strconv.Atoi(p)
		return n
	}
	n, _ := strconv.Atoi(a)
	if n == 0 && a != "" {
		return 80
	}
	return n
}

func freePort(t *testing.T) int {
	for {
		ln, err := net.Listen("tcp", nginxIP+":0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if l2, err := net.Listen("tcp", net.JoinHostPort(offedgeIP, strconv.Itoa(p))); err == nil {
			l2.Close()
			return p
		}
	}
}

// rewrite copies ds for the test: listen on ip, upstreams on their test
// backends, files in the test directory. forNginx also moves what only
// nginx reads (memory caches).
func (e *diffEnv) rewrite(ds []*Directive, ip string, forNginx bool) []*Directive {
	var out []*Directive
	for _, d := range ds {
		c := &Directive{Name: d.Name, Args: append([]string{}, d.Args...), File: d.File, Line: d.Line}
		switch d.Name {
		case "user", "pid", "worker_processes", "load_module", "events", "include", "ssl_trusted_certificate", "resolver", "resolver_timeout", "ssl_stapling", "ssl_stapling_verify":
			continue
		case "http":
			out = append(out, e.rewrite(d.Block, ip, forNginx)...)
			continue
		case "listen":
			if strings.HasPrefix(d.Arg(0), "[") {
				continue // one address per family is enough on loopback
			}
			c.Args[0] = net.JoinHostPort(ip, strconv.Itoa(e.ports[listenPort(d.Arg(0))]))
			var keep []string
			for _, a := range c.Args {
				if a != "ipv6only=on" && a != "reuseport" {
					keep = append(keep, a)
				}
			}
			c.Args = keep
		case "proxy_pass":
			c.Args[0] = e.retarget(d.Arg(0))
		case "server":
			if !d.IsBlock() && len(c.Args) > 0 {
				c.Args[0] = e.backendAddr(c.Args[0], "http")
			}
		case "ssl_certificate", "ssl_certificate_key":
			c.Args[0] = e.cert(d.Arg(0), d.Name == "ssl_certificate_key")
		case "root", "alias":
			c.Args[0] = e.root(d.Arg(0))
		case "access_log", "error_log":
			if d.Arg(0) != "off" && d.Arg(0) != "stderr" {
				c.Args[0] = filepath.Join(e.dir, "logs", strings.ReplaceAll(strings.Trim(d.Arg(0), "/"), "/", "_"))
			}
		case "auth_basic_user_file":
			c.Args[0] = e.htpw
		case "proxy_cache_path":
			if forNginx || !strings.HasPrefix(d.Arg(0), "/dev/shm/") {
				c.Args[0] = filepath.Join(e.dir, "cache", fmt.Sprint(forNginx), strings.ReplaceAll(strings.Trim(d.Arg(0), "/"), "/", "_"))
			}
		}
		if d.IsBlock() {
			c.Block = e.rewrite(d.Block, ip, forNginx)
			if c.Block == nil {
				c.Block = []*Directive{}
			}
		}
		out = append(out, c)
	}
	return out
}

// retarget points a proxy_pass URL at the test backend of its host.
func (e *diffEnv) retarget(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok || strings.Contains(u, "$") {
		return u
	}
	hp, uri, _ := strings.Cut(rest, "/")
	if _, _, err := net.SplitHostPort(hp); err != nil && !strings.Contains(hp, ".") {
		return u // an upstream block's name
	}
	out := scheme + "://" + e.backendAddr(hp, scheme)
	if strings.Contains(rest, "/") {
		out += "/" + uri
	}
	return out
}

func (e *diffEnv) backendAddr(hp, scheme string) string {
	for _, sc := range []string{scheme, "http", "https"} {
		if a, ok := e.backend[withPort(hp, sc)]; ok {
			return a
		}
	}
	return hp
}

// cert returns the test file standing for a certificate path: certbot's
// layout under the test directory, written once per certificate name with
// every host of the servers using it.
func (e *diffEnv) cert(p string, key bool) string {
	name := filepath.Base(filepath.Dir(p))
	dir := filepath.Join(e.dir, "letsencrypt", "live", name)
	if key {
		return filepath.Join(dir, "privkey.pem")
	}
	return filepath.Join(dir, "fullchain.pem")
}

func (e *diffEnv) writeCerts(ds []*Directive) {
	names := map[string][]string{}
	walk(ds, func(d *Directive) {
		if d.Name != "server" || !d.IsBlock() {
			return
		}
		var hosts []string
		for _, sn := range Find(d.Block, "server_name") {
			for _, h := range sn.Args {
				if hostNameRE.MatchString(strings.ToLower(h)) {
					hosts = append(hosts, strings.ToLower(h))
				}
			}
		}
		for _, c := range Find(d.Block, "ssl_certificate") {
			n := filepath.Base(filepath.Dir(c.Arg(0)))
			names[n] = append(names[n], hosts...)
		}
	})
	for n, hosts := range names {
		if len(hosts) == 0 {
			hosts = []string{"localhost"}
		}
		cf, _, err := certs.WriteSelfSigned(filepath.Join(e.dir, "letsencrypt", "live", n), certs.SelfSignedOptions{Names: dedupe(hosts)})
		if err != nil {
			e.t.Fatal(err)
		}
		pem, _ := os.ReadFile(cf)
		e.pool.AppendCertsFromPEM(pem)
	}
}

// root returns the test directory standing for a root, with a file for
// every URI the requests ask for.
func (e *diffEnv) root(r string) string {
	if d, ok := e.roots[r]; ok {
		return d
	}
	d := filepath.Join(e.dir, "roots", strconv.Itoa(len(e.roots)))
	e.roots[r] = d
	for _, u := range e.files {
		p := filepath.Join(d, filepath.FromSlash(path.Clean(u)))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("static "+u+" from "+r+"\n"), 0o644)
	}
	return d
}

// backends starts one HTTP(S) server per test backend address: it answers
// what it was asked (method, URI, Host), marked.
func (e *diffEnv) backends(tn *testNet, ts map[string]string) {
	for hp, scheme := range ts {
		h, p, _ := net.SplitHostPort(hp)
		ip := tn.backends[h]
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			e.t.Fatal(err)
		}
		addr := ln.Addr().String()
		e.backend[hp] = addr
		port, _ := strconv.Atoi(p)
		_, tp, _ := net.SplitHostPort(addr)
		tport, _ := strconv.Atoi(tp)
		tn.ports[ip][tport] = scheme
		delete(tn.ports[ip], port)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if strings.Contains(r.URL.Path, "offedge-missing") {
				w.WriteHeader(404)
			}
			fmt.Fprintf(w, "%s %s %s host=%s\n", backendMark, r.Method, r.RequestURI, r.Host)
		}), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
		if scheme == "https" {
			names := []string{ip, h}
			for _, n := range e.names {
				if hostNameRE.MatchString(strings.ToLower(n)) {
					names = append(names, strings.ToLower(n))
				}
			}
			cf, kf, err := certs.WriteSelfSigned(filepath.Join(e.dir, "backend", ip), certs.SelfSignedOptions{Names: dedupe(names)})
			if err != nil {
				e.t.Fatal(err)
			}
			pem, _ := os.ReadFile(cf)
			e.pool.AppendCertsFromPEM(pem)
			go srv.ServeTLS(ln, cf, kf)
		} else {
			go srv.Serve(ln)
		}
		e.t.Cleanup(func() { srv.Close() })
	}
}

// nginxConf wraps the rewritten http-level directives in a main context.
func (e *diffEnv) nginxConf(ds []*Directive) string {
	os.MkdirAll(filepath.Join(e.dir, "logs"), 0o755)
	mime := ""
	if _, err := os.Stat("/etc/nginx/mime.types"); err == nil {
		mime = "include /etc/nginx/mime.types;\n"
	}
	return fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
client_body_temp_path %[1]s/tmp;
proxy_temp_path %[1]s/tmp;
fastcgi_temp_path %[1]s/tmp;
uwsgi_temp_path %[1]s/tmp;
scgi_temp_path %[1]s/tmp;
access_log off;
%[2]s%[3]s}
`, e.dir, mime, Print(ds))
}

// request is one request of the set, sent to both servers.
type request struct {
	scheme, host string
	port         int // test port
	method, path string
	ua, referer  string
	auth         bool
	gzip         bool // Accept-Encoding: gzip
}

func (q request) String() string {
	s := fmt.Sprintf("%s %s://%s:%d%s", q.method, q.scheme, q.host, q.port, q.path)
	if q.ua != "" {
		s += " UA=" + strconv.Quote(q.ua)
	}
	if q.referer != "" {
		s += " Referer=" + strconv.Quote(q.referer)
	}
	if q.auth {
		s += " (with credentials)"
	}
	if q.gzip {
		s += " (gzip)"
	}
	return s
}

// requests generates the request set from the configuration: for every
// server, each of its hosts on each of its ports, a path into each
// location, a missing path, HEAD and POST, the user agents and referers
// its ifs test, and credentials where basic auth guards it.
func (e *diffEnv) requests(ds []*Directive) []request {
	var out []request
	seen := map[string]bool{}
	add := func(q request) {
		k := q.String()
		if !seen[k] && len(out) < 400 {
			seen[k] = true
			out = append(out, q)
		}
	}
	walk(ds, func(sd *Directive) {
		if sd.Name != "server" || !sd.IsBlock() {
			return
		}
		var hosts []string
		for _, sn := range Find(sd.Block, "server_name") {
			for _, h := range sn.Args {
				h = strings.ToLower(h)
				switch {
				case strings.HasPrefix(h, "*."):
					hosts = append(hosts, "offedge-probe."+h[2:])
				case strings.HasPrefix(h, "."):
					hosts = append(hosts, h[1:])
				case hostNameRE.MatchString(h):
					hosts = append(hosts, h)
				}
			}
		}
		var paths []string
		var uas, refs []string
		auth := false
		walk(sd.Block, func(d *Directive) {
			switch d.Name {
			case "location":
				l := parseLocation(d, nil)
				if l == nil {
					return
				}
				switch {
				case l.re != nil:
					if s, ok := sample(l.path, l.mod == "~*"); ok {
						paths = append(paths, s)
					}
				case l.mod == "@":
				case l.mod == "=":
					paths = append(paths, l.path)
				default:
					paths = append(paths, l.path, strings.TrimSuffix(l.path, "/")+"/"+probeFile, strings.TrimSuffix(l.path, "/")+"/offedge-missing")
				}
			case "if":
				cond := strings.Trim(strings.Join(d.Args, " "), "() ")
				parts := strings.SplitN(cond, " ", 3)
				if len(parts) == 3 {
					v, op, val := parts[0], parts[1], strings.TrimSpace(parts[2])
					if op != "=" {
						s, ok := sample(strings.TrimPrefix(val, "/"), op == "~*")
						if !ok {
							return
						}
						val = strings.TrimPrefix(s, "/")
					}
					switch v {
					case "$http_user_agent":
						uas = append(uas, val)
					case "$http_referer":
						refs = append(refs, "https://"+val+"/")
					}
				}
			case "auth_basic":
				auth = auth || d.Arg(0) != "off"
			}
		})
		if len(hosts) == 0 {
			hosts = []string{"offedge-default.invalid"} // a default server answers any name
		}
		paths = append([]string{"/", "/offedge-missing"}, paths...)
		for _, l := range Find(sd.Block, "listen") {
			if strings.HasPrefix(l.Arg(0), "[") {
				continue
			}
			scheme := "http"
			for _, a := range l.Args[1:] {
				if a == "ssl" {
					scheme = "https"
				}
			}
			port := e.ports[listenPort(l.Arg(0))]
			for _, h := range hosts {
				for i, p := range paths {
					add(request{scheme: scheme, host: h, port: port, method: "GET", path: p})
					if auth {
						add(request{scheme: scheme, host: h, port: port, method: "GET", path: p, auth: true})
					}
					if i < 3 {
						add(request{scheme: scheme, host: h, port: port, method: "GET", path: p, auth: auth, gzip: true})
						add(request{scheme: scheme, host: h, port: port, method: "HEAD", path: p, auth: auth})
						add(request{scheme: scheme, host: h, port: port, method: "POST", path: p, auth: auth})
					}
				}
				for _, ua := range uas {
					add(request{scheme: scheme, host: h, port: port, method: "GET", path: "/", ua: ua})
				}
				for _, r := range refs {
					add(request{scheme: scheme, host: h, port: port, method: "GET", path: "/", referer: r})
				}
			}
		}
	})
	return out
}

// answer is what a server answered, reduced to what is compared.
type answer struct {
	status int
	header http.Header
	body   string
	err    error
}

func (e *diffEnv) client(ip string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, p, _ := net.SplitHostPort(addr)
				return dialer.DialContext(ctx, network, net.JoinHostPort(ip, p))
			},
			TLSClientConfig:    &tls.Config{RootCAs: e.pool},
			DisableCompression: true,
			DisableKeepAlives:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func send(c *http.Client, q request) answer {
	var body io.Reader
	if q.method == "POST" {
		body = strings.NewReader("a=1")
	}
	req, err := http.NewRequest(q.method, fmt.Sprintf("%s://%s:%d%s", q.scheme, q.host, q.port, q.path), body)
	if err != nil {
		return answer{err: err}
	}
	// The Host a browser sends on the default port: the test ports are
	// the dial's business.
	req.Host = q.host
	req.Header.Set("User-Agent", "offedge-differential")
	if q.ua != "" {
		req.Header.Set("User-Agent", q.ua)
	}
	if q.referer != "" {
		req.Header.Set("Referer", q.referer)
	}
	if q.auth {
		req.SetBasicAuth("test", "pw")
	}
	if q.gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" && q.method != "HEAD" {
		// Compared as content: the bytes of two compressors differ.
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return answer{status: resp.StatusCode, header: resp.Header, body: "bad gzip: " + err.Error()}
		}
		r = zr
	}
	b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// compare lists how two answers differ in what a client relies on.
func (e *diffEnv) compare(n, o answer) []string {
	if n.err != nil || o.err != nil {
		if (n.err == nil) != (o.err == nil) {
			return []string{fmt.Sprintf("nginx: %v, offedge: %v", errOr(n), errOr(o))}
		}
		return nil // both closed without an answer (444)
	}
	var diffs []string
	if n.status != o.status {
		diffs = append(diffs, fmt.Sprintf("status %d vs %d", n.status, o.status))
	}
	// The bodies and their types are compared when they are content (from
	// the backend or a file); the servers' own pages (errors, redirects)
	// are each server's.
	content := strings.Contains(n.body, backendMark) || strings.HasPrefix(n.body, "static ") ||
		strings.Contains(o.body, backendMark) || strings.HasPrefix(o.body, "static ")
	names := []string{"Location", "Cache-Control", "Content-Encoding"}
	if content {
		// offedge types text files "; charset=utf-8" (Go's table), nginx's
		// mime.types without a charset: both are read as UTF-8 by the
		// clients of these sites; that one difference is not counted.
		if a, b := textType(n.header.Get("Content-Type")), textType(o.header.Get("Content-Type")); a != b {
			diffs = append(diffs, fmt.Sprintf("Content-Type %q vs %q", n.header.Get("Content-Type"), o.header.Get("Content-Type")))
		}
		if n.body != o.body {
			diffs = append(diffs, fmt.Sprintf("body %.80q vs %.80q", n.body, o.body))
		}
	}
	for h := range e.headers {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		if a, b := n.header.Get(h), o.header.Get(h); a != b && h != "Expires" {
			diffs = append(diffs, fmt.Sprintf("%s %q vs %q", h, a, b))
		}
	}
	// Expires is a time: the same presence, and within a minute.
	if a, b := n.header.Get("Expires"), o.header.Get("Expires"); (a == "") != (b == "") {
		diffs = append(diffs, fmt.Sprintf("Expires %q vs %q", a, b))
	} else if a != "" {
		ta, _ := http.ParseTime(a)
		tb, _ := http.ParseTime(b)
		if d := ta.Sub(tb); d > time.Minute || d < -time.Minute {
			diffs = append(diffs, fmt.Sprintf("Expires %q vs %q", a, b))
		}
	}
	return diffs
}

func textType(ct string) string {
	if strings.HasPrefix(ct, "text/") {
		return strings.TrimSuffix(ct, "; charset=utf-8")
	}
	return ct
}

func errOr(a answer) string {
	if a.err != nil {
		return a.err.Error()
	}
	return strconv.Itoa(a.status)
}

// differential runs one configuration through both servers and returns
// the requests, the disagreements and the import's report.
func differential(t *testing.T, ds []*Directive, incs []Included) (total int, disagree []string, rep *Report) {
	bin := testutil.RequireBinary(t, "nginx")
	tn := newTestNet(ds, true)
	e := newDiffEnv(t, ds, tn)
	e.backends(tn, targets(ds))
	e.writeCerts(ds)
	ngx := e.rewrite(ds, nginxIP, true)
	oe := e.rewrite(ds, offedgeIP, false)
	// Every root the offedge tree names exists (created by rewrite).
	conf := filepath.Join(e.dir, "nginx.conf")
	for _, d := range []string{"tmp", "cache/true", "cache/false", "logs"} {
		os.MkdirAll(filepath.Join(e.dir, d), 0o755)
	}
	os.WriteFile(conf, []byte(e.nginxConf(ngx)), 0o644)
	cmd := exec.Command(bin, "-p", e.dir, "-c", conf)
	out := testutil.StartProcess(t, cmd)
	for _, p := range e.ports {
		if err := testutil.WaitTCPErr(t.Context(), net.JoinHostPort(nginxIP, strconv.Itoa(p)), 10*time.Second); err != nil {
			t.Fatalf("nginx did not start: %v\n%s\n%s", err, out, e.nginxConf(ngx))
		}
	}
	// offedge, on the imported inventory.
	invDir := filepath.Join(e.dir, "inventory")
	os.MkdirAll(invDir, 0o755)
	m, frag, rep := importChecked(t, oe, incs, tn, invDir)
	p, err := runtime.Load(m, "edge", plan.Options{})
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, frag)
	}
	logger, _ := testutil.Logger(t)
	node, err := runtime.Start(p, runtime.Options{Logger: logger, RootCAs: e.pool, ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatalf("offedge: %v\n%s", err, frag)
	}
	t.Cleanup(func() { node.Shutdown(context.Background()) })
	nc, oc := e.client(nginxIP), e.client(offedgeIP)
	for _, q := range e.requests(ds) {
		total++
		if d := e.compare(send(nc, q), send(oc, q)); len(d) > 0 {
			disagree = append(disagree, q.String()+": "+strings.Join(d, "; "))
		}
	}
	return total, disagree, rep
}

// TestDifferentialFixture: the fixture's every directive is supported, so
// nginx and offedge must answer every request alike.
func TestDifferentialFixture(t *testing.T) {
	ld := &Loader{Prefix: "testdata"}
	ds, err := ld.Load("testdata/proxy.conf")
	if err != nil {
		t.Fatal(err)
	}
	total, dis, rep := differential(t, ds, ld.Includes)
	t.Logf("proxy.conf: %d/%d requests agree; %s", total-len(dis), total, rep.Summary())
	for _, d := range dis {
		t.Errorf("disagreement: %s", d)
	}
	if total < 20 {
		t.Fatalf("only %d requests generated", total)
	}
}

// TestDifferentialReference runs every reference nginx configuration
// through nginx and offedge: per file the share of requests that agree
// and every disagreement; a disagreement fails the test when the file's
// directives are all supported.
func TestDifferentialReference(t *testing.T) {
	for _, f := range referenceConfs(t) {
		name, _ := filepath.Rel(filepath.Join(testutil.RequireReference(t), "confs"), f)
		t.Run(name, func(t *testing.T) {
			ds, incs := loadWithMain(t, f)
			if len(Find(flatHTTP(ds), "server")) == 0 {
				t.Logf("%s: no server block: nothing to compare", name)
				return
			}
			total, dis, rep := differential(t, ds, incs)
			t.Logf("%s: %d/%d requests agree (%.0f%%); %s", name, total-len(dis), total, 100*float64(total-len(dis))/float64(max(total, 1)), rep.Summary())
			for _, d := range dis {
				if rep.Complete() {
					t.Errorf("disagreement (all directives supported): %s", d)
				} else {
					t.Logf("  disagreement: %s", d)
				}
			}
		})
	}
}

// flatHTTP is the http level of ds: its top level and http blocks.
func flatHTTP(ds []*Directive) []*Directive {
	var out []*Directive
	for _, d := range ds {
		if d.Name == "http" {
			out = append(out, d.Block...)
		} else {
			out = append(out, d)
		}
	}
	return out
}
