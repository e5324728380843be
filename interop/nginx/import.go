package nginx

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/offedge/offedge/edge/http/vars"
	"github.com/offedge/offedge/inventory"
)

// Importer maps an nginx configuration onto inventory YAML for one node:
// server blocks become sites, locations routes, upstream blocks and
// proxy_pass targets upstreams, limit_req_zone and proxy_cache_path the
// node's protection. Addresses are looked up in Model: an address of a
// node becomes that node (or the service listening there), a hostname a
// site's node or a --host mapping; anything else is reported, never
// invented.
type Importer struct {
	// Model is the inventory the output is merged into.
	Model *inventory.Model
	// Node is the node the nginx configuration runs on.
	Node string
	// Hosts names the node behind a hostname in proxy_pass and upstream
	// servers (lower-case hostname → node).
	Hosts map[string]string
	// Includes are the loader's include directives (Loader.Includes),
	// reported with the rest.
	Includes []Included
}

// Import maps ds (from Loader.Load) and returns the inventory fragment
// (YAML: upstreams, sites, protection) and the report. The error is for
// an unusable request (an unknown node); everything about the
// configuration itself is in the report.
func (im *Importer) Import(ds []*Directive) ([]byte, *Report, error) {
	if im.Model == nil {
		return nil, nil, fmt.Errorf("no inventory")
	}
	node := im.Model.Node(im.Node)
	if node == nil {
		return nil, nil, fmt.Errorf("unknown node %q", im.Node)
	}
	// The inventory is text: a configuration with other bytes in a
	// directive is refused where they are.
	var bad error
	walk(ds, func(d *Directive) {
		if bad == nil && !utf8.ValidString(strings.Join(append([]string{d.Name}, d.Args...), " ")) {
			bad = &Error{d.File, d.Line, "not UTF-8 text"}
		}
	})
	if bad != nil {
		return nil, nil, bad
	}
	r := &run{im: im, node: node, marks: map[*Directive]*Entry{},
		upstreamBlocks: map[string]*Directive{}, maps: map[string]*Directive{}, zones: map[string]*Directive{},
		caches: map[string]*Directive{}, logFormats: map[string]*Directive{},
		upstreamNames: map[string]bool{}, upstreamByKey: map[string]string{}, siteNames: map[string]bool{},
		classMaps: map[string]string{}, zonesOut: map[string]*outZone{}, cachesOut: map[string]bool{}}
	for _, s := range im.Model.Sites {
		r.siteNames[s.Name] = true
	}
	for _, u := range im.Model.Upstreams {
		r.upstreamNames[u.Name] = true
	}
	r.scope, r.headerScope = templateScope(ds, nil), templateScope(ds, vars.ResponseVariables)
	r.importAll(ds)
	out, err := r.render()
	if err != nil {
		return nil, nil, err
	}
	rep := &Report{Findings: r.findings, Unmapped: r.unmapped}
	for _, inc := range im.Includes {
		d := inc.Directive
		e := Entry{File: d.File, Line: d.Line, Directive: short(d), Status: Builtin}
		switch {
		case len(inc.Files) > 0:
			e.Note = fmt.Sprintf("expanded in place (%d files)", len(inc.Files))
		case path.Base(d.Arg(0)) == "mime.types":
			e.Note = "nginx's MIME table: static files get their type from offedge's"
		case strings.ContainsAny(d.Arg(0), "*?["):
			e.Note = "matched no file (as nginx, fine for a pattern); pass the files it stands for, or --prefix"
		default:
			e.Status, e.Note = Unsupported, "no such file: nginx refuses to start; pass the file, or --prefix"
		}
		rep.Entries = append(rep.Entries, e)
	}
	// The directives inside an unsupported location or a types block
	// share its fate.
	walk(ds, func(d *Directive) {
		if e := r.marks[d]; d.Name == "location" && e != nil && (e.Status == Unsupported || e.Status == Unused) {
			line := d.Line
			walk(d.Block, func(x *Directive) {
				if r.marks[x] == nil {
					r.mark(x, e.Status, "in the location at line %d, which is %s", line, e.Status)
				}
			})
		}
		if d.Name == "types" {
			walk(d.Block, func(x *Directive) {
				r.mark(x, Builtin, "a MIME type: static files get their type from their extension")
			})
		}
	})
	walk(ds, func(d *Directive) {
		e := r.marks[d]
		if e == nil {
			st, note := classify(d)
			e = &Entry{Status: st, Note: note}
		}
		e.File, e.Line, e.Directive = d.File, d.Line, short(d)
		rep.Entries = append(rep.Entries, *e)
	})
	return out, rep, nil
}

func walk(ds []*Directive, f func(*Directive)) {
	for _, d := range ds {
		f(d)
		walk(d.Block, f)
	}
}

// short is a directive as written, cut to a readable length.
func short(d *Directive) string {
	s := strings.Join(append([]string{d.Name}, d.Args...), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

type run struct {
	im   *Importer
	node *inventory.Node

	marks map[*Directive]*Entry

	upstreamBlocks map[string]*Directive
	maps           map[string]*Directive // variable name without $ → map block
	zones          map[string]*Directive // zone name → limit_req_zone
	caches         map[string]*Directive // keys_zone name → proxy_cache_path
	logFormats     map[string]*Directive

	upstreams     []*outUpstream
	upstreamNames map[string]bool
	upstreamByKey map[string]string
	sites         []*outSite
	siteNames     map[string]bool
	classMaps     map[string]string // variable → class map name
	scope         *vars.Scope       // the names templates may read (set and map variables)
	headerScope   *vars.Scope       // and added header values ($upstream_addr...)
	http          *scope            // the http level
	prot          outProtection
	zonesOut      map[string]*outZone
	cachesOut     map[string]bool

	findings []string
	unmapped []string
}

// mark records what became of d. A directive seen from several places
// (an inherited one) keeps its worst status: unsupported over mapped.
func (r *run) mark(d *Directive, st Status, format string, args ...any) {
	note := fmt.Sprintf(format, args...)
	if e := r.marks[d]; e != nil {
		if rank(e.Status) >= rank(st) {
			return
		}
	}
	r.marks[d] = &Entry{Status: st, Note: note}
}

func rank(s Status) int {
	switch s {
	case Unsupported:
		return 4
	case Approximate:
		return 3
	case Mapped:
		return 2
	case Builtin:
		return 1
	}
	return 0
}

func (r *run) finding(d *Directive, format string, args ...any) {
	r.findings = append(r.findings, d.Pos()+": "+fmt.Sprintf(format, args...))
}

func (r *run) unmappedAt(d *Directive, format string, args ...any) {
	u := d.Pos() + ": " + fmt.Sprintf(format, args...)
	for _, x := range r.unmapped {
		if x == u {
			return
		}
	}
	r.unmapped = append(r.unmapped, u)
}

// scope is a block's directives and its parent's, for nginx's
// inheritance: a directive set in a block wins; an array directive
// (add_header, proxy_set_header, error_page, limit_req, access_log) set
// even once in a block replaces all of the parent's.
type scope struct {
	ds     []*Directive
	parent *scope
}

func (s *scope) get(name string) *Directive {
	for ; s != nil; s = s.parent {
		if ds := Find(s.ds, name); len(ds) > 0 {
			return ds[0]
		}
	}
	return nil
}

func (s *scope) all(name string) []*Directive {
	for ; s != nil; s = s.parent {
		if ds := Find(s.ds, name); len(ds) > 0 {
			return ds
		}
	}
	return nil
}

func (r *run) importAll(ds []*Directive) {
	// The http level: a sites file's top level, and any http block.
	var httpDs []*Directive
	for _, d := range ds {
		if d.Name == "http" && d.IsBlock() {
			r.mark(d, Builtin, "its directives are imported")
			httpDs = append(httpDs, d.Block...)
			continue
		}
		httpDs = append(httpDs, d)
	}
	http := &scope{ds: httpDs}
	r.http = http
	for _, d := range httpDs {
		switch d.Name {
		case "upstream":
			if d.IsBlock() && len(d.Args) == 1 {
				r.upstreamBlocks[d.Args[0]] = d
			}
		case "map":
			if d.IsBlock() && len(d.Args) == 2 {
				r.maps[strings.TrimPrefix(d.Args[1], "$")] = d
				for _, e := range d.Block {
					r.mark(e, Mapped, "an entry of the map at line %d", d.Line)
				}
			}
		case "limit_req_zone":
			if z := argValue(d.Args, "zone"); z != "" {
				r.zones[strings.SplitN(z, ":", 2)[0]] = d
			}
		case "proxy_cache_path":
			if z := argValue(d.Args, "keys_zone"); z != "" {
				r.caches[strings.SplitN(z, ":", 2)[0]] = d
			}
		case "log_format":
			if len(d.Args) > 0 {
				r.logFormats[d.Args[0]] = d
			}
		}
	}
	for _, d := range httpDs {
		if d.Name == "server" && d.IsBlock() {
			r.server(d, http)
		}
	}
	r.mergeRedirects()
	r.splitRedirectListeners()
	// An http-level setting no server read: every server has its own, or
	// there is no server in these files.
	servers := len(Find(httpDs, "server"))
	for _, d := range httpDs {
		if r.marks[d] != nil || d.IsBlock() || !inheritable[d.Name] {
			continue
		}
		if servers > 0 {
			r.mark(d, Unused, "every server sets its own %s (nginx then inherits none)", d.Name)
		} else {
			r.mark(d, Unused, "no server in these files: it applies to the servers of the files that include this one; import them together")
		}
	}
	for name, d := range r.upstreamBlocks {
		if r.marks[d] == nil {
			r.mark(d, Unused, "no proxy_pass names upstream %q", name)
			for _, s := range d.Block {
				r.mark(s, Unused, "in an unused upstream")
			}
		}
	}
	for v, d := range r.maps {
		if r.marks[d] == nil {
			if used(httpDs, "$"+v, d) {
				r.mark(d, Unsupported, "$%s is read where the importer cannot map a variable (see the directives reading it); a variable engine would take it", v)
			} else {
				r.mark(d, Unused, "nothing reads $%s", v)
			}
		}
	}
	for name, d := range r.zones {
		if r.marks[d] == nil {
			r.mark(d, Unused, "no limit_req uses zone %q", name)
		}
	}
	for name, d := range r.caches {
		if r.marks[d] == nil {
			r.mark(d, Unused, "no proxy_cache uses %q", name)
		}
	}
	for name, d := range r.logFormats {
		if r.marks[d] == nil {
			r.mark(d, Unused, "no access_log uses format %q", name)
		}
	}
}

// used reports whether variable v appears in an argument of a directive
// outside the map that defines it (comments are gone already).
func used(ds []*Directive, v string, def *Directive) bool {
	found := false
	walk(ds, func(d *Directive) {
		if d == def || found {
			return
		}
		for _, a := range d.Args {
			if strings.Contains(a, v) && !strings.Contains(a, v+"_") {
				found = true
			}
		}
	})
	return found
}

// argValue returns the value of a key=value argument.
func argValue(args []string, key string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, key+"="); ok {
			return v
		}
	}
	return ""
}

var nameRE = regexp.MustCompile(`[^a-z0-9._-]+`)

// objectName makes an inventory name (1–63 of a-z 0-9 . _ -) from s,
// unique in taken.
func objectName(s string, taken map[string]bool) string {
	s = strings.TrimPrefix(strings.ToLower(s), "*.")
	s = strings.Trim(nameRE.ReplaceAllString(s, "-"), "-._")
	if s == "" {
		s = "site"
	}
	if len(s) > 56 {
		s = s[:56]
	}
	name := s
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", s, i)
	}
	taken[name] = true
	return name
}

func (r *run) render() ([]byte, error) {
	f := outFile{Upstreams: r.upstreams, Sites: r.sites}
	if len(r.prot.Caches)+len(r.prot.Maps)+len(r.prot.LimitZones) > 0 {
		r.prot.Node = r.im.Node
		f.Protection = []*outProtection{&r.prot}
	}
	var doc yaml.Node
	if err := doc.Encode(f); err != nil {
		return nil, err
	}
	// Each site and route says where it was written.
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "sites" {
			continue
		}
		for j, sn := range doc.Content[i+1].Content {
			sn.HeadComment = "from " + r.sites[j].from
			for k := 0; k+1 < len(sn.Content); k += 2 {
				if sn.Content[k].Value != "routes" {
					continue
				}
				for l, rn := range sn.Content[k+1].Content {
					rn.HeadComment = "from " + r.sites[j].Routes[l].from
				}
			}
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Imported from nginx by offedge import nginx for node %s.\n# Review the report before including this file; see docs/migration.md.\n", r.im.Node)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	enc.Close()
	return b.Bytes(), nil
}

// server maps one server block to a site.
func (r *run) server(sd *Directive, http *scope) {
	sc := &scope{ds: sd.Block, parent: http}
	site := &outSite{Node: r.im.Node, from: sd.Pos()}
	// server_name
	var hosts []string
	for _, d := range Find(sd.Block, "server_name") {
		ok := true
		for _, h := range d.Args {
			h = strings.ToLower(strings.TrimSuffix(h, "."))
			switch {
			case h == "_" || h == "" || h == "localhost":
				// nginx's catch-all names: no host; default_server decides.
			case strings.HasPrefix(h, "~"):
				r.mark(d, Unsupported, "regex server name %q: offedge matches exact names and leading wildcards", h)
				ok = false
			case strings.HasPrefix(h, ".") && hostNameRE.MatchString(h[1:]) && !strings.HasPrefix(h[1:], "*"):
				hosts = append(hosts, h[1:], "*"+h)
			case strings.HasSuffix(h, ".*") || strings.Count(h, "*") > 1 || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.")):
				r.mark(d, Unsupported, "wildcard %q: offedge has leading wildcards only", h)
				ok = false
			case !hostNameRE.MatchString(h) || len(h) > 253:
				r.mark(d, Unsupported, "server name %q: offedge's hosts are DNS names (letters, digits, -)", h)
				ok = false
			default:
				hosts = append(hosts, h)
			}
		}
		if ok {
			r.mark(d, Mapped, "hosts")
		}
	}
	site.Hosts = dedupe(hosts)
	// listen
	plain, tls := r.listens(sd, site)
	if len(site.Listen) == 0 {
		// nginx's default: *:80 (or 8000 unprivileged).
		r.finding(sd, "server without listen: nginx listens on *:80; imported so")
		site.Listen = r.allNetworks(80, false)
		plain = true
	}
	if len(site.Hosts) == 0 && !site.Default {
		if len(sd.Block) > 0 {
			r.finding(sd, "server without a usable server_name: imported as the default site of its listeners (nginx's first server of a port is its default)")
		}
		site.Default = true
	}
	name := "site"
	if len(site.Hosts) > 0 {
		name = site.Hosts[0]
	} else if len(site.Listen) > 0 {
		name = fmt.Sprintf("default-%d", site.Listen[0].Port)
	}
	if tls && !plain {
		// the name of the TLS site is the bare host; its plain sibling
		// (merged into it when it only redirects) is -http.
	} else if plain && !tls {
		name += "-http"
	}
	site.Name = objectName(name, r.siteNames)
	if tls {
		r.tls(sc, site)
	}
	// Is the whole server a redirect to https (certbot's block, or a
	// hand-written return 301 https://$host$request_uri)?
	if plain && !tls && r.httpsRedirect(sd, site) {
		for _, l := range site.Listen {
			l.RedirectHTTPS = true
		}
		r.mark(sd, Mapped, "site %s (redirect_https)", site.Name)
		site.redirectFrom = sd
		r.sites = append(r.sites, site)
		return
	}
	r.siteSettings(sc, sd, site)
	r.routes(sc, sd, site)
	r.siteMaps(sd, site)
	r.sites = append(r.sites, site)
}

var varRE = regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?`)

// siteMaps gives the site the http-level maps its directives read (and
// the maps those read), as nginx's maps are global.
func (r *run) siteMaps(sd *Directive, site *outSite) {
	seen := map[string]bool{}
	var visit func(args []string)
	visit = func(args []string) {
		for _, a := range args {
			for _, m := range varRE.FindAllStringSubmatch(a, -1) {
				v := m[1]
				d := r.maps[v]
				if d == nil || seen[v] {
					continue
				}
				seen[v] = true
				vm, ok := r.varMap(d)
				if !ok {
					r.mark(d, Unsupported, "a map offedge's maps cannot hold (hostnames masks with regexes, or no source)")
					continue
				}
				site.Maps = append(site.Maps, vm)
				r.mark(d, Mapped, "a map of site %s", site.Name)
				visit([]string{d.Arg(0)})
				for _, e := range d.Block {
					visit(e.Args)
				}
			}
		}
	}
	walk(sd.Block, func(d *Directive) { visit(d.Args) })
}

// varMap is an nginx map as a site map.
func (r *run) varMap(d *Directive) (*outVarMap, bool) {
	if len(d.Args) != 2 || !strings.HasPrefix(d.Args[1], "$") || r.template(d.Args[0]) != "" {
		return nil, false
	}
	for _, e := range d.Block {
		if len(e.Args) == 1 && r.template(e.Args[0]) != "" {
			return nil, false
		}
	}
	vm := &outVarMap{Name: strings.TrimPrefix(d.Args[1], "$"), Source: d.Args[0]}
	for _, e := range d.Block {
		switch {
		case e.Name == "default" && len(e.Args) == 1:
			vm.Default = e.Args[0]
		case e.Name == "hostnames" && len(e.Args) == 0:
			vm.Hostnames = true
		case e.Name == "volatile" && len(e.Args) == 0:
		case len(e.Args) != 1:
			return nil, false
		case strings.HasPrefix(e.Name, "~*"):
			if regex(e.Name[2:], true) != "" {
				return nil, false
			}
			vm.Entries = append(vm.Entries, &outVarEntry{Regex: e.Name[2:], CaseInsensitive: true, Value: e.Args[0]})
		case strings.HasPrefix(e.Name, "~"):
			if regex(e.Name[1:], false) != "" {
				return nil, false
			}
			vm.Entries = append(vm.Entries, &outVarEntry{Regex: e.Name[1:], Value: e.Args[0]})
		default:
			vm.Entries = append(vm.Entries, &outVarEntry{Exact: strings.TrimPrefix(e.Name, "\\"), Value: e.Args[0]})
		}
	}
	return vm, true
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// listens maps the server's listen directives; it reports whether it has
// plain and TLS ones.
func (r *run) listens(sd *Directive, site *outSite) (plain, tls bool) {
	seen := map[string]bool{}
	for _, d := range Find(sd.Block, "listen") {
		if len(d.Args) == 0 {
			r.mark(d, Unsupported, "listen without an address")
			continue
		}
		addr := d.Args[0]
		isTLS, notes := false, []string{}
		bad := ""
		for _, p := range d.Args[1:] {
			switch {
			case p == "ssl":
				isTLS = true
			case p == "http2":
				notes = append(notes, "HTTP/2 by ALPN on TLS")
			case p == "default_server" || p == "default":
				site.Default = true
			case p == "ipv6only=on" || p == "ipv6only=off" || p == "reuseport" || strings.HasPrefix(p, "backlog=") || strings.HasPrefix(p, "so_keepalive="):
				notes = append(notes, p+" is the runtime's")
			case p == "proxy_protocol":
				bad = "PROXY protocol on a site listener (forwards send it; sites do not read it)"
			case p == "quic" || p == "http3":
				bad = "HTTP/3"
			default:
				bad = "listen parameter " + p
			}
		}
		if bad != "" {
			r.mark(d, Unsupported, "%s", bad)
			continue
		}
		if strings.HasPrefix(addr, "unix:") {
			r.mark(d, Unsupported, "UNIX socket listeners")
			continue
		}
		host, port := "", addr
		if h, p, err := net.SplitHostPort(addr); err == nil {
			host, port = h, p
		} else if !isPort(addr) {
			host, port = addr, "80"
		}
		pn, err := strconv.Atoi(port)
		if err != nil || pn < 1 || pn > 65535 {
			r.mark(d, Unsupported, "cannot read the port of %q", addr)
			continue
		}
		var ls []*outListen
		switch host {
		case "", "*", "::", "0.0.0.0":
			// Every address: IPv4 and IPv6 are one listen entry per network.
			ls = r.allNetworks(pn, isTLS)
			if len(ls) == 0 {
				r.mark(d, Unsupported, "node %s has no address to listen on", r.im.Node)
				continue
			}
		default:
			ip, err := netip.ParseAddr(host)
			if err != nil {
				r.mark(d, Unsupported, "listen on a hostname (%s): give the address", host)
				continue
			}
			nw := r.networkOf(ip)
			if nw == "" {
				r.unmappedAt(d, "%s is not an address of node %s in the inventory", ip, r.im.Node)
				r.mark(d, Unsupported, "%s is not an address of node %s", ip, r.im.Node)
				continue
			}
			ls = []*outListen{{Network: nw, Address: ip.String(), Port: pn, TLS: isTLS}}
		}
		for _, l := range ls {
			k := fmt.Sprint(l.Network, l.Address, l.Port)
			if !seen[k] {
				seen[k] = true
				site.Listen = append(site.Listen, l)
			}
		}
		if isTLS {
			tls = true
		} else {
			plain = true
		}
		note := "listen"
		if len(notes) > 0 {
			note += " (" + strings.Join(notes, "; ") + ")"
		}
		r.mark(d, Mapped, "%s", note)
	}
	return plain, tls
}

func isPort(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// allNetworks is a listener on every network the node has an address on
// (nginx's listen PORT binds every address).
func (r *run) allNetworks(port int, tls bool) []*outListen {
	var out []*outListen
	seen := map[string]bool{}
	for _, a := range r.node.Addresses {
		if !seen[a.Network] {
			seen[a.Network] = true
			out = append(out, &outListen{Network: a.Network, Port: port, TLS: tls})
		}
	}
	return out
}

// networkOf is the network on which the node has ip.
func (r *run) networkOf(ip netip.Addr) string {
	for _, a := range r.node.Addresses {
		if a.IP == ip {
			return a.Network
		}
	}
	return ""
}

var certbotRE = regexp.MustCompile(`^(.*)/live/([^/]+)/(fullchain|privkey|cert)\.pem$`)

func (r *run) tls(sc *scope, site *outSite) {
	cert, key := sc.get("ssl_certificate"), sc.get("ssl_certificate_key")
	if cert == nil || key == nil || cert.Arg(0) == "" || key.Arg(0) == "" {
		r.finding(&Directive{File: site.from[:strings.LastIndex(site.from, ":")], Line: atoiSafe(site.from[strings.LastIndex(site.from, ":")+1:])},
			"a TLS listener without ssl_certificate and ssl_certificate_key: the site has no certificate")
		return
	}
	t := &outTLS{}
	cm, km := certbotRE.FindStringSubmatch(cert.Arg(0)), certbotRE.FindStringSubmatch(key.Arg(0))
	if cm != nil && km != nil && cm[1] == km[1] && cm[2] == km[2] && cm[3] == "fullchain" && km[3] == "privkey" {
		t.Certbot = cm[2]
		if cm[1] != "/etc/letsencrypt" {
			t.CertbotDir = cm[1]
		}
	} else {
		t.CertFile, t.KeyFile = cert.Arg(0), key.Arg(0)
	}
	r.mark(cert, Mapped, "tls")
	r.mark(key, Mapped, "tls")
	for _, name := range []string{"ssl_stapling", "ssl_stapling_verify"} {
		if d := sc.get(name); d != nil && d.Arg(0) == "on" {
			if t.Certbot != "" {
				r.mark(d, Builtin, "moot: a certbot (Let's Encrypt) certificate has no OCSP responder since 2025 (docs/http.md)")
			} else {
				r.mark(d, Unsupported, "OCSP stapling for a certificate from a CA that still runs OCSP: not built")
			}
		}
	}
	r.tlsPolicy(sc, t)
	// nginx sends Strict-Transport-Security only as an add_header says
	// (2xx/3xx without always); offedge's default sends it on every
	// answer of a TLS listener. Faithful: hsts off, the header as written.
	f := false
	t.HSTS = &f
	site.TLS = t
}

func atoiSafe(s string) int { n, _ := strconv.Atoi(s); return n }

const acmePath = "/.well-known/acme-challenge/"

var httpsRedirectRE = regexp.MustCompile(`^https://\$(host|server_name|http_host)\$request_uri$`)

// httpsRedirect reports whether the plain server only redirects to https
// (what redirect_https does): a server-level `return 301
// https://$host$request_uri`, certbot's `if ($host = NAME) { return 301
// ... }` for each of its names, or a `location /` doing it. A location
// for ACME's webroot beside it is served by offedge's own ACME responder
// or the route it keeps.
func (r *run) httpsRedirect(sd *Directive, site *outSite) bool {
	var rets, ifs, locs, others []*Directive
	for _, d := range sd.Block {
		switch d.Name {
		case "listen", "server_name", "access_log", "error_log":
		case "return":
			rets = append(rets, d)
		case "if":
			ifs = append(ifs, d)
		case "location":
			locs = append(locs, d)
		default:
			others = append(others, d)
		}
	}
	isRedirect := func(d *Directive) bool {
		return d.Name == "return" && d.Arg(0) == "301" && httpsRedirectRE.MatchString(d.Arg(1)) &&
			(!strings.Contains(d.Arg(1), "$server_name") || len(site.Hosts) == 1)
	}
	var marks []*Directive
	ok := false
	switch {
	case len(rets) == 1 && isRedirect(rets[0]) && len(ifs) == 0:
		ok = true
		marks = append(marks, rets[0])
	case len(ifs) > 0 && len(rets) <= 1:
		// certbot: if ($host = NAME) { return 301 https://$host$request_uri; } ... return 404;
		covered := map[string]bool{}
		for _, d := range ifs {
			if len(d.Args) == 3 && d.Args[0] == "($host" && d.Args[1] == "=" && strings.HasSuffix(d.Args[2], ")") &&
				len(d.Block) == 1 && isRedirect(d.Block[0]) {
				covered[strings.ToLower(strings.TrimSuffix(d.Args[2], ")"))] = true
				marks = append(marks, d, d.Block[0])
			} else if len(d.Args) == 4 && d.Args[0] == "($host" && d.Args[1] == "=" && d.Args[3] == ")" && len(d.Block) == 1 && isRedirect(d.Block[0]) {
				covered[strings.ToLower(d.Args[2])] = true
				marks = append(marks, d, d.Block[0])
			} else {
				return false
			}
		}
		for _, h := range site.Hosts {
			if !covered[h] {
				return false
			}
		}
		if len(rets) == 1 {
			if rets[0].Arg(0) != "404" {
				return false
			}
			marks = append(marks, rets[0])
		}
		ok = true
	case len(rets) == 0 && len(ifs) == 0:
		for _, l := range locs {
			if l.Arg(0) == "/" && len(l.Args) == 1 && len(l.Block) == 1 && isRedirect(l.Block[0]) {
				ok = true
				marks = append(marks, l, l.Block[0])
			}
		}
	}
	if !ok || len(others) > 0 {
		return false
	}
	for _, l := range locs {
		if !contains(marks, l) && !r.acmeWebroot(l) {
			return false
		}
	}
	for _, d := range marks {
		r.mark(d, Mapped, "redirect_https on the site's plain listeners")
	}
	for _, l := range locs {
		if contains(marks, l) {
			continue
		}
		// certbot's webroot: a redirect_https listener still serves routes
		// under /.well-known/acme-challenge/.
		root := ""
		if rd := Find(l.Block, "root"); len(rd) > 0 {
			root = rd[0].Arg(0)
		} else if rd := Find(sd.Block, "root"); len(rd) > 0 {
			root = rd[0].Arg(0)
		}
		p := l.Arg(len(l.Args) - 1)
		if root == "" {
			r.mark(l, Approximate, "ACME webroot without a root: offedge answers its own HTTP-01 tokens on plain listeners (certs/acme); other paths are redirected")
		} else if strings.HasPrefix(p, acmePath) {
			r.mark(l, Mapped, "a static route the redirect leaves alone")
		} else {
			r.mark(l, Approximate, "only %s is served from %s on the redirecting listener; nginx served all of %s", acmePath, root, p)
		}
		if root != "" {
			site.Routes = append(site.Routes, &outRoute{Path: acmePath, Static: &outStatic{Root: root}, from: l.Pos()})
		}
		walk(l.Block, func(d *Directive) { r.mark(d, Mapped, "the ACME webroot route") })
	}
	// Logs as the server has them (its own, else the http level's).
	sc := &scope{ds: sd.Block, parent: r.http}
	for _, d := range sc.all("access_log") {
		r.siteAccessLog(d, site)
	}
	for _, d := range sc.all("error_log") {
		r.errorLog(d, site)
	}
	return true
}

func contains(ds []*Directive, d *Directive) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// acmeWebroot reports whether l is a certbot webroot location
// (`location /.well-known[/acme-challenge] { root DIR; [try_files $uri =404;] }`).
func (r *run) acmeWebroot(l *Directive) bool {
	p := l.Arg(len(l.Args) - 1)
	if !strings.HasPrefix(p, "/.well-known") || (len(l.Args) == 2 && l.Args[0] != "^~") {
		return false
	}
	for _, d := range l.Block {
		switch {
		case d.Name == "root" || d.Name == "allow" || d.Name == "default_type":
		case d.Name == "try_files" && strings.Join(d.Args, " ") == "$uri =404":
		default:
			return false
		}
	}
	return true
}

// mergeRedirects folds a plain site that only redirects to https into the
// TLS site with the same hosts (one site, two kinds of listener).
func (r *run) mergeRedirects() {
	var out []*outSite
	for _, s := range r.sites {
		if !onlyRedirects(s) {
			out = append(out, s)
			continue
		}
		merged := false
		for _, t := range r.sites {
			// A TLS site's headers and expires would go on the redirects
			// too; nginx's plain server has its own (none).
			if t != s && t.TLS != nil && sameHosts(s.Hosts, t.Hosts) && !hasRedirectListener(t) && len(t.Headers)+len(t.Always) == 0 && t.Expires == "" {
				t.Listen = append(t.Listen, s.Listen...)
				delete(r.siteNames, s.Name)
				merged = true
				break
			}
		}
		if !merged {
			out = append(out, s)
		}
	}
	r.sites = out
}

func onlyRedirects(s *outSite) bool {
	if len(s.Routes) > 0 || s.TLS != nil || len(s.Listen) == 0 {
		return false
	}
	for _, l := range s.Listen {
		if !l.RedirectHTTPS {
			return false
		}
	}
	return true
}

func hasRedirectListener(s *outSite) bool {
	for _, l := range s.Listen {
		if l.RedirectHTTPS || !l.TLS {
			return true
		}
	}
	return false
}

func sameHosts(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := append([]string{}, a...), append([]string{}, b...)
	sort.Strings(x)
	sort.Strings(y)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// splitRedirectListeners resolves a plain listener some sites redirect to
// https and others serve (nginx decides per server block; offedge per
// listener): each redirecting site there becomes a redirect route per
// host (https://HOST + the URI), which a wildcard host cannot be.
func (r *run) splitRedirectListeners() {
	serving := map[string]bool{}
	key := func(l *outListen) string { return fmt.Sprint(l.Network, "|", l.Address, "|", l.Port) }
	for _, s := range r.sites {
		for _, l := range s.Listen {
			if !l.TLS && !l.RedirectHTTPS {
				serving[key(l)] = true
			}
		}
	}
	var out []*outSite
	for _, s := range r.sites {
		var keep, clash []*outListen
		for _, l := range s.Listen {
			if l.RedirectHTTPS && (serving[key(l)] || serving[fmt.Sprint(l.Network, "|", "", "|", l.Port)]) {
				clash = append(clash, l)
			} else {
				keep = append(keep, l)
			}
		}
		if len(clash) == 0 {
			out = append(out, s)
			continue
		}
		s.Listen = keep
		if len(keep) > 0 {
			out = append(out, s)
		}
		// The same redirect as a route of a site of its own on those
		// listeners (its ACME route, longer, still wins).
		rs := &outSite{Name: objectName(s.Name+"-redirect", r.siteNames), Node: s.Node, Hosts: s.Hosts, Default: s.Default, from: s.from,
			AccessLog: s.AccessLog, ErrorLog: s.ErrorLog}
		for _, l := range clash {
			c := *l
			c.RedirectHTTPS = false
			rs.Listen = append(rs.Listen, &c)
		}
		rs.Routes = append([]*outRoute{{Path: "/", from: s.from, Rewrites: []*outStep{{Return: &outReturn{Code: 301, URL: "https://$host$request_uri"}}}}}, s.Routes...)
		out = append(out, rs)
	}
	r.sites = out
}

// siteSettings maps the server-level settings that are the site's.
func (r *run) siteSettings(sc *scope, sd *Directive, site *outSite) {
	if ds := sc.all("access_log"); len(ds) > 0 {
		for _, d := range ds {
			r.siteAccessLog(d, site)
		}
	}
	// allow/deny at server level: the site's allow list.
	var allow []string
	denyAll, other := false, false
	for _, d := range sd.Block {
		switch d.Name {
		case "allow":
			if d.Arg(0) == "all" {
				allow = append(allow, "any")
			} else if p, err := netip.ParsePrefix(d.Arg(0)); err == nil {
				allow = append(allow, p.Masked().String())
			} else if a, err := netip.ParseAddr(d.Arg(0)); err == nil {
				allow = append(allow, a.String())
			} else {
				other = true
			}
		case "deny":
			if d.Arg(0) == "all" {
				denyAll = true
			} else {
				other = true
			}
		}
	}
	for _, d := range sd.Block {
		if d.Name == "allow" || d.Name == "deny" {
			if other || (!denyAll && len(allow) > 0) {
				r.mark(d, Unsupported, "offedge's allow lists admit; a deny of one address among allows would take ordered rules")
			} else {
				r.mark(d, Mapped, "the site's allow list (checked at accept, before any byte)")
			}
		}
	}
	if denyAll && !other {
		if len(allow) == 0 {
			allow = []string{}
			r.finding(sd, "deny all with no allow: the site admits nobody")
		}
		site.Allow = allow
	}
	// The server's rewrite phase (rewrite, return, set, if) and error log.
	if !onlySimpleReturn(sd.Block) {
		if steps, ok := r.steps(sd.Block, 0); ok {
			site.Rewrites = steps
		}
	}
	for _, d := range sc.all("error_log") {
		r.errorLog(d, site)
	}
	site.Compress = r.compress(sc, nil)
	// The server's add_header (or the http level's) and expires.
	site.Headers, site.Always = r.headers(sc.all("add_header"), false, false, "the site's")
	if e := sc.get("expires"); e != nil {
		site.Expires = r.expires(e)
	}
}

func (r *run) siteAccessLog(d *Directive, site *outSite) {
	if d.Arg(0) == "off" {
		r.mark(d, Mapped, "no access_log")
		return
	}
	if site.AccessLog != nil {
		r.mark(d, Unsupported, "a second access log of one site")
		return
	}
	if strings.HasPrefix(d.Arg(0), "syslog:") {
		r.mark(d, Unsupported, "access logs to syslog")
		return
	}
	al := &outAccessLog{Path: d.Arg(0)}
	format := "combined"
	for _, a := range d.Args[1:] {
		switch {
		case strings.HasPrefix(a, "buffer="):
			v, ok := size(strings.TrimPrefix(a, "buffer="))
			if !ok {
				r.mark(d, Unsupported, "access_log %s: not a size", a)
				return
			}
			al.Buffer = v
		case strings.HasPrefix(a, "flush="):
			v, ok := duration(strings.TrimPrefix(a, "flush="))
			if !ok {
				r.mark(d, Unsupported, "access_log %s: not a time", a)
				return
			}
			al.Flush = v
		case strings.HasPrefix(a, "if="), strings.HasPrefix(a, "gzip"):
			r.mark(d, Unsupported, "access_log %s", a)
			return
		case !strings.Contains(a, "="):
			format = a
		}
	}
	if format != "combined" {
		lf := r.logFormats[format]
		kind := ""
		if lf != nil {
			kind = logFormatKind(lf)
			if kind == "" {
				r.mark(lf, Unsupported, "log format %q: offedge writes combined, combined_upstream, combined_proxy or json (docs/responses.md)", format)
			} else {
				r.mark(lf, Mapped, "offedge's %s format", kind)
			}
		}
		if kind == "" {
			r.mark(d, Unsupported, "log format %q: offedge writes combined, combined_upstream, combined_proxy or json", format)
			return
		}
		al.Format = kind
	}
	site.AccessLog = al
	r.mark(d, Mapped, "the site's access_log")
}

// location is a location block with its match.
type location struct {
	d      *Directive
	mod    string // "", "=", "^~", "~", "~*", "@"
	path   string
	re     *regexp.Regexp
	bad    bool // a regex RE2 cannot compile
	sc     *scope
	served string // a static root, when the location only serves files
}

func parseLocation(d *Directive, parent *scope) *location {
	l := &location{d: d, sc: &scope{ds: d.Block, parent: parent}}
	switch len(d.Args) {
	case 1:
		a := d.Args[0]
		switch {
		case strings.HasPrefix(a, "@"):
			l.mod, l.path = "@", a
		case strings.HasPrefix(a, "="):
			l.mod, l.path = "=", a[1:]
		case strings.HasPrefix(a, "^~"):
			l.mod, l.path = "^~", a[2:]
		case strings.HasPrefix(a, "~*"):
			l.mod, l.path = "~*", a[2:]
		case strings.HasPrefix(a, "~"):
			l.mod, l.path = "~", a[1:]
		default:
			l.path = a
		}
	case 2:
		l.mod, l.path = d.Args[0], d.Args[1]
	default:
		return nil
	}
	switch l.mod {
	case "", "=", "^~", "@":
	case "~":
		l.re, _ = regexp.Compile(l.path)
	case "~*":
		l.re, _ = regexp.Compile("(?i)" + l.path)
	default:
		return nil
	}
	if l.re == nil && (l.mod == "~" || l.mod == "~*") {
		// Not RE2 (PCRE look-arounds, backreferences): still a regex
		// location, matching nothing the importer can test.
		l.re = regexp.MustCompile(`[^\x00-\x{10FFFF}]`)
		l.bad = true
	}
	return l
}

// selectLocation is nginx's choice for a URI among ls: an exact match, then
// the longest prefix (^~ stops there), then the first regex, then that
// longest prefix.
func selectLocation(ls []*location, uri string) *location {
	var best *location
	for _, l := range ls {
		switch l.mod {
		case "=":
			if uri == l.path {
				return l
			}
		case "", "^~":
			if strings.HasPrefix(uri, l.path) && (best == nil || len(l.path) > len(best.path)) {
				best = l
			}
		}
	}
	if best != nil && best.mod == "^~" {
		return best
	}
	for _, l := range ls {
		if l.re != nil && l.re.MatchString(uri) {
			return l
		}
	}
	return best
}

// staticRoot returns the root a location serves files from when that is
// all it does (root, try_files $uri =404, and settings offedge has built
// in), else "".
func (r *run) staticRoot(l *location) string {
	if l == nil {
		return ""
	}
	if d := l.sc.get("root"); d != nil && d.Arg(0) == "" {
		return ""
	}
	for _, d := range l.d.Block {
		switch d.Name {
		case "root", "sendfile", "tcp_nopush", "sendfile_max_chunk", "default_type", "expires", "add_header", "access_log":
		case "try_files":
			if strings.Join(d.Args, " ") != "$uri =404" {
				return ""
			}
		default:
			return ""
		}
	}
	if d := l.sc.get("root"); d != nil {
		return d.Arg(0)
	}
	return ""
}

// routes maps the server's locations.
func (r *run) routes(sc *scope, sd *Directive, site *outSite) {
	var ls []*location
	named := map[string]*location{}
	for _, d := range Find(sd.Block, "location") {
		l := parseLocation(d, sc)
		if l == nil {
			r.mark(d, Unsupported, "cannot read the location's match")
			continue
		}
		if l.mod == "@" {
			named[l.path] = l
			continue
		}
		ls = append(ls, l)
	}
	// A server-level return answers before any location.
	if ret := Find(sd.Block, "return"); len(ret) > 0 {
		if onlySimpleReturn(sd.Block) {
			rt := &outRoute{Path: "/", from: ret[0].Pos()}
			if r.returnRoute(ret[0], rt, site) {
				r.routeOptions(sc, rt, site, nil)
				site.Routes = append(site.Routes, rt)
			}
		} // else the site's rewrites end in it
		for _, l := range ls {
			r.mark(l.d, Unused, "never reached: the server-level return at line %d answers first", ret[0].Line)
			walk(l.d.Block, func(d *Directive) { r.mark(d, Unused, "in a location never reached") })
		}
		for _, l := range named {
			r.mark(l.d, Unused, "never reached: the server-level return answers first")
			walk(l.d.Block, func(d *Directive) { r.mark(d, Unused, "in a location never reached") })
		}
		r.serverLevelMarks(sd)
		return
	}
	// nginx refuses two locations with one match.
	seenLoc := map[string]bool{}
	var uniq []*location
	for _, l := range ls {
		k := l.mod + " " + l.path
		if l.mod == "^~" {
			k = " " + l.path
		}
		if seenLoc[k] {
			r.mark(l.d, Unsupported, "duplicate location %q: nginx refuses to start", l.path)
			continue
		}
		seenLoc[k] = true
		uniq = append(uniq, l)
	}
	ls = uniq
	// Error pages: error_page CODE URI with URI served as a file.
	r.errorPages(sc, sd, ls, site)
	// The add_header trap: a location with its own add_header drops every
	// add_header of the server.
	srvHeaders := sc.all("add_header")
	for _, l := range ls {
		if l.bad {
			r.mark(l.d, Unsupported, "regex %q is not RE2 (backreferences, look-around): rewrite it", l.path)
			continue
		}
		if l.re == nil && !strings.HasPrefix(l.path, "/") {
			r.mark(l.d, Unsupported, "location %q: offedge's routes are paths starting with /", l.path)
			continue
		}
		rt := &outRoute{Path: l.path, Exact: l.mod == "=", from: l.d.Pos()}
		switch l.mod {
		case "^~":
			rt.Match = "priority_prefix"
		case "~":
			rt.Match = "regex"
		case "~*":
			rt.Match = "regex_ci"
		}
		if !r.routeAction(l, rt, site, named, ls) {
			if r.marks[l.d] == nil {
				r.mark(l.d, Unsupported, "what it does is not mapped (see the directives inside)")
			}
			continue
		}
		r.routeOptions(l.sc, rt, site, l)
		if own := Find(l.d.Block, "add_header"); len(own) > 0 && len(srvHeaders) > 0 && srvHeaders[0] != own[0] {
			var names []string
			for _, h := range srvHeaders {
				names = append(names, h.Arg(0))
			}
			r.finding(l.d, "the add_header trap: this location has its own add_header, so nginx drops the server's (%s) here; imported as nginx does (headers_inherit: false; offedge check OE801 names the security headers dropped)", strings.Join(names, ", "))
		}
		r.mark(l.d, Mapped, "route %s", l.path)
		site.Routes = append(site.Routes, rt)
	}
	// Server-level settings every location overrides have no effect.
	for _, d := range sd.Block {
		if r.marks[d] != nil || d.IsBlock() {
			continue
		}
		all := len(ls)+len(named) > 0
		for _, l := range append(ls, namedList(named)...) {
			if len(Find(l.d.Block, d.Name)) == 0 {
				all = false
			}
		}
		if all {
			r.mark(d, Unused, "every location sets its own %s (nginx inherits none of the server's then)", d.Name)
		}
	}
	for name, l := range named {
		if r.marks[l.d] == nil {
			r.mark(l.d, Unused, "no try_files or error_page names %s", name)
		}
	}
	r.serverLevelMarks(sd)
	// Headers: nginx sets no headers of the server on a location with its
	// own; offedge adds a site's headers to every route, so each route
	// carries what nginx would send and the site none.
	if len(site.Routes) == 0 {
		// Every request is a 404: nginx's default location serves the
		// default root, which the importer cannot see.
		if len(ls) == 0 && len(named) == 0 && len(Find(sd.Block, "return")) == 0 {
			r.finding(sd, "server with no location: nginx serves its root (%s); offedge answers 404", rootOr(sc))
		}
	}
}

func namedList(m map[string]*location) []*location {
	var out []*location
	for _, l := range m {
		out = append(out, l)
	}
	return out
}

func rootOr(sc *scope) string {
	if d := sc.get("root"); d != nil {
		return d.Arg(0)
	}
	return "html under the prefix"
}

// serverLevelMarks marks the server-level directives the route mapping
// read (root, add_header, client_max_body_size...) when no route did.
func (r *run) serverLevelMarks(sd *Directive) {
	r.mark(sd, Mapped, "site")
	for _, d := range sd.Block {
		switch d.Name {
		case "root":
			r.mark(d, Mapped, "the static routes' root")
		}
	}
}

// returnRoute maps `return CODE URL` to a redirect route.
func (r *run) returnRoute(d *Directive, rt *outRoute, site *outSite) bool {
	code, err := strconv.Atoi(d.Arg(0))
	if err != nil {
		r.mark(d, Unsupported, "return with a text")
		return false
	}
	switch code {
	case 301, 302, 303, 307, 308:
		u := d.Arg(1)
		prefix, ok := strings.CutSuffix(u, "$request_uri")
		if !ok || strings.Contains(prefix, "$") || prefix == "" || !(strings.HasPrefix(prefix, "http://") || strings.HasPrefix(prefix, "https://") || strings.HasPrefix(prefix, "/")) {
			r.mark(d, Unsupported, "return %d with %q: a redirect route is a URL prefix + the request URI", code, u)
			return false
		}
		rt.Redirect = prefix
		if code != 301 {
			rt.RedirectCode = code
		}
		r.mark(d, Mapped, "route %s: redirect", rt.Path)
		return true
	}
	r.mark(d, Unsupported, "return %d: not a redirect", code)
	return false
}

// routeAction sets the route's one action from the location; false when
// it cannot (the reason is marked).
func (r *run) routeAction(l *location, rt *outRoute, site *outSite, named map[string]*location, ls []*location) bool {
	blk := l.d.Block
	for _, d := range blk {
		if d.Name == "location" {
			r.mark(d, Unsupported, "nested locations: one level of routes")
			walk(d.Block, func(x *Directive) { r.mark(x, Unsupported, "in a nested location") })
		}
	}
	// A lone return that is a plain redirect is a redirect route; any
	// other rewrite phase is the route's steps.
	if ret := Find(blk, "return"); len(ret) > 0 && len(Find(blk, "rewrite"))+len(Find(blk, "if"))+len(Find(blk, "set")) == 0 && simpleRedirect(ret[0]) {
		if r.returnRoute(ret[0], rt, site) {
			return true
		}
	}
	groups := 0
	if l.re != nil {
		groups = l.re.NumSubexp()
	}
	steps, ok := r.steps(blk, groups)
	if !ok {
		return false
	}
	rt.Rewrites = steps
	if ret := Find(blk, "return"); len(ret) > 0 {
		if len(Find(blk, "proxy_pass"))+len(Find(blk, "try_files")) == 0 {
			// The return answers every request the other steps leave.
			r.mark(l.d, Mapped, "route %s (rewrites)", l.path)
			return true
		}
	}
	if pp := Find(blk, "proxy_pass"); len(pp) > 0 {
		name := r.proxyPass(pp[0], l, rt)
		if name == "" {
			r.mark(l.d, Unsupported, "its proxy_pass is not mapped (see there)")
			return false
		}
		rt.Upstream = name
		return true
	}
	root := l.sc.get("root")
	if root != nil && (len(root.Args) != 1 || root.Arg(0) == "") {
		r.mark(root, Unsupported, "root takes one directory")
		return false
	}
	if tf := Find(blk, "try_files"); len(tf) > 0 {
		d := tf[0]
		if root == nil {
			r.mark(d, Unsupported, "try_files without a root")
			return false
		}
		args := strings.Join(d.Args, " ")
		switch {
		case args == "$uri =404":
			rt.Static = &outStatic{Root: root.Arg(0)}
			r.mark(d, Mapped, "static root (404 for missing files)")
		case len(d.Args) == 2 && d.Args[0] == "$uri" && strings.HasPrefix(d.Args[1], "@") && named[d.Args[1]] != nil:
			fb := named[d.Args[1]]
			st := &outStatic{Root: root.Arg(0)}
			if !r.fallback(fb, st) {
				r.mark(d, Unsupported, "its fallback location %s is not mapped (see there)", d.Args[1])
				return false
			}
			rt.Static = st
			r.mark(d, Mapped, "static root with fallback")
			r.mark(fb.d, Mapped, "the static route's fallback")
			r.fallbackHeaders(l, fb, d)
		default:
			r.mark(d, Unsupported, "try_files %s: offedge serves $uri, then a fallback location or 404", args)
			return false
		}
		r.mark(root, Mapped, "static root")
		return true
	}
	if alias := Find(blk, "alias"); len(alias) > 0 {
		r.mark(alias[0], Unsupported, "alias: a static root that drops the location's prefix")
		return false
	}
	for _, d := range blk {
		if d.Name == "fastcgi_pass" || d.Name == "uwsgi_pass" || d.Name == "scgi_pass" || d.Name == "grpc_pass" {
			r.mark(d, Unsupported, "%s: offedge proxies HTTP only (put an HTTP server in front of the application)", d.Name)
			return false
		}
		if d.Name == "stub_status" {
			r.mark(d, Unsupported, "nginx's status page: offedge's metrics are on `offedge run --admin` (/metrics, docs/observability.md)")
			return false
		}
	}
	if root != nil {
		rt.Static = &outStatic{Root: root.Arg(0)}
		r.mark(root, Mapped, "static root")
		return true
	}
	r.mark(l.d, Unsupported, "no proxy_pass, return or root: nginx serves its default root html, which the importer cannot see")
	return false
}

// fallbackHeaders compares what nginx adds to local files (the
// location's add_header) and to the fallback's answers (the named
// location's): offedge adds the route's headers to both, and its fallback
// cache sends X-Cache-Status. Different sets make the route approximate.
func (r *run) fallbackHeaders(l, fb *location, tf *Directive) {
	eff := func(x *location) (map[string]string, bool) {
		ds := Find(x.d.Block, "add_header")
		if len(ds) == 0 {
			ds = x.sc.parent.all("add_header")
		}
		m, cacheStatus := map[string]string{}, false
		for _, d := range ds {
			if strings.EqualFold(d.Arg(0), "X-Cache-Status") {
				cacheStatus = true
				continue
			}
			m[strings.ToLower(d.Arg(0))] = strings.Join(d.Args[1:], " ")
		}
		return m, cacheStatus
	}
	local, _ := eff(l)
	remote, cs := eff(fb)
	same := len(local) == len(remote)
	for k, v := range local {
		if remote[k] != v {
			same = false
		}
	}
	switch {
	case !same:
		r.mark(tf, Approximate, "offedge adds the route's headers to the fallback's answers too; nginx adds %s's own there", fb.path)
	case !cs && fb.sc.get("proxy_cache") != nil:
		r.mark(tf, Approximate, "offedge's fallback cache sends X-Cache-Status; %s sets none", fb.path)
	}
	for _, d := range Find(fb.d.Block, "add_header") {
		if strings.EqualFold(d.Arg(0), "X-Cache-Status") && d.Arg(1) == "$upstream_cache_status" && d.Arg(2) == "always" {
			r.mark(d, Builtin, "the fallback cache sends X-Cache-Status on every answer")
		} else if strings.EqualFold(d.Arg(0), "X-Cache-Status") && d.Arg(1) == "$upstream_cache_status" {
			r.mark(d, Approximate, "the fallback cache sends X-Cache-Status on every answer; nginx (no always) on 2xx and 3xx only")
		} else if same && !strings.Contains(d.Arg(1), "$") {
			r.mark(d, Mapped, "the same as the route's headers")
		}
	}
}

// fallback maps a named location to a static route's fallback: its
// proxy_pass, and its proxy_cache as the fallback cache.
func (r *run) fallback(fb *location, st *outStatic) bool {
	pp := Find(fb.d.Block, "proxy_pass")
	if len(pp) == 0 {
		r.mark(fb.d, Unsupported, "a fallback location without proxy_pass")
		return false
	}
	name := r.proxyPass(pp[0], fb, nil)
	if name == "" {
		r.mark(fb.d, Unsupported, "its proxy_pass is not mapped (see there)")
		return false
	}
	st.Fallback = name
	if c := fb.sc.get("proxy_cache"); c != nil && c.Arg(0) != "off" {
		path := r.caches[c.Arg(0)]
		if path == nil {
			r.mark(c, Unsupported, "no proxy_cache_path declares %q", c.Arg(0))
			return true
		}
		cache := &outCache{}
		if !strings.HasPrefix(path.Arg(0), "/dev/shm/") {
			cache.Dir = path.Arg(0)
		}
		if ms := argValue(path.Args, "max_size"); ms != "" {
			v, ok := cacheSize(ms)
			if !ok {
				r.mark(path, Unsupported, "max_size=%s: not a size", ms)
				return true
			}
			cache.MaxSize = v
		}
		if !strings.HasPrefix(path.Arg(0), "/") {
			r.mark(path, Unsupported, "proxy_cache_path needs a directory first")
			return true
		}
		valid := Find(fb.d.Block, "proxy_cache_valid")
		cache.TTL = map[int]string{}
		for _, v := range valid {
			codes, dur := v.Args[:len(v.Args)-1], v.Args[len(v.Args)-1]
			if len(codes) == 0 {
				codes = []string{"200", "301", "302"}
			}
			dur, ok := duration(dur)
			if !ok {
				r.mark(v, Unsupported, "proxy_cache_valid: %q is not a time", v.Args[len(v.Args)-1])
				continue
			}
			for _, c := range codes {
				n, err := strconv.Atoi(c)
				if err != nil || n < 100 || n > 599 {
					r.mark(v, Unsupported, "proxy_cache_valid %s: the fallback cache keeps listed statuses", c)
					continue
				}
				cache.TTL[n] = dur
			}
			r.mark(v, Mapped, "the fallback cache's ttl")
		}
		st.Cache = cache
		r.mark(c, Mapped, "the static route's fallback cache")
		r.mark(path, Mapped, "the fallback cache (memory for /dev/shm, else dir)")
		if in, ok := r.cacheInactive(path); ok {
			cache.Inactive = in
		} else {
			st.Cache = nil
		}
		for _, k := range Find(fb.d.Block, "proxy_cache_key") {
			if k.Arg(0) == "$request_uri" || k.Arg(0) == "$uri$is_args$args" {
				r.mark(k, Builtin, "the fallback cache is keyed by the URI")
			} else {
				r.mark(k, Unsupported, "the fallback cache is keyed by the URI only")
			}
		}
	}
	r.routeOptions(fb.sc, nil, nil, fb)
	return true
}

// cacheParams notes the proxy_cache_path parameters offedge does not have.
// cacheInactive is the cache's inactive= ("" for nginx's default, 10m,
// which is offedge's); false when it is not a time.
func (r *run) cacheInactive(path *Directive) (string, bool) {
	v := argValue(path.Args, "inactive")
	if v == "" {
		return "", true
	}
	d, ok := duration(v)
	if !ok {
		r.mark(path, Unsupported, "inactive=%s: not a time", v)
		return "", false
	}
	if d == "10m" {
		return "", true
	}
	return d, true
}

// errorPages maps error_page CODE... URI to the site's error_pages when
// URI resolves to a file a location serves.
func (r *run) errorPages(sc *scope, sd *Directive, ls []*location, site *outSite) {
	seen := map[*Directive]bool{}
	check := func(d *Directive) {
		if seen[d] {
			return
		}
		seen[d] = true
		if len(d.Args) < 2 {
			r.mark(d, Unsupported, "error_page needs codes and a URI")
			return
		}
		uri := d.Args[len(d.Args)-1]
		if !strings.HasPrefix(uri, "/") || strings.Contains(uri, "$") || strings.HasPrefix(d.Args[len(d.Args)-2], "=") {
			r.mark(d, Unsupported, "error_page to %s: offedge's error pages are files", uri)
			return
		}
		l := selectLocation(ls, uri)
		root := r.staticRoot(l)
		if root == "" {
			if l == nil {
				if rd := sc.get("root"); rd != nil {
					root = rd.Arg(0)
				}
			}
			if root == "" {
				r.mark(d, Unsupported, "error_page %s is not a file a location serves", uri)
				return
			}
		}
		if l != nil {
			l.served = root
			for _, x := range l.d.Block {
				if x.Name == "root" {
					r.mark(x, Mapped, "the error pages' directory")
				}
			}
		}
		file := path.Join(root, uri)
		if site.ErrorPages == nil {
			site.ErrorPages = map[int]string{}
		}
		for _, c := range d.Args[:len(d.Args)-1] {
			n, err := strconv.Atoi(c)
			if err != nil || n < 400 || n > 599 {
				r.mark(d, Unsupported, "error_page %s: offedge's pages are for 4xx and 5xx", c)
				return
			}
			site.ErrorPages[n] = file
		}
		r.mark(d, Mapped, "the site's error_pages (%s)", file)
	}
	for _, d := range Find(sd.Block, "error_page") {
		check(d)
	}
	for _, l := range ls {
		for _, d := range l.sc.all("error_page") {
			check(d)
		}
	}
}

// routeOptions maps the settings a location (or its server) gives the
// route: body size, headers, auth, proxy headers, cache, limits.
func (r *run) routeOptions(sc *scope, rt *outRoute, site *outSite, l *location) {
	if rt == nil {
		rt = &outRoute{} // a fallback location: its options are read, not kept
	}
	if d := sc.get("client_max_body_size"); d != nil {
		v, ok := size(d.Arg(0))
		if v == "0" {
			r.mark(d, Unsupported, "client_max_body_size 0 (unlimited): offedge's limit is a size (give one)")
		} else if !ok {
			r.mark(d, Unsupported, "client_max_body_size %q: not a size", d.Arg(0))
		} else {
			if v != "1m" {
				rt.MaxBodySize = v
			}
			r.mark(d, Mapped, "max_body_size")
		}
	}
	cached := false
	if c := sc.get("proxy_cache"); c != nil && c.Arg(0) != "off" && rt.Upstream != "" {
		cached = r.routeCache(sc, c, rt)
	} else if c != nil && c.Arg(0) == "off" {
		r.mark(c, Mapped, "not cached")
	}
	// add_header and expires: a location's own (the server's are the
	// site's, and a location with its own add_header has none of them).
	if l != nil {
		own := Find(l.d.Block, "add_header")
		rt.Headers, rt.Always = r.headers(own, cached, l.mod == "@", "the route's")
		if len(own) > 0 && site != nil && len(site.Headers)+len(site.Always) > 0 {
			f := false
			rt.Inherit = &f
		}
		if e := Find(l.d.Block, "expires"); len(e) > 0 {
			rt.Expires = r.expires(e[0])
		}
	}
	// auth_basic
	if ab := sc.get("auth_basic"); ab != nil {
		if ab.Arg(0) == "off" {
			r.mark(ab, Mapped, "no basic_auth")
		} else if f := sc.get("auth_basic_user_file"); f != nil {
			rt.BasicAuth = f.Arg(0)
			r.mark(ab, Approximate, "basic_auth: offedge's 401 answer has its own realm, a text body and X-Content-Type-Options: nosniff")
			r.mark(f, Mapped, "basic_auth")
			r.finding(f, "basic_auth reads bcrypt entries only (htpasswd -B): check %s", f.Arg(0))
		}
	}
	// proxy settings: request headers, buffering, timeouts.
	for _, d := range sc.all("proxy_set_header") {
		r.proxyHeader(d, rt)
	}
	if d := sc.get("proxy_request_buffering"); d != nil {
		if d.Arg(0) == "off" {
			f := false
			rt.RequestBuffering = &f
		}
		r.mark(d, Mapped, "request_buffering")
	}
	// limit_req
	for _, d := range sc.all("limit_req") {
		if z := r.limit(d, sc); z != nil {
			rt.Limits = append(rt.Limits, z)
		}
	}
	if d := sc.get("proxy_intercept_errors"); d != nil {
		if d.Arg(0) == "on" {
			r.mark(d, Builtin, "offedge replaces an upstream answer whose status has an error page")
		} else {
			r.mark(d, Unsupported, "proxy_intercept_errors off: offedge always replaces an upstream answer whose status has an error page")
		}
	} else if site != nil && len(site.ErrorPages) > 0 && rt.Upstream != "" {
		r.finding(&Directive{File: strings.Split(rt.from, ":")[0], Line: atoiSafe(rt.from[strings.LastIndex(rt.from, ":")+1:])},
			"nginx passes the upstream's own error answers here (no proxy_intercept_errors); offedge replaces those with the site's error pages")
	}
}

// headerTemplate decides an add_header whose value names variables: true
// when it is added as a template (the edge expands it per answer); false
// when it is marked otherwise (offedge's own X-Cache-Status, or refused).
func (r *run) headerTemplate(d *Directive, name, val string, cached, fallback bool) bool {
	cacheStatus := val == "$upstream_cache_status" && strings.EqualFold(name, "X-Cache-Status")
	switch {
	case cacheStatus && cached && len(d.Args) == 3:
		r.mark(d, Builtin, "offedge sends X-Cache-Status on every answer of a cached route")
		return false
	case cacheStatus && cached:
		r.mark(d, Approximate, "offedge sends X-Cache-Status on every answer of a cached route; nginx (no always) on 2xx and 3xx only")
		return false
	case cacheStatus && fallback:
		return false // fallbackHeaders says how close it is
	}
	if _, err := vars.Parse(val, r.headerScope); err != nil {
		r.mark(d, Unsupported, "add_header %s: %v", name, err)
		return false
	}
	return true
}

// headers maps add_header directives to fields for 2xx/3xx answers and,
// with always, for every answer.
func (r *run) headers(ds []*Directive, cached, fallback bool, whose string) (h, always map[string]string) {
	for _, d := range ds {
		if len(d.Args) < 2 || len(d.Args) > 3 || (len(d.Args) == 3 && d.Args[2] != "always") {
			r.mark(d, Unsupported, "add_header takes a name, a value and always")
			continue
		}
		name, val := d.Args[0], d.Args[1]
		if !tokenRE.MatchString(name) || strings.ContainsAny(val, "\r\n\x00") {
			r.mark(d, Unsupported, "add_header %q: not an HTTP field", name)
			continue
		}
		if strings.Contains(val, "$") && !r.headerTemplate(d, name, val, cached, fallback) {
			continue
		}
		m := &h
		if len(d.Args) == 3 {
			m = &always
		}
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[name] = val
		r.mark(d, Mapped, "%s headers", whose)
	}
	return h, always
}

var tokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

var expiresRE = regexp.MustCompile(`^(off|epoch|max|(modified )?-?([0-9]+(ms|s|m|h|d|w|M|y)?)+)$`)

// expires maps an expires directive ("" when it cannot).
func (r *run) expires(d *Directive) string {
	v := strings.Join(d.Args, " ")
	if !expiresRE.MatchString(v) {
		r.mark(d, Unsupported, "expires %s: offedge takes off, epoch, max, a time or modified TIME (no time of day)", v)
		return ""
	}
	r.mark(d, Mapped, "expires")
	return v
}

// proxyHeader maps one proxy_set_header.
func (r *run) proxyHeader(d *Directive, rt *outRoute) {
	name, val := strings.ToLower(d.Arg(0)), d.Arg(1)
	switch {
	case name == "x-real-ip" && val == "$remote_addr",
		name == "x-forwarded-for" && (val == "$proxy_add_x_forwarded_for" || val == "$remote_addr"),
		name == "x-forwarded-proto" && (val == "$scheme" || val == "https" || val == "http"),
		name == "x-forwarded-host" && (val == "$host" || val == "$http_host"):
		r.mark(d, Builtin, "offedge sets X-Real-IP, X-Forwarded-For, -Proto and -Host")
	case name == "host" && (val == "$host" || val == "$http_host"):
		r.mark(d, Builtin, "the client's Host is sent (the upstream's default; as received, where nginx's $host drops a port the client wrote)")
	case name == "host" && !strings.Contains(val, "$"):
		r.mark(d, Mapped, "the upstream's host")
	case name == "connection" && val == "":
		r.mark(d, Builtin, "offedge keeps upstream connections alive")
	case name == "upgrade" && val == "$http_upgrade", name == "connection" && strings.EqualFold(val, "upgrade"):
		rt.WebSocket = true
		r.mark(d, Mapped, "websocket")
	default:
		r.mark(d, Unsupported, "proxy_set_header %s: offedge sets the forwarding fields and Host only", d.Arg(0))
	}
}

// routeCache maps proxy_cache and its companions to the route's cache.
func (r *run) routeCache(sc *scope, c *Directive, rt *outRoute) bool {
	path := r.caches[c.Arg(0)]
	if path == nil {
		r.mark(c, Unsupported, "no proxy_cache_path declares %q", c.Arg(0))
		return false
	}
	ms, good := cacheSize(argValue(path.Args, "max_size"))
	if ms == "" {
		r.mark(path, Unsupported, "proxy_cache_path without max_size: offedge bounds every cache (add max_size)")
		r.mark(c, Unsupported, "its cache has no max_size")
		return false
	}
	if !good || !strings.HasPrefix(path.Arg(0), "/") {
		r.mark(path, Unsupported, "proxy_cache_path needs a directory and a max_size")
		r.mark(c, Unsupported, "its cache is not mapped (see there)")
		return false
	}
	name := objectName(c.Arg(0), map[string]bool{})
	if !r.cachesOut[name] {
		r.cachesOut[name] = true
		nc := &outNodeCache{Name: name, MaxSize: ms}
		if !strings.HasPrefix(path.Arg(0), "/dev/shm/") {
			nc.Dir = path.Arg(0)
		}
		in, ok := r.cacheInactive(path)
		if !ok {
			r.mark(c, Unsupported, "its cache is not mapped (see there)")
			return false
		}
		nc.Inactive = in
		r.prot.Caches = append(r.prot.Caches, nc)
		r.mark(path, Mapped, "protection cache %s (memory for /dev/shm, else dir)", name)
	}
	rc := &outRouteCache{Cache: name, Valid: map[string]string{}}
	if k := sc.get("proxy_cache_key"); k != nil {
		parts, ok := cacheKey(k.Arg(0))
		if !ok {
			r.mark(k, Unsupported, "cache key %q: offedge's keys are scheme, host, uri, path, arg:, cookie:, header:", k.Arg(0))
			return false
		}
		rc.Key = parts
		r.mark(k, Mapped, "the route cache's key")
	} else {
		rc.Key = []string{"scheme", "host", "uri"}
		r.finding(c, "nginx's default cache key is $scheme$proxy_host$request_uri (the upstream's name); imported as scheme, host, uri")
	}
	for _, v := range sc.all("proxy_cache_valid") {
		codes, dur := v.Args[:len(v.Args)-1], v.Args[len(v.Args)-1]
		if len(codes) == 0 {
			codes = []string{"200", "301", "302"}
		}
		dur, ok := duration(dur)
		if !ok {
			r.mark(v, Unsupported, "proxy_cache_valid: not a time")
			continue
		}
		bad := false
		for _, code := range codes {
			if n, err := strconv.Atoi(code); code != "any" && (err != nil || n < 100 || n > 599) {
				bad = true
			}
		}
		if bad {
			r.mark(v, Unsupported, "proxy_cache_valid: statuses are numbers or any")
			continue
		}
		for _, code := range codes {
			rc.Valid[code] = dur
		}
		r.mark(v, Mapped, "the route cache's valid")
	}
	if len(rc.Valid) == 0 {
		r.mark(c, Unsupported, "proxy_cache without proxy_cache_valid: nginx then caches by the upstream's Cache-Control only; offedge wants valid")
		return false
	}
	if d := sc.get("proxy_cache_min_uses"); d != nil {
		if n, ok := positive(d.Arg(0)); ok {
			rc.MinUses = n
			r.mark(d, Mapped, "min_uses")
		} else {
			r.mark(d, Unsupported, "not a count")
		}
	}
	for _, d := range sc.all("proxy_cache_use_stale") {
		for _, a := range d.Args {
			if a != "off" {
				rc.UseStale = append(rc.UseStale, a)
			}
		}
		r.mark(d, Mapped, "use_stale")
	}
	if d := sc.get("proxy_cache_background_update"); d != nil {
		rc.BackgroundUpdate = d.Arg(0) == "on"
		r.mark(d, Mapped, "background_update")
	}
	if d := sc.get("proxy_cache_lock"); d != nil {
		r.mark(d, Builtin, "offedge's cache lock is always on")
	}
	for _, kind := range []string{"proxy_cache_bypass", "proxy_no_cache"} {
		for _, d := range sc.all(kind) {
			var conds []string
			ok := true
			for _, a := range d.Args {
				c, good := condition(a)
				if !good {
					ok = false
				}
				conds = append(conds, c)
			}
			if !ok {
				r.mark(d, Unsupported, "%s: conditions are $cookie_X, $http_X, $arg_X", kind)
				continue
			}
			if kind == "proxy_cache_bypass" {
				rc.Bypass = append(rc.Bypass, conds...)
			} else {
				rc.NoStore = append(rc.NoStore, conds...)
			}
			r.mark(d, Mapped, "%s", map[string]string{"proxy_cache_bypass": "bypass", "proxy_no_cache": "no_store"}[kind])
		}
	}
	if d := sc.get("proxy_ignore_headers"); d != nil {
		rc.IgnoreCC = true
		r.mark(d, Mapped, "ignore_cache_control")
	}
	rt.Cache = rc
	r.mark(c, Mapped, "route cache in %s", name)
	return true
}

var keyVarRE = regexp.MustCompile(`\$(scheme|host|request_uri|uri|arg_[a-zA-Z0-9_]+|cookie_[a-zA-Z0-9_]+|http_[a-zA-Z0-9_]+)`)

// cacheKey splits an nginx cache key into offedge's parts.
func cacheKey(k string) ([]string, bool) {
	var parts []string
	rest := k
	for rest != "" {
		m := keyVarRE.FindStringSubmatchIndex(rest)
		if m == nil || m[0] != 0 {
			return nil, false
		}
		v := rest[m[2]:m[3]]
		rest = rest[m[1]:]
		switch {
		case v == "scheme", v == "host":
			parts = append(parts, v)
		case v == "request_uri":
			parts = append(parts, "uri")
		case v == "uri":
			parts = append(parts, "path")
		case strings.HasPrefix(v, "arg_"):
			parts = append(parts, "arg:"+v[4:])
		case strings.HasPrefix(v, "cookie_"):
			parts = append(parts, "cookie:"+v[7:])
		case strings.HasPrefix(v, "http_"):
			parts = append(parts, "header:"+strings.ReplaceAll(v[5:], "_", "-"))
		}
	}
	return parts, len(parts) > 0
}

// condition maps a cache bypass variable.
func condition(a string) (string, bool) {
	switch {
	case strings.HasPrefix(a, "$cookie_"):
		return "cookie:" + a[8:], true
	case strings.HasPrefix(a, "$arg_"):
		return "arg:" + a[5:], true
	case strings.HasPrefix(a, "$http_"):
		return "header:" + strings.ReplaceAll(a[6:], "_", "-"), true
	}
	return "", false
}

// proxyPass maps a proxy_pass to an upstream name ("" when it cannot).
func (r *run) proxyPass(d *Directive, l *location, rt *outRoute) string {
	raw := d.Arg(0)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		r.mark(d, Unsupported, "proxy_pass %s: offedge proxies to http:// and https://", raw)
		return ""
	}
	hostport, uri := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostport, uri = rest[:i], rest[i:]
	}
	if strings.Contains(hostport, "$") {
		r.mark(d, Unsupported, "proxy_pass to a server named by a variable (%s): an upstream is an inventory object", hostport)
		return ""
	}
	if uri != "" && uri != l.path && !(uri == "/" && l.path == "/") {
		switch {
		case rt == nil || l.mod == "@" || (l.re != nil && !strings.Contains(uri, "$")):
			r.mark(d, Unsupported, "proxy_pass with a URI in a named or regex location (nginx refuses it without variables)")
			return ""
		default:
			if why := r.template(uri); why != "" {
				r.mark(d, Unsupported, "proxy_pass URI %s: %s", uri, why)
				return ""
			}
			rt.UpstreamPath = uri
		}
	}
	sc := l.sc
	// nginx sends Host: $proxy_host (the proxy_pass name, its port when not
	// the scheme's) unless proxy_set_header Host says otherwise.
	host := proxyHost(scheme, hostport)
	if h, set := hostHeader(sc); set {
		host = h
	}
	connect, ok1 := r.timeout(sc, "proxy_connect_timeout", "connect_timeout")
	read, ok2 := r.timeout(sc, "proxy_read_timeout", "read_timeout")
	if !ok1 || !ok2 {
		return ""
	}
	if t := sc.get("proxy_send_timeout"); t != nil {
		r.mark(t, Builtin, "read_timeout also bounds a write that makes no progress")
	}
	// An upstream block?
	if blk := r.upstreamBlocks[hostport]; blk != nil {
		return r.upstreamBlock(blk, scheme, host, connect, read, d)
	}
	srv, ok := r.target(d, scheme, hostport)
	if !ok {
		r.mark(d, Unsupported, "%s is no inventory node, service or site (see unmapped)", hostport)
		return ""
	}
	u := &outUpstream{Servers: []*outUpstreamServer{srv}, Host: host, ConnectTimeout: connect, ReadTimeout: read}
	name := r.addUpstream(u, srv)
	r.mark(d, Mapped, "upstream %s", name)
	return name
}

// timeout maps the proxy timeout directive name in effect to the
// upstream's field; false when it is not a time.
func (r *run) timeout(sc *scope, name, field string) (string, bool) {
	t := sc.get(name)
	if t == nil {
		return "", true
	}
	v, ok := duration(t.Arg(0))
	if !ok {
		r.mark(t, Unsupported, "not a time")
		return "", false
	}
	r.mark(t, Mapped, "the upstream's %s", field)
	return v, true
}

// hostHeader is the Host a proxy_set_header Host in effect sends: a
// literal, or "" for the client's ($host, $http_host). set is false when
// none is in effect.
func hostHeader(sc *scope) (host string, set bool) {
	for _, d := range sc.all("proxy_set_header") {
		if strings.EqualFold(d.Arg(0), "host") {
			if strings.Contains(d.Arg(1), "$") {
				return "", true
			}
			return d.Arg(1), true
		}
	}
	return "", false
}

// proxyHost is nginx's $proxy_host for a proxy_pass target.
func proxyHost(scheme, hostport string) string {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if (scheme == "http" && p == "80") || (scheme == "https" && p == "443") {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return hostport
}

// addUpstream names u (reusing an inventory upstream or one already made
// with the same servers and settings) and returns the name.
func (r *run) addUpstream(u *outUpstream, first *outUpstreamServer) string {
	key := fmt.Sprintf("%+v|%s|%s|%s|%d|%d|%s", serversKey(u.Servers), u.Host, u.ConnectTimeout, u.ReadTimeout, u.Keepalive, u.MaxFails, u.FailTimeout)
	if n, ok := r.upstreamByKey[key]; ok {
		return n
	}
	if u.Host == "" && u.ConnectTimeout == "" && u.ReadTimeout == "" && u.Keepalive == 0 && u.MaxFails == 0 {
		for _, iu := range r.im.Model.Upstreams {
			if sameInventoryUpstream(iu, u.Servers) {
				r.upstreamByKey[key] = iu.Name
				return iu.Name
			}
		}
	}
	base := u.Name
	if base == "" {
		switch {
		case first.Service != "":
			base = first.Service
		case first.Node != "":
			base = fmt.Sprintf("%s-%d", first.Node, first.Port)
		}
		if u.Host != "" {
			base += "-" + u.Host
		}
	}
	u.Name = objectName(base, r.upstreamNames)
	r.upstreamByKey[key] = u.Name
	r.upstreams = append(r.upstreams, u)
	return u.Name
}

func serversKey(ss []*outUpstreamServer) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%+v;", *s)
	}
	return b.String()
}

func sameInventoryUpstream(iu *inventory.Upstream, ss []*outUpstreamServer) bool {
	if len(iu.Servers) != len(ss) || iu.Host != "" {
		return false
	}
	for i, s := range iu.Servers {
		o := ss[i]
		if s.Service != o.Service || s.Node != o.Node || s.Port != o.Port || s.TLS != o.TLS || s.ServerName != o.ServerName || s.Backup != o.Backup || s.Tunnel != "" {
			return false
		}
		if w := max(s.Weight, 1); w != max(o.Weight, 1) {
			return false
		}
	}
	return true
}

// upstreamBlock maps an upstream { server ...; } block.
func (r *run) upstreamBlock(blk *Directive, scheme, host, connect, read string, pp *Directive) string {
	u := &outUpstream{Name: blk.Args[0], Host: host, ConnectTimeout: connect, ReadTimeout: read}
	for _, d := range blk.Block {
		switch d.Name {
		case "server":
			srv, ok := r.target(d, scheme, d.Arg(0))
			if !ok {
				r.mark(d, Unsupported, "%s is no inventory node, service or site (see unmapped)", d.Arg(0))
				continue
			}
			good := true
			for _, p := range d.Args[1:] {
				k, v, _ := strings.Cut(p, "=")
				n, isNum := positive(v)
				switch {
				case k == "weight" && isNum:
					srv.Weight = n
				case k == "backup" && v == "":
					srv.Backup = true
				case k == "max_conns" && isNum:
					srv.MaxConns = n
				case k == "max_fails" && isNum:
					u.MaxFails = n
				case k == "fail_timeout":
					ft, ok := duration(v)
					if !ok {
						r.mark(d, Unsupported, "fail_timeout=%s: not a time", v)
						good = false
					}
					u.FailTimeout = ft
				default:
					r.mark(d, Unsupported, "upstream server parameter %s", p)
					good = false
				}
			}
			if good {
				u.Servers = append(u.Servers, srv)
				r.mark(d, Mapped, "an upstream server")
			}
		case "keepalive":
			if n, ok := positive(d.Arg(0)); ok {
				u.Keepalive = n
				r.mark(d, Mapped, "keepalive")
			} else {
				r.mark(d, Unsupported, "keepalive %q: not a count", d.Arg(0))
			}
		case "keepalive_timeout", "keepalive_requests":
			r.mark(d, Builtin, "idle upstream connections close after 60 s")
		case "least_conn", "ip_hash", "hash", "random":
			r.mark(d, Unsupported, "%s: offedge balances by smooth weighted round robin", d.Name)
		default:
			r.mark(d, Unsupported, "upstream %s", d.Name)
		}
	}
	if len(u.Servers) == 0 {
		r.mark(blk, Unsupported, "no server of upstream %q maps to the inventory", blk.Args[0])
		return ""
	}
	name := r.addUpstream(u, u.Servers[0])
	r.mark(blk, Mapped, "upstream %s", name)
	r.mark(pp, Mapped, "upstream %s", name)
	return name
}

// target maps host:port to an upstream server: a service of the node
// listening there, else the node and port; a hostname through --host or
// the inventory's sites.
func (r *run) target(d *Directive, scheme, hostport string) (*outUpstreamServer, bool) {
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	pn, err := strconv.Atoi(port)
	if err != nil || pn < 1 || pn > 65535 {
		r.unmappedAt(d, "cannot read the port of %s", hostport)
		return nil, false
	}
	m := r.im.Model
	srv := &outUpstreamServer{TLS: scheme == "https"}
	if srv.TLS {
		r.finding(d, "nginx does not verify an https upstream's certificate (proxy_ssl_verify off); offedge verifies it against server_name, else the upstream's host")
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if srv, ok := r.nodeTarget(ip, pn, srv); ok {
			return srv, true
		}
		if ip.IsLoopback() {
			for _, s := range m.ServicesOn(r.im.Node) {
				if s.Port == pn {
					srv.Service = s.Name
					return srv, true
				}
			}
			r.unmappedAt(d, "%s: no service of node %s on port %d", hostport, r.im.Node, pn)
			return nil, false
		}
		r.unmappedAt(d, "%s is no node's address in the inventory", ip)
		return nil, false
	}
	h := strings.ToLower(host)
	if scheme == "https" {
		srv.ServerName = h
	}
	if n, ok := r.im.Hosts[h]; ok {
		srv.Node, srv.Port = n, pn
		return srv, true
	}
	if sites := m.SiteForHost(h); len(sites) > 0 {
		srv.Node, srv.Port = sites[0].Node, pn
		return srv, true
	}
	r.unmappedAt(d, "%s: no site of the inventory serves this name; pass --host %s=NODE", net.JoinHostPort(host, port), h)
	return nil, false
}

// nodeTarget is the service or node at ip:port on one of the node's
// networks (an address means something only on a network the node is on).
func (r *run) nodeTarget(ip netip.Addr, pn int, srv *outUpstreamServer) (*outUpstreamServer, bool) {
	m := r.im.Model
	for _, nw := range m.Networks {
		if len(r.node.AddressesOn(nw.Name)) == 0 {
			continue
		}
		n := m.NodeAt(nw.Name, ip)
		if n == nil {
			continue
		}
		for _, s := range m.ServicesOn(n.Name) {
			if s.Port == pn && (len(s.Bind) == 0 || slicesContains(s.Bind, nw.Name)) && !s.Loopback {
				srv.Service = s.Name
				return srv, true
			}
		}
		srv.Node, srv.Port, srv.Network = n.Name, pn, nw.Name
		return srv, true
	}
	return nil, false
}

func slicesContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// limit maps a limit_req to the zone it names, with the zone's settings
// from the limit_req_zone and this scope's limit_req_status/dry_run.
func (r *run) limit(d *Directive, sc *scope) *outLimit {
	zname := argValue(d.Args, "zone")
	zd := r.zones[zname]
	if zd == nil {
		r.mark(d, Unsupported, "no limit_req_zone %q", zname)
		return nil
	}
	z := &outZone{Name: objectName(zname, map[string]bool{})}
	rate := argValue(zd.Args, "rate")
	switch {
	case strings.HasSuffix(rate, "r/s"):
		z.Rate = atoiSafe(strings.TrimSuffix(rate, "r/s"))
	case strings.HasSuffix(rate, "r/m"):
		z.Rate, z.Per = atoiSafe(strings.TrimSuffix(rate, "r/m")), "1m"
	}
	if z.Rate <= 0 {
		r.mark(zd, Unsupported, "rate %q", rate)
		return nil
	}
	if size := strings.SplitN(argValue(zd.Args, "zone"), ":", 2); len(size) == 2 {
		// nginx: "one megabyte zone can keep about 16 thousand 64-byte
		// states".
		var n inventory.Size
		if err := n.UnmarshalText([]byte(size[1])); err == nil && n > 0 {
			keys := int(n / 64)
			if n >= 1<<20 {
				keys = int(n>>20) * 16000
			}
			if keys != 160000 {
				z.MaxKeys = keys
			}
		}
	}
	key := zd.Arg(0)
	switch key {
	case "$binary_remote_addr", "$remote_addr":
	default:
		cm, ok := r.classKey(strings.TrimPrefix(key, "$"), zd)
		if !ok {
			r.mark(zd, Unsupported, "zone key %s: offedge counts by address, by a map's class, or both", key)
			return nil
		}
		z.Key, z.Map = "class+address", cm
	}
	burst, nodelay := 0, false
	for _, a := range d.Args {
		switch {
		case strings.HasPrefix(a, "burst="):
			n, ok := positive(strings.TrimPrefix(a, "burst="))
			if !ok {
				r.mark(d, Unsupported, "%s: not a count", a)
				return nil
			}
			burst = n
		case a == "nodelay":
			nodelay = true
		case strings.HasPrefix(a, "delay="):
			r.mark(d, Unsupported, "limit_req delay=: offedge's burst is all delayed or (nodelay) none")
			return nil
		}
	}
	if st := sc.get("limit_req_status"); st != nil {
		s := atoiSafe(st.Arg(0))
		if s != 429 && s != 503 && s != 444 {
			r.mark(st, Unsupported, "limit_req_status %s: offedge answers 429, 503 or 444", st.Arg(0))
			return nil
		}
		if s != 429 {
			z.Status = s
		}
		r.mark(st, Mapped, "the zones' status")
	} else {
		z.Status = 503 // nginx's default
	}
	if dr := sc.get("limit_req_dry_run"); dr != nil {
		z.DryRun = dr.Arg(0) == "on"
		r.mark(dr, Mapped, "the zones' dry_run")
		if z.DryRun {
			r.finding(dr, "zone %s is in dry run: set dry_run_until to when it should end (offedge check OE702)", z.Name)
		}
	}
	if lvl := sc.get("limit_req_log_level"); lvl != nil {
		r.mark(lvl, Builtin, "offedge logs every refusal once a second per rule")
	}
	if prev := r.zonesOut[z.Name]; prev != nil {
		if prev.Status != z.Status || prev.DryRun != z.DryRun {
			r.mark(d, Unsupported, "zone %s is used with another limit_req_status or dry run elsewhere: offedge sets them on the zone", zname)
			return nil
		}
	} else {
		r.zonesOut[z.Name] = z
		r.prot.LimitZones = append(r.prot.LimitZones, z)
	}
	r.mark(zd, Mapped, "protection limit zone %s", z.Name)
	r.mark(d, Mapped, "the route's limits (with its burst)")
	return &outLimit{Zone: z.Name, Burst: &burst, NoDelay: &nodelay}
}

// classKey turns a map-derived zone key into a class map: the zone's key
// variable is a map giving $binary_remote_addr (counted) or "" (not
// counted), from a request field directly or through one more map.
// Returns the class map's name.
func (r *run) classKey(v string, zd *Directive) (string, bool) {
	if n, ok := r.classMaps[v]; ok {
		return n, true
	}
	outer := r.maps[v]
	if outer == nil {
		return "", false
	}
	src := outer.Args[0]
	counted := func(val string) (bool, bool) {
		switch val {
		case "$binary_remote_addr", "$remote_addr":
			return true, true
		case "":
			return false, true
		}
		return false, false
	}
	entries, def, ok := mapEntries(outer)
	if !ok {
		return "", false
	}
	cm := &outClassMap{Name: objectName(v, map[string]bool{})}
	if inner := r.maps[strings.TrimPrefix(src, "$")]; inner != nil {
		// Two maps: classify by the inner map's source; a class counts
		// when the outer map gives it an address.
		ientries, idef, ok := mapEntries(inner)
		if !ok {
			return "", false
		}
		source, ok := mapSource(inner.Args[0])
		if !ok {
			return "", false
		}
		cm.Source = source
		classOf := func(val string) (string, bool) {
			out := def
			for _, e := range entries {
				if e.match(val) {
					out = e.value
					break
				}
			}
			c, ok := counted(out)
			if !ok {
				return "", false
			}
			if !c {
				return "", true
			}
			if val == "" {
				return "counted", true
			}
			return val, true
		}
		for _, e := range ientries {
			c, ok := classOf(e.value)
			if !ok {
				return "", false
			}
			cm.Rules = append(cm.Rules, e.rule(c))
		}
		c, ok := classOf(idef)
		if !ok {
			return "", false
		}
		cm.Default = c
		r.mark(inner, Mapped, "class map %s", cm.Name)
	} else {
		source, ok := mapSource(src)
		if !ok {
			return "", false
		}
		cm.Source = source
		for _, e := range entries {
			c, ok := counted(e.value)
			if !ok {
				return "", false
			}
			class := ""
			if c {
				class = "counted"
			}
			cm.Rules = append(cm.Rules, e.rule(class))
		}
		c, ok := counted(def)
		if !ok {
			return "", false
		}
		if c {
			cm.Default = "counted"
		}
	}
	r.mark(outer, Mapped, "class map %s", cm.Name)
	r.classMaps[v] = cm.Name
	r.prot.Maps = append(r.prot.Maps, cm)
	return cm.Name, true
}

type mapEntry struct {
	exact string
	re    *regexp.Regexp
	raw   string
	value string
}

func (e mapEntry) match(v string) bool {
	if e.re != nil {
		return e.re.MatchString(v)
	}
	return e.exact == v
}

func (e mapEntry) rule(class string) *outMapRule {
	if e.re != nil {
		return &outMapRule{Regex: e.raw, Class: class}
	}
	return &outMapRule{Exact: e.exact, Class: class}
}

// mapEntries reads a map block: its entries in order (exact, then regex
// in order, as nginx tries them) and its default.
func mapEntries(d *Directive) ([]mapEntry, string, bool) {
	var exact, res []mapEntry
	def := ""
	for _, e := range d.Block {
		if len(e.Args) != 1 {
			if e.Name == "hostnames" || e.Name == "volatile" {
				return nil, "", false
			}
			return nil, "", false
		}
		switch {
		case e.Name == "default":
			def = e.Args[0]
		case strings.HasPrefix(e.Name, "~*"):
			re, err := regexp.Compile("(?i)" + e.Name[2:])
			if err != nil {
				return nil, "", false
			}
			res = append(res, mapEntry{re: re, raw: "(?i)" + e.Name[2:], value: e.Args[0]})
		case strings.HasPrefix(e.Name, "~"):
			re, err := regexp.Compile(e.Name[1:])
			if err != nil {
				return nil, "", false
			}
			res = append(res, mapEntry{re: re, raw: e.Name[1:], value: e.Args[0]})
		default:
			exact = append(exact, mapEntry{exact: strings.TrimPrefix(e.Name, "\\"), value: e.Args[0]})
		}
	}
	return append(exact, res...), def, true
}

// mapSource is the class map source of an nginx variable.
func mapSource(v string) (string, bool) {
	switch {
	case v == "$uri":
		return "path", true
	case v == "$http_user_agent":
		return "user_agent", true
	case v == "$http_referer":
		return "referer", true
	case v == "$remote_addr", v == "$binary_remote_addr":
		return "address", true
	case strings.HasPrefix(v, "$http_"):
		return "header:" + strings.ReplaceAll(v[6:], "_", "-"), true
	}
	return "", false
}

// size is an nginx size as the inventory writes it ("20M" → "20m"), ok
// when the inventory reads it.
func size(v string) (string, bool) {
	v = strings.ToLower(v)
	var n inventory.Size
	return v, n.UnmarshalText([]byte(v)) == nil
}

// cacheSize is a size a cache can have (more than nothing).
func cacheSize(v string) (string, bool) {
	var n inventory.Size
	v, ok := size(v)
	return v, ok && n.UnmarshalText([]byte(v)) == nil && n > 0
}

// duration is an nginx time as the inventory writes it: a bare number is
// seconds; ms, s, m, h, d as they are.
func duration(v string) (string, bool) {
	if _, err := strconv.Atoi(v); err == nil {
		v += "s"
	}
	var d inventory.Duration
	return v, d.UnmarshalText([]byte(v)) == nil
}

var hostNameRE = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// positive reads a count ≥ 0.
func positive(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0
}

// The access log formats offedge writes, as nginx log_format strings.
const combinedFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`

var logFormats = map[string]string{
	combinedFormat: "combined",
	combinedFormat + ` c=$upstream_cache_status u=$upstream_addr t=$request_time`:                "combined_upstream",
	combinedFormat + ` "$http_x_forwarded_for" $upstream_cache_status [$upstream_response_time]`: "combined_proxy",
}

// logFormatKind names the offedge format a log_format writes, by its
// content (white space aside), "" for none.
func logFormatKind(d *Directive) string {
	args := d.Args[1:]
	if len(args) > 0 && strings.HasPrefix(args[0], "escape=") {
		return ""
	}
	return logFormats[strings.Join(strings.Fields(strings.Join(args, "")), " ")]
}

// simpleRedirect reports whether a return is a redirect to a fixed URL
// prefix followed by $request_uri (a redirect route says it).
func simpleRedirect(d *Directive) bool {
	switch d.Arg(0) {
	case "301", "302", "303", "307", "308":
	default:
		return false
	}
	prefix, ok := strings.CutSuffix(d.Arg(1), "$request_uri")
	return ok && prefix != "" && !strings.Contains(prefix, "$") && len(d.Args) == 2
}

// rewriteDirectives are nginx's rewrite module's: the rewrite phase.
var rewriteDirectives = map[string]bool{"rewrite": true, "return": true, "set": true, "if": true, "break": true}

// steps maps the rewrite phase of a block, in order. ok is false (and
// every directive of it marked) when one cannot be mapped: half a phase
// would answer otherwise.
func (r *run) steps(block []*Directive, groups int) ([]*outStep, bool) {
	var out []*outStep
	var phase []*Directive
	for _, d := range block {
		if !rewriteDirectives[d.Name] {
			continue
		}
		phase = append(phase, d)
		st, why := r.step(d)
		if st == nil {
			for _, x := range phase {
				r.mark(x, Unsupported, "%s", why)
			}
			for _, x := range block {
				if rewriteDirectives[x.Name] {
					r.mark(x, Unsupported, "in a rewrite phase the importer cannot map whole (%s: %s)", d.Pos(), why)
				}
			}
			return nil, false
		}
		out = append(out, st)
	}
	// The edge's compiler has the last word (captures named beyond a
	// regex's groups, and the like).
	if why := r.checkSteps(out, groups); why != "" {
		for _, x := range phase {
			r.mark(x, Unsupported, "the rewrite phase does not compile: %s", why)
		}
		return nil, false
	}
	for _, d := range phase {
		walkMark(r, d)
	}
	return out, true
}

// checkSteps compiles steps as the edge will ("" when they do).
func (r *run) checkSteps(out []*outStep, groups int) string {
	if len(out) == 0 {
		return ""
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return err.Error()
	}
	var in []*inventory.Step
	if err := yaml.Unmarshal(b, &in); err != nil {
		return err.Error()
	}
	if _, err := vars.CompileSteps(inventory.StepConfigs(in), r.scope, groups); err != nil {
		return err.Error()
	}
	return ""
}

func walkMark(r *run, d *Directive) {
	r.mark(d, Mapped, "rewrites")
	for _, x := range d.Block {
		walkMark(r, x)
	}
}

// step maps one rewrite-phase directive; nil and why when it cannot.
func (r *run) step(d *Directive) (*outStep, string) {
	switch d.Name {
	case "rewrite":
		if len(d.Args) < 2 || len(d.Args) > 3 {
			return nil, "rewrite takes a regex, a replacement and a flag"
		}
		if why := regex(d.Args[0], false); why != "" {
			return nil, why
		}
		if why := r.template(d.Args[1]); why != "" {
			return nil, why
		}
		rw := &outRewrite{Regex: d.Args[0], Replacement: d.Args[1]}
		if len(d.Args) == 3 {
			switch d.Args[2] {
			case "last", "break", "redirect", "permanent":
				rw.Flag = d.Args[2]
			default:
				return nil, "rewrite flag " + d.Args[2]
			}
		}
		return &outStep{Rewrite: rw}, ""
	case "return":
		ret := &outReturn{}
		switch len(d.Args) {
		case 1:
			if c, err := strconv.Atoi(d.Args[0]); err == nil {
				ret.Code = c
			} else {
				ret.Code, ret.URL = 302, d.Args[0]
			}
		case 2:
			c, err := strconv.Atoi(d.Args[0])
			if err != nil {
				return nil, "return CODE TEXT|URL"
			}
			ret.Code = c
			if c >= 301 && c <= 308 && c != 304 && c != 305 && c != 306 {
				ret.URL = d.Args[1]
			} else {
				ret.Body = d.Args[1]
			}
		default:
			return nil, "return takes a code and a text or URL"
		}
		if (ret.Code < 200 || ret.Code > 599) && ret.Code != 444 {
			return nil, fmt.Sprintf("return %d", ret.Code)
		}
		if ret.Code == 444 && (ret.URL != "" || ret.Body != "") {
			return nil, "return 444 closes the connection: no text"
		}
		if ret.URL == "" && ret.Code >= 301 && ret.Code <= 308 && ret.Code != 304 {
			return nil, "a redirect without a URL"
		}
		for _, t := range []string{ret.URL, ret.Body} {
			if why := r.template(t); why != "" {
				return nil, why
			}
		}
		return &outStep{Return: ret}, ""
	case "set":
		if len(d.Args) != 2 || !strings.HasPrefix(d.Args[0], "$") || len(d.Args[0]) < 2 {
			return nil, "set $NAME VALUE"
		}
		if why := r.template(d.Args[1]); why != "" {
			return nil, why
		}
		return &outStep{Set: &outSet{Name: d.Args[0][1:], Value: d.Args[1]}}, ""
	case "if":
		cond, why := condition2(d.Args)
		if cond == nil {
			return nil, why
		}
		if why := r.template(cond.Variable); why != "" {
			return nil, why
		}
		if strings.Contains(cond.Op, "~") {
			if why := regex(cond.Value, strings.HasSuffix(cond.Op, "*")); why != "" {
				return nil, why
			}
		} else if why := r.template(cond.Value); why != "" {
			return nil, why
		}
		st := &outStep{If: cond}
		for _, x := range d.Block {
			if !rewriteDirectives[x.Name] {
				return nil, fmt.Sprintf("%s inside if: offedge's if holds rewrite, return, set and if", x.Name)
			}
			sub, why := r.step(x)
			if sub == nil {
				return nil, why
			}
			st.Then = append(st.Then, sub)
		}
		if len(st.Then) == 0 {
			return nil, "an empty if"
		}
		return st, ""
	}
	return nil, d.Name + ": not a step offedge has (rewrite ... break stops the phase)"
}

// condition2 parses an if's condition: ($var), ($var OP value).
func condition2(args []string) (*outCondition, string) {
	cond := strings.TrimSpace(strings.Join(args, " "))
	if !strings.HasPrefix(cond, "(") || !strings.HasSuffix(cond, ")") {
		return nil, "if needs (condition)"
	}
	cond = strings.TrimSpace(cond[1 : len(cond)-1])
	parts := strings.SplitN(cond, " ", 3)
	if len(parts) == 0 || !strings.HasPrefix(parts[0], "$") || len(parts[0]) < 2 {
		return nil, fmt.Sprintf("if (%s): file tests (-f, -d, -e, -x) and negations are not supported", cond)
	}
	c := &outCondition{Variable: parts[0]}
	switch len(parts) {
	case 1:
		return c, ""
	case 3:
		switch parts[1] {
		case "=", "!=", "~", "~*", "!~", "!~*":
		default:
			return nil, "if operator " + parts[1]
		}
		c.Op, c.Value = parts[1], strings.TrimSpace(parts[2])
		return c, ""
	}
	return nil, fmt.Sprintf("if (%s)", cond)
}

// errorLog maps error_log PATH [LEVEL] to the site's error log.
func (r *run) errorLog(d *Directive, site *outSite) {
	switch {
	case site.ErrorLog != nil:
		r.mark(d, Unsupported, "a second error log of one site")
	case d.Arg(0) == "stderr":
		r.mark(d, Builtin, "offedge's own log (stderr, the journal)")
	case strings.HasPrefix(d.Arg(0), "syslog:") || strings.HasPrefix(d.Arg(0), "memory:") || !strings.HasPrefix(d.Arg(0), "/") || len(d.Args) > 2:
		r.mark(d, Unsupported, "error logs to files only")
	default:
		el := &outErrorLog{Path: d.Arg(0)}
		switch lv := d.Arg(1); lv {
		case "", "error":
		case "debug", "info", "notice", "warn", "crit", "alert", "emerg":
			el.Level = lv
		default:
			r.mark(d, Unsupported, "error_log level %q", lv)
			return
		}
		if site.AccessLog != nil && site.AccessLog.Path == el.Path {
			r.mark(d, Unsupported, "the access log's file: a file is one or the other")
			return
		}
		site.ErrorLog = el
		r.mark(d, Mapped, "the site's error_log")
	}
}

// compress maps gzip and its companions in effect in sc (nil when gzip
// is off or unset). With parent set (a location), only what differs.
func (r *run) compress(sc *scope, parent *outCompress) *outCompress {
	g := sc.get("gzip")
	for _, name := range []string{"gzip_vary", "gzip_proxied", "gzip_disable", "gzip_buffers", "gzip_http_version"} {
		if d := sc.get(name); d != nil {
			r.mark(d, Builtin, "offedge's compression decides it (Vary: Accept-Encoding on what it compresses; any client accepting gzip)")
		}
	}
	if g == nil {
		return nil
	}
	if g.Arg(0) != "on" {
		r.mark(g, Mapped, "no compression")
		return nil
	}
	f := false
	c := &outCompress{Zstd: &f, Types: []string{"text/html"}, MinLength: "20", Level: 1}
	if d := sc.get("gzip_types"); d != nil {
		c.Types = append([]string{"text/html"}, d.Args...)
		r.mark(d, Mapped, "compress types")
	}
	if d := sc.get("gzip_min_length"); d != nil {
		if v, ok := size(d.Arg(0)); ok {
			c.MinLength = v
			r.mark(d, Mapped, "compress min_length")
		} else {
			r.mark(d, Unsupported, "not a size")
		}
	}
	if d := sc.get("gzip_comp_level"); d != nil {
		if n, err := strconv.Atoi(d.Arg(0)); err == nil && n >= 1 && n <= 9 {
			c.Level = n
			r.mark(d, Mapped, "compress level")
		} else {
			r.mark(d, Unsupported, "gzip_comp_level 1-9")
		}
	}
	if d := sc.get("gzip_static"); d != nil && d.Arg(0) == "on" {
		t := true
		c.GzipStatic = &t
		r.mark(d, Mapped, "gzip_static")
	}
	r.mark(g, Mapped, "compress (gzip; nginx offers no zstd)")
	return c
}

// onlySimpleReturn reports whether a block's rewrite phase is one plain
// redirect return (a redirect route says it).
func onlySimpleReturn(block []*Directive) bool {
	ret := Find(block, "return")
	return len(ret) == 1 && simpleRedirect(ret[0]) && len(Find(block, "rewrite"))+len(Find(block, "if"))+len(Find(block, "set")) == 0
}

// templateScope declares, for checking templates, every variable the
// configuration sets or maps (as set variables: their values do not
// matter here).
func templateScope(ds []*Directive, externs []string) *vars.Scope {
	seen := map[string]bool{}
	var names []string
	walk(ds, func(d *Directive) {
		var n string
		switch {
		case d.Name == "set" && len(d.Args) == 2:
			n = strings.TrimPrefix(d.Args[0], "$")
		case d.Name == "map" && len(d.Args) == 2:
			n = strings.TrimPrefix(d.Args[1], "$")
		}
		if n != "" && !seen[n] && vars.IsName(n) {
			if _, err := vars.NewScope(nil, []string{n}, nil); err == nil {
				seen[n] = true
				names = append(names, n)
			}
		}
	})
	sc, err := vars.NewScope(nil, names, externs)
	if err != nil {
		return nil
	}
	return sc
}

// template reports why s is not a template offedge runs ("" when it is).
func (r *run) template(s string) string {
	if _, err := vars.Parse(s, r.scope); err != nil {
		return err.Error()
	}
	return ""
}

// regex reports why re is not a regex offedge runs ("" when it is).
func regex(re string, ci bool) string {
	if _, err := vars.CompileRegex(re, ci); err != nil {
		return err.Error()
	}
	return ""
}

// inheritable are the http-level directives servers inherit, which the
// mapping reads through a server.
var inheritable = map[string]bool{
	"access_log": true, "error_log": true, "add_header": true, "client_max_body_size": true, "expires": true,
	"gzip": true, "gzip_types": true, "gzip_min_length": true, "gzip_comp_level": true, "gzip_static": true,
	"gzip_vary": true, "gzip_proxied": true, "gzip_disable": true, "gzip_buffers": true, "gzip_http_version": true,
	"proxy_set_header": true, "proxy_read_timeout": true, "proxy_connect_timeout": true, "proxy_intercept_errors": true,
	"limit_req_status": true, "limit_req_dry_run": true, "auth_basic": true, "auth_basic_user_file": true,
	"proxy_cache_valid": true, "proxy_cache_key": true, "error_page": true, "root": true,
}
