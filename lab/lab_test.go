package lab

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/internal/testutil"
	"github.com/offedge/offedge/inventory"
	"github.com/offedge/offedge/lab/standin"
	"github.com/offedge/offedge/plan"
	"github.com/offedge/offedge/reach"
	"github.com/offedge/offedge/topology"
)

func startOFF(t *testing.T) *Lab {
	t.Helper()
	return startOFFWith(t, Options{})
}

// startOFFWith starts the Open Food Facts lab (instance 1, in a test
// directory) with opts.
func startOFFWith(t *testing.T, opts Options) *Lab {
	t.Helper()
	// The lab uses the real redis-server and PostgreSQL; in CI they must be there.
	testutil.RequireBinary(t, "redis-server")
	testutil.RequireBinary(t, "initdb")
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Instance 1: cmd/offedge tests run a lab (instance 2) at the same time.
	opts.Dir, opts.Instance = t.TempDir(), 1
	l, err := Start(ctx, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// estate is what the end-to-end tests and the failure drill need of a
// lab: the loopback one (Lab) or the one in network namespaces (NetnsLab).
type estate interface {
	Model() *inventory.Model
	CAFile() string
	Dir() string
	Visitor() netip.Addr
	SiteAddr(node string, port int) (netip.AddrPort, error)
	DialFrom(ctx context.Context, from, network string, target netip.AddrPort) (net.Conn, error)
	DialService(ctx context.Context, from, service string) (net.Conn, reach.Path, error)
	WaitReady(ctx context.Context) error
	// dialSite connects a visitor on the internet to node's public HTTP
	// listener on port.
	dialSite(ctx context.Context, node string, port int) (net.Conn, error)
	// kernelFirewall says whether the nodes' firewalls are applied (a
	// connection they refuse never opens).
	kernelFirewall() bool
	nodePlan(node string) *plan.Plan
	isDown(node string) bool
}

func (l *Lab) dialSite(ctx context.Context, node string, port int) (net.Conn, error) {
	ap, err := l.SiteAddr(node, port)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	d.LocalAddr = &net.TCPAddr{IP: l.Visitor().AsSlice()}
	return d.DialContext(ctx, "tcp", ap.String())
}

func (l *Lab) kernelFirewall() bool { return false }

func (l *Lab) nodePlan(node string) *plan.Plan { return l.nodes[node].plan }

// siteClient is an HTTP client that reaches node's public listeners
// whatever the URL's host says (curl --connect-to), trusting the lab CA,
// from a visitor on the internet.
func siteClient(t *testing.T, l estate, node string) *http.Client {
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(l.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				p, _ := strconv.Atoi(port)
				return l.dialSite(ctx, node, p)
			},
			DisableKeepAlives: true,
		},
	}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(body)
}

// labStartBudget bounds the loopback lab's start-up with the whole test
// suite sharing the machine.
const labStartBudget = 5 * time.Second

func TestLabEndToEnd(t *testing.T) {
	l := startOFF(t)
	t.Logf("lab started in %s", l.StartupTime())
	// About 0.9 s on a quiet 2-core machine (most of it initdb and
	// redis-server). The budget is for the suite's machine, where every
	// package runs at once: a 2 s bound failed there at 2.47 s while the
	// packaging tests built packages beside it.
	if l.StartupTime() > labStartBudget {
		t.Errorf("lab start-up took %s; the budget is %s", l.StartupTime(), labStartBudget)
	}
	if rss := residentMiB(t); rss > 200 {
		t.Errorf("resident memory with the lab running: %d MiB; the budget is 200 MiB", rss)
	} else {
		t.Logf("resident memory with the lab running: %d MiB", rss)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The tour's commands are meant to be copied: run the redis ones as a
	// user would, and show that the plain redis-cli connection it warns
	// about (from 127.0.0.1) is refused.
	t.Run("tour redis commands answer PONG", func(t *testing.T) {
		testutil.RequireBinary(t, "socat")
		n := 0
		for _, c := range l.Commands() {
			if !strings.HasPrefix(c.Command, "printf 'PING") {
				continue
			}
			n++
			out, err := exec.CommandContext(ctx, "bash", "-c", c.Command).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "+PONG") {
				t.Errorf("%s\n%s: %v %q; want +PONG", c.What, c.Command, err, out)
			}
			addr := strings.TrimPrefix(strings.Fields(c.Command[strings.Index(c.Command, "TCP:"):])[0], "TCP:")
			addr, _, _ = strings.Cut(addr, ",bind=")
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err == nil {
				conn.SetDeadline(time.Now().Add(2 * time.Second))
				conn.Write([]byte("PING\r\n"))
				buf := make([]byte, 16)
				k, _ := conn.Read(buf)
				conn.Close()
				if strings.Contains(string(buf[:k]), "PONG") {
					t.Errorf("%s answered PONG to 127.0.0.1; the tour says it is refused", addr)
				}
			}
		}
		if n == 0 {
			t.Fatal("the tour has no redis command")
		}
	})

	endToEnd(ctx, t, l)
}

// endToEnd are the lab's end-to-end checks, run on the loopback lab and on
// the namespace lab: every site through its real path, the tunnels
// carrying the database connections, the image fallback, and the access
// lists (and in namespaces the firewalls) refusing what the plan denies.
func endToEnd(ctx context.Context, t *testing.T, l estate) {
	t.Run("world over https to product opener on off1", func(t *testing.T) {
		c := siteClient(t, l, "off1")
		resp, body := get(t, c, "https://world.openfoodfacts.org/api/v2/product/3017620422003.json")
		if resp.StatusCode != 200 || !strings.Contains(body, "Nutella") {
			t.Fatalf("status %d body %.200s; want 200 with the product", resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Offedge-Standin"); got != "po-off@off1" {
			t.Fatalf("X-Offedge-Standin %q; want po-off@off1", got)
		}
		_, body = get(t, c, "https://fr.openfoodfacts.org/lab/request")
		var seen struct {
			Host  string `json:"host"`
			XFF   string `json:"x_forwarded_for"`
			Proto string `json:"x_forwarded_proto"`
		}
		if err := json.Unmarshal([]byte(body), &seen); err != nil {
			t.Fatalf("lab/request: %v: %s", err, body)
		}
		if seen.Host != "fr.openfoodfacts.org" || seen.XFF != l.Visitor().String() || seen.Proto != "https" {
			t.Fatalf("the stand-in saw %+v; want Host fr.openfoodfacts.org, X-Forwarded-For %s and proto https", seen, l.Visitor())
		}
		resp, _ = get(t, c, "http://world.openfoodfacts.org/product/3017620422003?x=1")
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://world.openfoodfacts.org/product/3017620422003?x=1" {
			t.Fatalf("http: status %d Location %q; want 301 to the https URL", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("images on ovh3 local then through the fallback", func(t *testing.T) {
		c := siteClient(t, l, "ovh3")
		local := "https://images.openfoodfacts.org" + standin.ImagePath("5449000000996", 1)
		resp, body := get(t, c, local)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(body) < 100 {
			t.Fatalf("local image: status %d type %q len %d", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if s := resp.Header.Get("X-Cache-Status"); s == "MISS" || s == "HIT" {
			t.Fatalf("a local file went through the cache (X-Cache-Status %s)", s)
		}
		remote := "https://images.openfoodfacts.org" + standin.ImagePath("3017620422003", 1)
		if _, err := os.Stat(NodeDir(l.Dir(), "ovh3")); err != nil {
			t.Fatal(err)
		}
		resp, body1 := get(t, c, remote)
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != "MISS" {
			t.Fatalf("first fallback fetch: status %d X-Cache-Status %q; want 200 MISS", resp.StatusCode, resp.Header.Get("X-Cache-Status"))
		}
		resp, body2 := get(t, c, remote)
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache-Status") != "HIT" || body1 != body2 {
			t.Fatalf("second fetch: status %d X-Cache-Status %q same body %v; want 200 HIT", resp.StatusCode, resp.Header.Get("X-Cache-Status"), body1 == body2)
		}
	})

	t.Run("blog through the ovh1 reverse proxy container", func(t *testing.T) {
		resp, _ := get(t, siteClient(t, l, "ovh-proxy"), "https://blog.openfoodfacts.org/")
		if resp.StatusCode != 200 || resp.Header.Get("X-Offedge-Standin") != "blog@ovh-blog" {
			t.Fatalf("status %d standin %q", resp.StatusCode, resp.Header.Get("X-Offedge-Standin"))
		}
	})

	t.Run("robotoff on osm45 over ipv6 through the tunnel", func(t *testing.T) {
		resp, body := get(t, siteClient(t, l, "ovh-proxy"), "https://robotoff.openfoodfacts.org/health")
		if resp.StatusCode != 200 || resp.Header.Get("X-Offedge-Standin") != "robotoff@moji-docker-prod" {
			t.Fatalf("status %d standin %q body %.200s", resp.StatusCode, resp.Header.Get("X-Offedge-Standin"), body)
		}
	})

	t.Run("docker-prod reads redis and mongodb on off2 through the tunnels", func(t *testing.T) {
		c, path, err := l.DialService(ctx, "docker-prod", "redis")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if len(path.Hops) != 3 || path.Hops[0].To.Name != "ovh-stunnel-client" || path.Hops[1].To.Name != "off2" {
			t.Fatalf("path %v; want docker-prod -> ovh-stunnel-client -> off2 -> redis", path)
		}
		if v, err := standin.RedisCommand(ctx, c, "SET", "lab", "through the tunnel"); err != nil || v != "OK" {
			t.Fatalf("SET: %v %v", v, err)
		}
		if v, err := standin.RedisCommand(ctx, c, "GET", "lab"); err != nil || v != "through the tunnel" {
			t.Fatalf("GET: %v %v", v, err)
		}
		info, err := standin.RedisCommand(ctx, c, "INFO", "server")
		if err != nil || strings.Contains(fmt.Sprint(info), "offedge-standin") {
			t.Fatalf("INFO: %v, %v; want the real redis-server", info, err)
		}
		mc, _, err := l.DialService(ctx, "docker-prod", "mongodb")
		if err != nil {
			t.Fatal(err)
		}
		defer mc.Close()
		reply, err := standin.MongoCommand(ctx, mc, "admin", standin.Doc{{Key: "ping", Value: int32(1)}})
		if err != nil || fmt.Sprint(reply.Get("ok")) != "1" {
			t.Fatalf("mongodb ping: %v %v", reply, err)
		}
	})

	t.Run("off1 uses the real postgresql on off2 over free-lan", func(t *testing.T) {
		if err := l.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		c, path, err := l.DialService(ctx, "off1", "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if len(path.Hops) != 1 || path.Hops[0].Target.Network != "free-lan" {
			t.Fatalf("path %v; want one hop on free-lan", path)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := pgHello(c); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the mongodb exit refuses non-OVH sources", func(t *testing.T) {
		exit := netip.MustParseAddrPort("213.36.253.208:27017")
		for _, from := range []string{"off1", "ovh3", ""} {
			c, err := l.DialFrom(ctx, from, "internet", exit)
			if err != nil {
				continue // refused at connect is a refusal too
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(make([]byte, 1))
			c.Close()
			if n != 0 || err == nil {
				t.Fatalf("from %q: read %d bytes, err %v; want the connection closed", from, n, err)
			}
		}
		// The entrance's own source (ovh1's NAT address) is admitted: the
		// connection stays open, waiting for a TLS ClientHello.
		c, err := l.DialFrom(ctx, "ovh-stunnel-client", "internet", exit)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("from the entrance's NAT address: read err %v; want the connection kept open (timeout)", err)
		}
		// ... and the entrance refuses a guest not in its allow list.
		c, err = l.DialFrom(ctx, "ovh-blog", "ovh-lan", netip.MustParseAddrPort("10.1.0.113:27017"))
		if err != nil && l.kernelFirewall() {
			return // the entrance's firewall dropped it: refused
		}
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = standin.MongoCommand(ctx, c, "admin", standin.Doc{{Key: "ping", Value: int32(1)}})
		c.Close()
		if err == nil {
			t.Fatal("ovh-blog used the mongodb entrance; want refused")
		}
	})

	t.Run("pmg forward on ovh1 from off1 and off2 only", func(t *testing.T) {
		fwd := l.Model().Forward("pmg-smtp")
		target := l.Model().EndpointAddrs(fwd.Listen)[0]
		for _, tc := range []struct {
			from string
			ok   bool
		}{{"off1", true}, {"off2", true}, {"ovh3", false}, {"", false}} {
			c, err := l.DialFrom(ctx, tc.from, "internet", target)
			if err != nil {
				if tc.ok {
					t.Fatalf("from %q: %v", tc.from, err)
				}
				continue
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if got := err == nil && strings.HasPrefix(line, "220 "); got != tc.ok {
				t.Fatalf("from %q: banner %q err %v; want allowed=%v", tc.from, line, err, tc.ok)
			}
		}
	})
}

// target is one thing the failure drill checks: a service a node uses, a
// site hostname for the internet, or a node's internet access (egress).
type target struct {
	client, name, kind string // kind: "service", "site", "egress-ipv4", "egress-ipv6"
}

func (tg target) key() string { return tg.client + " " + tg.name + " " + tg.kind }

// probe says whether tg works now, by connecting and speaking the
// service's protocol.
func probe(ctx context.Context, t *testing.T, l estate, tg target) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	switch tg.kind {
	case "site":
		host := tg.name
		if strings.HasPrefix(host, "*.") {
			host = "world" + host[1:]
		}
		sites := l.Model().SiteForHost(host)
		if len(sites) == 0 {
			return fmt.Errorf("no site for %s", host)
		}
		s := sites[0]
		scheme, port := "http", 80
		for _, li := range s.Listen {
			if li.TLS {
				scheme, port = "https", 443
			}
		}
		if _, err := l.SiteAddr(s.Node, port); err != nil {
			return err
		}
		c := siteClient(t, l, s.Node)
		c.Timeout = 5 * time.Second
		resp, err := c.Get(fmt.Sprintf("%s://%s/", scheme, host))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	case "egress-ipv4", "egress-ipv6":
		// Any public listener that stays up will do: the question is
		// whether the node's packets can leave.
		want := tg.kind == "egress-ipv4"
		for _, li := range l.nodePlan("off1").Listeners {
			if li.Public && li.Addr.Addr().Is4() == want {
				c, err := l.DialFrom(ctx, tg.client, li.Network, li.Addr)
				if err != nil {
					return err
				}
				c.Close()
				return nil
			}
		}
		for _, li := range l.nodePlan("off2").Listeners {
			if li.Public && li.Addr.Addr().Is4() == want {
				c, err := l.DialFrom(ctx, tg.client, li.Network, li.Addr)
				if err != nil {
					return err
				}
				c.Close()
				return nil
			}
		}
		return fmt.Errorf("no public listener to probe %s", tg.kind)
	}
	svc := l.Model().Service(tg.name)
	if svc == nil {
		return fmt.Errorf("unknown service %s", tg.name)
	}
	c, _, err := l.DialService(ctx, tg.client, tg.name)
	if err != nil {
		return err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	switch svc.Protocol {
	case "redis":
		v, err := standin.RedisCommand(ctx, c, "PING")
		if err == nil && v != "PONG" {
			err = fmt.Errorf("PING answered %v", v)
		}
		return err
	case "mongodb":
		_, err := standin.MongoCommand(ctx, c, "admin", standin.Doc{{Key: "ping", Value: int32(1)}})
		return err
	case "postgresql":
		return pgHello(c)
	case "http", "influxdb":
		fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", tg.name)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	default:
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line == "" {
			err = fmt.Errorf("no banner")
		}
		return err
	}
}

// drillTargets lists what the drill checks: each node's uses, each site
// hostname for the internet, and each node's internet access per family.
func drillTargets(m *inventory.Model) []target {
	var out []target
	for _, n := range m.Nodes {
		for _, u := range n.Uses {
			if m.Service(u) != nil {
				out = append(out, target{n.Name, u, "service"})
			}
		}
		for fam, kind := range map[int]string{4: "egress-ipv4", 6: "egress-ipv6"} {
			if _, _, ok := m.SourceFor(n, "internet", fam); ok {
				out = append(out, target{n.Name, "internet", kind})
			}
		}
	}
	for _, s := range m.Sites {
		for _, h := range s.Hosts {
			out = append(out, target{"internet", h, "site"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// TestLabFailureDrill takes ovh1 down and checks, by connecting, that what
// offedge impact predicted is exactly what becomes unreachable, and that
// everything comes back with ovh1.
func TestLabFailureDrill(t *testing.T) {
	l := startOFF(t)
	ctx := context.Background()
	if err := l.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	report, err := topology.Impact(l.m, "ovh1")
	if err != nil {
		t.Fatal(err)
	}
	predicted := map[string]bool{}
	for _, u := range report.Unreachable {
		kind := u.Kind
		if kind == "upstream" {
			continue // a pool member of a site: checked through the site itself
		}
		predicted[target{u.Client, u.Target, kind}.key()] = true
	}
	targets := drillTargets(l.m)
	for _, tg := range targets {
		if err := probe(ctx, t, l, tg); err != nil {
			t.Fatalf("before the drill, %s fails: %v", tg.key(), err)
		}
	}
	if err := l.Down("ovh1"); err != nil {
		t.Fatal(err)
	}
	var lost, kept []string
	for _, tg := range targets {
		if l.IsDown(tg.client) {
			continue // a client that is down itself is not asked
		}
		err := probe(ctx, t, l, tg)
		if (err != nil) != predicted[tg.key()] {
			t.Errorf("%s: impact predicted unreachable=%v, but connecting gives err=%v", tg.key(), predicted[tg.key()], err)
		}
		if err != nil {
			lost = append(lost, tg.key())
		} else {
			kept = append(kept, tg.key())
		}
	}
	for k := range predicted {
		found := false
		for _, tg := range targets {
			found = found || tg.key() == k
		}
		if !found {
			t.Errorf("impact predicted %q, which the drill has no probe for", k)
		}
	}
	t.Logf("with ovh1 down, lost %d: %v; kept %d", len(lost), lost, len(kept))
	if len(lost) == 0 {
		t.Fatal("nothing became unreachable with ovh1 down; the drill checks nothing")
	}
	if err := l.Up(ctx, "ovh1"); err != nil {
		t.Fatal(err)
	}
	// A tunnel entrance whose exit failed refuses new clients at once for
	// a backoff (100 ms doubling up to 5 s, edge/tunnel's muxpool) rather
	// than dialling the exit for each: every use must be back within
	// that bound, not at the first probe (a loaded machine saw the
	// backoff still running then).
	for _, tg := range targets {
		deadline := time.Now().Add(10 * time.Second)
		err := probe(ctx, t, l, tg)
		for err != nil && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			err = probe(ctx, t, l, tg)
		}
		if err != nil {
			t.Errorf("10 s after ovh1 came back, %s still fails: %v", tg.key(), err)
		}
	}
}

// residentMiB reads this process's resident set size.
func residentMiB(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
