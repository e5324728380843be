package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/offedge/offedge/observe"
	"github.com/offedge/offedge/reach"
	"github.com/offedge/offedge/topology"
)

// lossSet is what is lost, as "kind name" lines: "site HOST", "tunnel NAME",
// "forward NAME", "replica NAME", "use CLIENT TARGET KIND" (a node's use or
// egress, Unreachable's kinds), "node NAME".
type lossSet map[string]bool

func (s lossSet) sorted() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// predicted is the whole of topology.Impact's report the lab can measure:
// down nodes, lost sites, tunnels, forwards, stale replicas, and every
// Unreachable but a site's pool member ("upstream": measured through the
// site itself).
func predicted(r *topology.ImpactReport) lossSet {
	s := lossSet{}
	for _, n := range r.DownNodes {
		s["node "+n] = true
	}
	for _, h := range r.LostSites {
		s["site "+h] = true
	}
	for _, n := range r.LostTunnels {
		s["tunnel "+n] = true
	}
	for _, n := range r.LostForwards {
		s["forward "+n] = true
	}
	for _, n := range r.StaleReplicas {
		s["replica "+n] = true
	}
	for _, u := range r.Unreachable {
		if u.Client == "internet" && u.Kind == "site" {
			s["site "+u.Target] = true // a lost site, as LostSites says
			continue
		}
		if u.Kind != "upstream" {
			s[fmt.Sprintf("use %s %s %s", u.Client, u.Target, u.Kind)] = true
		}
	}
	return s
}

// probeBudget bounds one measurement (a connection and a protocol hello);
// measureConcurrency bounds how many run at once.
const (
	probeBudget        = 5 * time.Second
	freshBudget        = 3*probeBudget + time.Second // a probe interval and a probe timeout, with slack
	measureConcurrency = 16
)

// measure probes every declared path of the estate from the namespaces and
// returns what is lost: each site from the visitor, each node's uses and
// its egress per family (nodes the lab took down are not asked), each
// tunnel by its entrance's own probe (fresh: started after since), each
// forward from every node, each replica by its ends reaching each other's
// sshd. down are the nodes the lab took down. Every probe is bounded by
// probeBudget; the whole by the number of paths.
func measure(ctx context.Context, t *testing.T, l *NetnsLab, down map[string]bool, since time.Time, clients forwardClients) lossSet {
	m := l.Model()
	lost := lossSet{}
	var mu sync.Mutex
	sem := make(chan struct{}, measureConcurrency)
	var wg sync.WaitGroup
	check := func(key string, fn func(ctx context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(ctx, probeBudget)
			defer cancel()
			if err := fn(ctx); err != nil {
				mu.Lock()
				lost[key] = true
				mu.Unlock()
			}
		}()
	}
	for n := range down {
		lost["node "+n] = true
	}
	for _, s := range m.Sites {
		for _, h := range s.Hosts {
			check("site "+h, func(ctx context.Context) error {
				return probe(ctx, t, l, target{"internet", h, "site"})
			})
		}
	}
	for _, n := range m.Nodes {
		if down[n.Name] {
			continue
		}
		for _, u := range n.Uses {
			if m.Service(u) == nil {
				continue
			}
			check(fmt.Sprintf("use %s %s service", n.Name, u), func(ctx context.Context) error {
				return probe(ctx, t, l, target{n.Name, u, "service"})
			})
		}
		for _, fam := range []int{4, 6} {
			if _, _, ok := m.SourceFor(n, "internet", fam); ok {
				check(fmt.Sprintf("use %s internet egress-ipv%d", n.Name, fam), func(ctx context.Context) error {
					return l.Egress(ctx, n.Name, fam)
				})
			}
		}
	}
	probes := observe.Generate(m)
	for _, tn := range m.Tunnels {
		check("tunnel "+tn.Name, func(context.Context) error {
			// Its own budget: the entrance's next run, and that run's own
			// timeout when the tunnel is lost.
			ctx, cancel := context.WithTimeout(ctx, freshBudget)
			defer cancel()
			return freshProbe(ctx, l, tn.Entrance.Node, "tunnel/"+tn.Name, since)
		})
	}
	for _, p := range probes {
		if p.Kind != observe.KindForward {
			continue
		}
		check("forward "+p.Object, func(ctx context.Context) error {
			return forwardCarries(ctx, t, l, p, down, clients)
		})
	}
	for _, r := range m.Replicas {
		if r.Source == nil || r.Target == nil {
			continue
		}
		check("replica "+r.Name, func(ctx context.Context) error {
			// Whichever end connects (syncoid pulls, Proxmox pushes),
			// as the reachability engine's Linked does.
			if err := copies(ctx, l, r.Target.Node, r.Source.Node); err != nil {
				return copies(ctx, l, r.Source.Node, r.Target.Node)
			}
			return nil
		})
	}
	wg.Wait()
	return lost
}

// freshProbe waits for the result of probe name on node's own offedge run
// (GET /probes on its admin endpoint) from a run started after since, and
// says whether it succeeded. A node whose admin endpoint does not answer
// runs nothing: its probe is lost.
func freshProbe(ctx context.Context, l *NetnsLab, node, name string, since time.Time) error {
	for {
		body, err := l.Admin(ctx, node, "/probes")
		if err != nil {
			return err
		}
		var results []observe.Result
		if err := json.Unmarshal(body, &results); err != nil {
			return err
		}
		i := slices.IndexFunc(results, func(r observe.Result) bool { return r.Probe.Name == name })
		if i < 0 {
			return fmt.Errorf("%s runs no probe %s", node, name)
		}
		if r := results[i]; r.At.After(since) {
			if !r.Success {
				return fmt.Errorf("%s: %s %s", name, r.Reason, r.Detail)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s on %s: no run since %s: %w", name, node, since.Format(time.StampMilli), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// forwardClients are, per forward, the nodes that got through it before
// any drill.
type forwardClients map[string][]string

// throughForward lists the nodes (not down) that get through the forward
// of probe p: its target's protocol hello, from every node at once.
func throughForward(ctx context.Context, l *NetnsLab, p observe.Probe, down map[string]bool) []string {
	type res struct {
		node string
		ok   bool
	}
	ch := make(chan res)
	n := 0
	for _, node := range l.Model().Nodes {
		if down[node.Name] {
			continue
		}
		n++
		go func() {
			d := observe.DialerFunc(func(ctx context.Context, p *observe.Probe) (net.Conn, error) {
				return l.Dial(ctx, node.Name, p.Addr)
			})
			ch <- res{node.Name, observe.Run(ctx, p, d, observe.RunOptions{Timeout: 2 * dialTimeout}).Success}
		}()
	}
	var out []string
	for range n {
		if r := <-ch; r.ok {
			out = append(out, r.node)
		}
	}
	sort.Strings(out)
	return out
}

// forwardCarries says whether the forward of probe p carries: a node gets
// through it; or, when every node that got through before is down, the
// forward's own node reaches its target (what impact's ForwardCarries
// asks: nobody is left to use it, but it works).
func forwardCarries(ctx context.Context, t *testing.T, l *NetnsLab, p observe.Probe, down map[string]bool, clients forwardClients) error {
	if len(throughForward(ctx, l, p, down)) > 0 {
		return nil
	}
	for _, c := range clients[p.Object] {
		if !down[c] {
			return fmt.Errorf("forward %s: %s got through before and does not now", p.Object, c)
		}
	}
	fw := l.Model().Forward(p.Object)
	if down[fw.Node] {
		return fmt.Errorf("forward %s: its node %s is down", fw.Name, fw.Node)
	}
	return probe(ctx, t, l, target{fw.Node, fw.Service, "service"})
}

// copies says whether from can copy a replica from or to peer: from's node
// process (which stands for syncoid or pvesr there) runs, and from reaches
// peer's sshd.
func copies(ctx context.Context, l *NetnsLab, from, peer string) error {
	if _, err := l.Admin(ctx, from, "/status"); err != nil {
		return fmt.Errorf("%s runs nothing: %w", from, err)
	}
	return sshReach(ctx, l, from, peer)
}

// sshReach says whether from reaches one of to's addresses on port 22
// (the stand-in sshd of its node process answers).
func sshReach(ctx context.Context, l *NetnsLab, from, to string) error {
	var errs []string
	for _, a := range l.Model().Node(to).Addresses {
		got, err := l.greeting(ctx, from, netip.AddrPortFrom(a.IP, 22))
		if err == nil && strings.HasPrefix(got, SSHBanner) {
			return nil
		}
		errs = append(errs, fmt.Sprintf("%s: %q %v", a.IP, got, err))
	}
	return fmt.Errorf("%s cannot reach %s's sshd: %s", from, to, strings.Join(errs, "; "))
}

// drillCase takes part of the estate down the way the lab can, and names
// the nodes topology.Impact is asked about.
type drillCase struct {
	name     string
	impact   []string // the nodes Impact is asked about
	down, up func(l *NetnsLab) error
}

// linksDown takes the links of nodes and of their guests down.
func linksDown(nodes ...string) (down, up func(l *NetnsLab) error) {
	all := func(l *NetnsLab) []string {
		var out []string
		for _, n := range nodes {
			out = append(out, n)
			for _, g := range l.Model().GuestsOf(n) {
				out = append(out, g.Name)
			}
		}
		return out
	}
	down = func(l *NetnsLab) error {
		for _, n := range all(l) {
			if err := l.Down(n); err != nil {
				return err
			}
		}
		return nil
	}
	up = func(l *NetnsLab) error {
		for _, n := range all(l) {
			if err := l.Up(n); err != nil {
				return err
			}
		}
		return nil
	}
	return down, up
}

// TestNetnsLinkDownMatchesImpact takes parts of the estate down in the
// namespace lab — a server's links with its guests' (ovh1), a node's
// processes (off1's offedge run and applications: its kernel still
// answers), a provider's links (Free: off1 and off2) — and compares the
// whole of offedge impact's report with what probing every declared path
// measures, listing every disagreement; then everything must come back.
func TestNetnsLinkDownMatchesImpact(t *testing.T) {
	// In parallel with the other namespace labs (each its own prefix),
	// after the loopback tests: their waits overlap.
	t.Parallel()
	l, _ := startNetnsRuntime(t, "oei")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := l.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	ovh1Down, ovh1Up := linksDown("ovh1")
	freeDown, freeUp := linksDown("off1", "off2")
	cases := []drillCase{
		{"ovh1 down (its links and its guests')", []string{"ovh1"}, ovh1Down, ovh1Up},
		{"off1 down (its processes stopped)", []string{"off1"},
			func(l *NetnsLab) error { return l.Stop("off1") },
			func(l *NetnsLab) error { return l.Start(ctx, "off1") }},
		{"Free's links down (off1 and off2)", []string{"off1", "off2"}, freeDown, freeUp},
	}
	// Before anything goes down, every path works but the replicas whose
	// ends the reachability engine finds no ssh path between (impact only
	// reports what worked before): the comparison below would otherwise
	// mistake a broken lab for a predicted loss.
	e := reach.New(l.Model())
	unlinked := lossSet{}
	for _, r := range l.Model().Replicas {
		if r.Source != nil && r.Target != nil && !e.Linked(l.Model().Node(r.Source.Node), l.Model().Node(r.Target.Node)) {
			unlinked["replica "+r.Name] = true
		}
	}
	clients := forwardClients{}
	for _, p := range observe.Generate(l.Model()) {
		if p.Kind == observe.KindForward {
			clients[p.Object] = throughForward(ctx, l, p, nil)
			t.Logf("forward %s: %v get through", p.Object, clients[p.Object])
		}
	}
	baseline := settle(ctx, t, l, unlinked, clients)
	if !slices.Equal(baseline.sorted(), unlinked.sorted()) {
		t.Fatalf("before any drill, the lab measures lost %v; the reachability engine says only these replicas have no path: %v", baseline.sorted(), unlinked.sorted())
	}
	t.Logf("replicas with no ssh path between their ends, as the reachability engine says (impact never reports them): %v", unlinked.sorted())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			report, err := topology.Impact(l.Model(), c.impact...)
			if err != nil {
				t.Fatal(err)
			}
			want := predicted(report)
			if err := c.down(l); err != nil {
				t.Fatal(err)
			}
			// After the takedown: a probe that began before it finished
			// could still have got through.
			since := time.Now()
			got := measure(ctx, t, l, takenDown(l), since, clients)
			// A path that works once is kept: on a loaded machine a probe
			// can miss its budget, a lost path never answers. Measure again
			// (at most lostRetries times) while the lab finds a loss impact
			// does not predict; a loss holds only if every round finds it.
			for range lostRetries {
				if !slices.ContainsFunc(got.sorted(), func(k string) bool { return !want[k] && !baseline[k] }) {
					break
				}
				again := measure(ctx, t, l, takenDown(l), since, clients)
				for k := range got {
					if !again[k] {
						delete(got, k)
					}
				}
			}
			var disagree []string
			for _, k := range want.sorted() {
				if !got[k] {
					disagree = append(disagree, "impact says lost, the lab measures it working: "+k)
				}
			}
			for _, k := range got.sorted() {
				if !want[k] && !baseline[k] {
					disagree = append(disagree, "the lab measures it lost, impact does not say so: "+k)
				}
			}
			if len(disagree) > 0 {
				t.Errorf("%d disagreements between offedge impact %s and the lab:\n  %s", len(disagree), strings.Join(c.impact, " "), strings.Join(disagree, "\n  "))
			}
			t.Logf("impact and the lab agree on %d losses", len(want))
			if len(want) <= len(report.DownNodes) {
				t.Errorf("impact predicts nothing lost beyond the down nodes; the case checks nothing")
			}
			if err := c.up(l); err != nil {
				t.Fatal(err)
			}
			if lost := settle(ctx, t, l, baseline, clients); !slices.Equal(lost.sorted(), baseline.sorted()) {
				t.Errorf("after coming back, lost %v; before the drill only %v", lost.sorted(), baseline.sorted())
			}
		})
	}
}

// takenDown are the nodes the lab has taken down now.
func takenDown(l *NetnsLab) map[string]bool {
	out := map[string]bool{}
	for _, n := range l.Model().Nodes {
		if l.IsDown(n.Name) {
			out[n.Name] = true
		}
	}
	return out
}

// settleRounds bounds how many times settle measures; lostRetries how
// many times a loss impact does not predict is measured again.
const (
	settleRounds = 10
	lostRetries  = 2
)

// settle measures until what is lost is want (tunnels reconnect, pools see
// their members again), at most settleRounds times, and returns what the
// last round lost.
func settle(ctx context.Context, t *testing.T, l *NetnsLab, want lossSet, clients forwardClients) lossSet {
	var lost lossSet
	for range settleRounds {
		lost = measure(ctx, t, l, takenDown(l), time.Now(), clients)
		if slices.Equal(lost.sorted(), want.sorted()) || ctx.Err() != nil {
			break
		}
	}
	return lost
}
