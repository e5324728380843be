package lab

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/offedge/offedge/examples/openfoodfacts"
	"github.com/offedge/offedge/internal/netns"
	"github.com/offedge/offedge/inventory"
)

// dropWait is how long a connection attempt a firewall drops is given: a
// drop never answers, so any answer within it is a failure of the test's
// claim, and an accepted connection answers in microseconds.
const dropWait = 1500 * time.Millisecond

func startNetnsLab(t *testing.T) (*NetnsLab, *inventory.Model) {
	t.Helper()
	requireNetns(t)
	m, err := inventory.Load(openfoodfacts.FS(), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l, err := StartNetns(context.Background(), m, NetnsOptions{Prefix: testPrefix(t, "oelt"), Greeters: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l, m
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestNetnsKernelPaths proves in real namespaces what the loopback lab
// cannot: the firewall, NAT and DNAT as the kernel applies them.
func TestNetnsKernelPaths(t *testing.T) {
	// In parallel with the other namespace labs (each its own prefix),
	// after the loopback tests: their waits overlap.
	t.Parallel()
	hostLinks := links(t)
	l, m := startNetnsLab(t)

	t.Run("no link to the machine's namespace", func(t *testing.T) {
		if got := links(t); !slices.Equal(got, hostLinks) {
			t.Fatalf("the lab changed this namespace's links: %v, was %v", got, hostLinks)
		}
		for name, ns := range l.nodes {
			out, err := ns.Run("ip", "-o", "link", "show")
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Fields(line)
				dev := strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")
				if dev != "lo" && !slices.Contains(l.links[name], dev) {
					t.Errorf("%s has interface %s the lab did not make", name, dev)
				}
			}
		}
	})

	t.Run("addresses exactly the inventory's", func(t *testing.T) {
		for _, n := range m.Nodes {
			out, err := l.nodes[n.Name].Run("ip", "-o", "addr", "show", "scope", "global")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if f := strings.Fields(line); len(f) > 3 {
					got = append(got, strings.SplitN(f[3], "/", 2)[0])
				}
			}
			var want []string
			for _, a := range n.Addresses {
				want = append(want, a.IP.String())
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s holds %v, inventory says %v", n.Name, got, want)
			}
		}
	})

	t.Run("off2's redis and mongodb: ovh1's NAT address through the tunnel exits, not docker-prod directly, not ovh3", func(t *testing.T) {
		for _, port := range []string{"6379", "27017"} {
			exit := ap("213.36.253.208:" + port)
			got, err := l.Greeting("ovh-stunnel-client", exit, dropWait)
			if err != nil || !strings.HasSuffix(got, "from 146.59.148.140") {
				t.Fatalf("ovh-stunnel-client -> %s: %q %v; want the exit seeing ovh1's NAT address", exit, got, err)
			}
			expectDropped(t, l, exit, "docker-prod", "ovh3")
			// The database itself, on free-lan: off1 yes, nobody else can.
			db := ap("10.0.0.2:" + port)
			if got, err := l.Greeting("off1", db, dropWait); err != nil || !strings.HasSuffix(got, "from 10.0.0.1") {
				t.Errorf("off1 -> %s: %q %v", db, got, err)
			}
			if got, err := l.Greeting("docker-prod", db, dropWait); err == nil && !strings.HasPrefix(got, "off2") {
				t.Errorf("docker-prod -> %s reached %q", db, got)
			} else if err == nil {
				t.Errorf("docker-prod reached off2's %s directly: %q", db, got)
			}
		}
		// IPv6: Moji's entrance reaches the IPv6 exits, by its own address.
		got, err := l.Greeting("moji-stunnel-client", ap("[2a01:e0d:1:c:58bf:fad0::1]:27017"), dropWait)
		if err != nil || !strings.HasSuffix(got, "from 2a06:c484:5::101") {
			t.Errorf("moji-stunnel-client -> off2 over IPv6: %q %v", got, err)
		}
		if got, err := l.Greeting("moji-docker-prod", ap("[2a01:e0d:1:c:58bf:fad0::1]:27017"), dropWait); err == nil {
			t.Errorf("moji-docker-prod reached the IPv6 exit directly: %q", got)
		}
	})

	t.Run("PMG DNAT admits off1 and off2 only, with their own addresses", func(t *testing.T) {
		pmg := ap("146.59.148.140:26")
		for from, want := range map[string]string{"off1": "213.36.253.206", "off2": "213.36.253.208"} {
			got, err := l.Greeting(from, pmg, dropWait)
			if err != nil || got != "ovh-pmg pmg-smtp from "+want {
				t.Errorf("%s -> %s: %q %v; want PMG seeing %s", from, pmg, got, err, want)
			}
		}
		expectDropped(t, l, pmg, "ovh3", "ovh-proxy", "osm45")
	})

	t.Run("a guest behind ovh1 reaches the internet through its masquerade", func(t *testing.T) {
		got, err := l.Greeting("ovh-blog", ap("213.36.253.206:443"), dropWait)
		if err != nil || !strings.HasSuffix(got, "from 146.59.148.140") {
			t.Fatalf("ovh-blog -> off1:443: %q %v; want off1 seeing ovh1's address", got, err)
		}
		got, err = l.Greeting("docker-prod", ap("213.36.253.206:443"), dropWait)
		if err != nil || !strings.HasSuffix(got, "from 51.210.154.203") {
			t.Fatalf("docker-prod -> off1:443: %q %v; want off1 seeing ovh2's address (its own gateway)", got, err)
		}
	})

	t.Run("ovh1 down: egress as offedge impact predicts", func(t *testing.T) {
		down := map[string]bool{"ovh1": true}
		for _, g := range m.GuestsOf("ovh1") {
			down[g.Name] = true
		}
		for n := range down {
			if err := l.Down(n); err != nil {
				t.Fatal(err)
			}
		}
		defer func() {
			for n := range down {
				if err := l.Up(n); err != nil {
					t.Error(err)
				}
			}
		}()
		live := m.Live(func(n *inventory.Node) bool { return down[n.Name] })
		for _, n := range m.NodesOn("ovh-lan") {
			if down[n.Name] {
				continue
			}
			_, _, predicted := live.SourceFor(n, "internet", 4)
			_, err := l.Greeting(n.Name, ap("213.36.253.206:443"), dropWait)
			if got := err == nil; got != predicted {
				t.Errorf("%s egress with ovh1 down: reached=%v, impact predicts %v (%v)", n.Name, got, predicted, err)
			}
		}
		if _, err := l.Greeting("off1", ap("146.59.148.140:26"), dropWait); err == nil {
			t.Error("PMG forward answered with ovh1 down")
		}
	})
}

// expectDropped requires that no node of from gets an answer from addr;
// the attempts run at once, since each waits dropWait for nothing.
func expectDropped(t *testing.T, l *NetnsLab, addr netip.AddrPort, from ...string) {
	t.Helper()
	type res struct {
		from, got string
		err       error
	}
	ch := make(chan res, len(from))
	for _, f := range from {
		go func() {
			got, err := l.Greeting(f, addr, dropWait)
			ch <- res{f, got, err}
		}()
	}
	for range from {
		if r := <-ch; r.err == nil {
			t.Errorf("%s -> %s answered %q; want dropped", r.from, addr, r.got)
		}
	}
}

// links lists this namespace's interfaces.
func links(t *testing.T) []string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range ifs {
		out = append(out, i.Name)
	}
	slices.Sort(out)
	return out
}

// TestNetnsStaleCleanup: namespaces a killed lab left behind are removed
// at the next start.
func TestNetnsStaleCleanup(t *testing.T) {
	requireNetns(t)
	prefix := testPrefix(t, "oelts")
	left, err := netns.Create(prefix + "off1")
	if err != nil {
		t.Fatal(err)
	}
	_ = left
	if err := CleanStale(prefix); err != nil {
		t.Fatal(err)
	}
	if names, _ := netns.List(prefix); len(names) != 0 {
		t.Fatalf("left behind: %v", names)
	}
}
