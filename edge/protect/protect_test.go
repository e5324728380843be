package protect

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func addr(s string) netip.Addr       { return netip.MustParseAddr(s) }
func pfx(s string) netip.Prefix      { return netip.MustParsePrefix(s) }

func zone(t *testing.T, c ZoneConfig) *Zone {
	t.Helper()
	if c.Status == 0 {
		c.Status = 429
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = 100
	}
	if c.Key == "" {
		c.Key = KeyAddress
	}
	c.MaxBurst = max(c.MaxBurst, c.Burst) // as the plan resolves it
	z, err := NewZone(c)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// The reference's zone "off": rate=240r/m burst=120 nodelay. A client may
// make 121 requests at once; the 122nd is refused; after 250 ms (one
// request at 4/s) one more passes.
func TestZoneNoDelayBurst(t *testing.T) {
	z := zone(t, ZoneConfig{Rate: 4, Burst: 120, NoDelay: true})
	k := ClientKey(addr("203.0.113.7"))
	for i := range 121 {
		if v := z.Take(k, t0); v.Limited || v.Delay != 0 {
			t.Fatalf("request %d: %+v, want passed at once", i+1, v)
		}
	}
	v := z.Take(k, t0)
	if !v.Limited || !v.Refuse || v.RetryAfter <= 0 {
		t.Fatalf("request 122: %+v, want refused with a retry-after", v)
	}
	if v := z.Take(k, t0.Add(250*time.Millisecond)); v.Limited {
		t.Fatalf("after 250ms: %+v, want passed", v)
	}
	if v := z.Take(ClientKey(addr("203.0.113.8")), t0); v.Limited {
		t.Fatalf("another client: %+v, want its own bucket", v)
	}
	st := z.Stats()
	if st.Passed != 123 || st.Rejected != 1 || st.Keys != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// Without nodelay, excess requests wait their turn (at most burst of them).
func TestZoneDelay(t *testing.T) {
	z := zone(t, ZoneConfig{Rate: 10, Burst: 2})
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond}
	for i, w := range want {
		if v := z.Take("k", t0); v.Limited || v.Delay != w {
			t.Fatalf("request %d: %+v, want delay %v", i+1, v, w)
		}
	}
	if v := z.Take("k", t0); !v.Refuse {
		t.Fatalf("request 4: %+v, want refused (burst of 2 waiting)", v)
	}
	if st := z.Stats(); st.Delayed != 2 || st.Rejected != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Dry-run counts what it would refuse and refuses nothing.
func TestZoneDryRun(t *testing.T) {
	z := zone(t, ZoneConfig{Rate: 1, Burst: 1, NoDelay: true, DryRun: true})
	for i := range 5 {
		v := z.Take("k", t0)
		if v.Refuse || v.Delay != 0 {
			t.Fatalf("request %d: %+v: dry-run refused or delayed", i+1, v)
		}
		if want := i >= 2; v.Limited != want {
			t.Fatalf("request %d: limited %v, want %v", i+1, v.Limited, want)
		}
	}
	if st := z.Stats(); st.DryRun != 3 || st.Rejected != 0 || st.Passed != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestZoneBoundedKeys(t *testing.T) {
	z := zone(t, ZoneConfig{Rate: 1, Burst: 0, NoDelay: true, MaxKeys: 3})
	for i := range 10 {
		z.Take(string(rune('a'+i)), t0)
	}
	if st := z.Stats(); st.Keys != 3 || st.Evicted != 7 {
		t.Fatalf("stats %+v", st)
	}
	if v := z.Take("", t0); v.Limited {
		t.Fatal("an empty key was limited")
	}
}

func TestZoneConfigErrors(t *testing.T) {
	for _, c := range []ZoneConfig{
		{Rate: 0, MaxKeys: 1, Status: 429, Key: KeyAddress},
		{Rate: 1, MaxKeys: 0, Status: 429, Key: KeyAddress},
		{Rate: 1, MaxKeys: 1, Status: 200, Key: KeyAddress},
		{Rate: 1, MaxKeys: 1, Status: 429, Key: KeyClass},
		{Rate: 1, MaxKeys: 1, Status: 429, Key: "cookie"},
		{Rate: 1, MaxKeys: 1, Status: 429, Key: KeyAddress, Burst: -1},
	} {
		if _, err := NewZone(c); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
}

func TestClientKeyIPv6By64(t *testing.T) {
	a, b := ClientKey(addr("2001:db8:1:2::1")), ClientKey(addr("2001:db8:1:2:ffff::9"))
	if a != b || len(a) != 8 {
		t.Fatalf("same /64 gave %x and %x", a, b)
	}
	if ClientKey(addr("2001:db8:1:3::1")) == a {
		t.Fatal("another /64 gave the same key")
	}
	if ClientKey(addr("::ffff:192.0.2.1")) != ClientKey(addr("192.0.2.1")) {
		t.Fatal("a mapped IPv4 address is not its IPv4 address")
	}
	if ClientKey(netip.Addr{}) != "" {
		t.Fatal("the zero address has a key")
	}
}

// The reference maps image requests by size class (static-off: "~*\.full\.jpg"
// and "~*/\d+\.jpg" are big, the rest small).
func TestMapClasses(t *testing.T) {
	m, err := NewMap(MapConfig{Source: SourcePath, Default: "small", Rules: []MapRule{
		{Regex: `(?i)\.full\.jpg`, Class: "big"},
		{Regex: `(?i)/\d+\.jpg`, Class: "big"},
		{Exact: "/robots.txt", Class: ""},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/images/products/301/762/1.jpg":               "big",
		"/images/products/301/762/front_fr.4.FULL.JPG": "big",
		"/images/products/301/762/front_fr.4.400.jpg":  "small",
		"/robots.txt": "",
	} {
		if got := m.Class(&Request{Path: path}); got != want {
			t.Errorf("%s: class %q, want %q", path, got, want)
		}
	}
	h, err := NewMap(MapConfig{Source: "header:X-Api-Client", Rules: []MapRule{{Exact: "robotoff", Class: "api"}}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(string) string { return "robotoff" }
	if got := h.Class(&Request{Header: get}); got != "api" {
		t.Fatalf("header map: %q", got)
	}
	if _, err := NewMap(MapConfig{Source: "cookie"}); err == nil {
		t.Fatal("an unknown source was accepted")
	}
	if _, err := NewMap(MapConfig{Source: SourcePath, Rules: []MapRule{{Regex: "(", Class: "x"}}}); err == nil {
		t.Fatal("a bad regex was accepted")
	}
}

// The reference sends three user agents to the stop-crawling page, and
// refuses a referer with 403.
func TestBotRules(t *testing.T) {
	crawl, err := NewBotRule(BotRuleConfig{Name: "stop-crawling", Action: ActionPage, Page: "stop",
		UserAgent: []Pattern{{Exact: "-"}, {Exact: "Mozilla/5.0 (compatible)"}, {Exact: "python-requests/2.32.2"}}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := NewBotRule(BotRuleConfig{Name: "jobothoniel", Action: ActionDeny, Referer: []Pattern{{Regex: `(?i)jobothoniel\.com`}}})
	if err != nil {
		t.Fatal(err)
	}
	net, err := NewBotRule(BotRuleConfig{Name: "net", Action: ActionClose, Addr: []netip.Prefix{pfx("198.51.100.0/24")}, Path: []Pattern{{Regex: "^/cgi-bin/"}}})
	if err != nil {
		t.Fatal(err)
	}
	rules := []*BotRule{crawl, ref, net}
	for _, c := range []struct {
		r    Request
		want *BotRule
	}{
		{Request{UserAgent: ""}, crawl},
		{Request{UserAgent: "python-requests/2.32.2"}, crawl},
		{Request{UserAgent: "python-requests/2.32.3"}, nil},
		{Request{UserAgent: "Mozilla/5.0 (compatible) x"}, nil},
		{Request{UserAgent: "curl", Referer: "https://JOBOTHONIEL.com/x"}, ref},
		{Request{UserAgent: "curl", Addr: addr("198.51.100.9"), Path: "/cgi-bin/x"}, net},
		{Request{UserAgent: "curl", Addr: addr("198.51.100.9"), Path: "/"}, nil},
		{Request{UserAgent: "curl", Addr: addr("203.0.113.1"), Path: "/cgi-bin/x"}, nil},
	} {
		if got := FirstMatch(rules, &c.r); got != c.want {
			t.Errorf("%+v: matched %v, want %v", c.r, got, c.want)
		}
	}
	if _, err := NewBotRule(BotRuleConfig{Name: "x", Action: ActionDeny}); err == nil {
		t.Fatal("a rule matching everything was accepted")
	}
	if _, err := NewBotRule(BotRuleConfig{Name: "x", Action: "drop", Path: []Pattern{{Exact: "/"}}}); err == nil {
		t.Fatal("an unknown action was accepted")
	}
}

// A tarpit holds at most Max requests; the others are answered at once.
func TestTarpitBounded(t *testing.T) {
	tp, err := NewTarpit(TarpitConfig{Max: 2, Hold: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool, 2)
	for range 2 {
		go func() { done <- tp.Hold(ctx) }()
	}
	for tp.Holding() < 2 {
		time.Sleep(time.Millisecond) // wait on the condition: both held
	}
	if tp.Hold(context.Background()) {
		t.Fatal("a third request was held past max")
	}
	cancel()
	for range 2 {
		if !<-done {
			t.Fatal("a held request reported not held")
		}
	}
	if tp.Held() != 2 || tp.Overrun() != 1 || tp.Holding() != 0 {
		t.Fatalf("held %d overrun %d holding %d", tp.Held(), tp.Overrun(), tp.Holding())
	}
}

func banList(t *testing.T, c *clock, allow ...string) *BanList {
	t.Helper()
	var al []netip.Prefix
	for _, a := range allow {
		al = append(al, pfx(a))
	}
	l, err := NewBanList(BanListConfig{MaxBans: 3, Allow: al}, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestBanList(t *testing.T) {
	c := &clock{t0}
	l := banList(t, c, "203.0.113.0/28")
	var changes int
	l.OnChange(func([]Ban) { changes++ })
	if _, err := l.Add(pfx("192.0.2.7/32"), time.Minute, "manual"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Add(pfx("2001:db8:5::/48"), 0, "manual"); err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]bool{"192.0.2.7": true, "::ffff:192.0.2.7": true, "192.0.2.8": false, "2001:db8:5:1::3": true, "2001:db8:6::1": false} {
		if _, got := l.Banned(addr(a)); got != want {
			t.Errorf("%s banned %v, want %v", a, got, want)
		}
	}
	if _, err := l.Add(pfx("203.0.113.0/24"), 0, "manual"); !errors.Is(err, ErrAllowListed) {
		t.Fatalf("a range over the allow list: %v", err)
	}
	c.add(time.Minute)
	if _, ok := l.Banned(addr("192.0.2.7")); ok {
		t.Fatal("an expired ban still applies")
	}
	if got := l.List(); len(got) != 1 || got[0].Prefix != pfx("2001:db8:5::/48") {
		t.Fatalf("list after expiry: %+v", got)
	}
	if !l.Del(pfx("2001:db8:5::/48")) || l.Del(pfx("2001:db8:5::/48")) {
		t.Fatal("del")
	}
	if changes != 4 { // two adds, the expiry seen by List, the del
		t.Fatalf("%d change notifications, want 4", changes)
	}
	if rule, ok := l.Refuse(addr("2001:db8:5::1")); ok {
		t.Fatalf("refused after del by %q", rule)
	}
}

// A jail bans a client after max_events in the window (fail2ban maxretry
// and findtime), by /64 for IPv6, never an allow-listed one, and only for
// the events it counts.
func TestJail(t *testing.T) {
	c := &clock{t0}
	l := banList(t, c, "203.0.113.0/28")
	j, err := NewJail(JailConfig{Name: "api-abuse", Events: []string{EventLimit}, MaxEvents: 3, Window: 10 * time.Second, BanTime: time.Hour, MaxClients: 10}, "off", l, c.now)
	if err != nil {
		t.Fatal(err)
	}
	a := addr("2001:db8:1:2::1")
	j.Observe(a, EventLimit)
	c.add(11 * time.Second) // the first event leaves the window
	j.Observe(a, EventLimit)
	j.Observe(addr("2001:db8:1:2::99"), Event4xx) // not counted by this jail
	if j.Observe(a, EventLimit) {
		t.Fatal("banned after 2 events in the window")
	}
	if !j.Observe(addr("2001:db8:1:2::2"), EventLimit) { // same /64
		t.Fatal("not banned after 3 events in the window")
	}
	b, ok := l.Banned(addr("2001:db8:1:2:abcd::1"))
	if !ok || b.Prefix != pfx("2001:db8:1:2::/64") || b.Reason != "jail api-abuse site off" || !b.Until.Equal(c.t.Add(time.Hour)) {
		t.Fatalf("ban %+v %v", b, ok)
	}
	for range 10 {
		if j.Observe(addr("203.0.113.5"), EventLimit) {
			t.Fatal("an allow-listed client was banned")
		}
	}
	// The list is full (max 3): automatic bans stop there, counted.
	for i := range 5 {
		for range 3 {
			j.Observe(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), EventLimit)
		}
	}
	if st := l.Stats(); st.Bans != 3 || st.Full != 3 {
		t.Fatalf("stats %+v", st)
	}
	if j.Banned() != 3 {
		t.Fatalf("jail banned %d", j.Banned())
	}
}

// Two routes count against one zone with their own bursts (nginx: one
// limit_req_zone, limit_req zone=api burst=10 nodelay in one location,
// burst=2 nodelay in another): one state per client, each route judging
// the requests ahead against its own burst.
func TestZoneBurstPerRoute(t *testing.T) {
	z := zone(t, ZoneConfig{Rate: 1, Burst: 10, NoDelay: true})
	k := ClientKey(addr("203.0.113.9"))
	t0 := time.Unix(1_700_000_000, 0)
	// The narrow route admits its burst of 2 plus the first request.
	for i := range 3 {
		if v := z.TakeBurst(k, t0, 2, true); v.Limited || v.Delay != 0 {
			t.Fatalf("narrow request %d: %+v", i+1, v)
		}
	}
	if v := z.TakeBurst(k, t0, 2, true); !v.Refuse || v.RetryAfter <= 0 || v.RetryAfter > time.Second {
		t.Fatalf("narrow request 4: %+v; want refused, retry within a second", v)
	}
	// The wide route still has room: 3 requests are ahead, its burst is 10.
	for i := range 8 {
		if v := z.TakeBurst(k, t0, 10, true); v.Limited {
			t.Fatalf("wide request %d: %+v", i+1, v)
		}
	}
	if v := z.TakeBurst(k, t0, 10, true); !v.Refuse {
		t.Fatalf("wide request 9 (11 ahead): %+v", v)
	}
	// Without nodelay a route's excess waits: 10 ahead of it at 1 r/s.
	z2 := zone(t, ZoneConfig{Rate: 1, Burst: 10, NoDelay: true})
	z2.TakeBurst("k", t0, 10, true)
	for range 9 {
		z2.TakeBurst("k", t0, 10, true)
	}
	if v := z2.TakeBurst("k", t0, 10, false); v.Limited || v.Delay != 10*time.Second {
		t.Fatalf("delayed request: %+v; want a 10 s wait", v)
	}
	// A burst beyond the zone's state is held to it.
	z3 := zone(t, ZoneConfig{Rate: 1, Burst: 1, NoDelay: true})
	for range 2 {
		z3.TakeBurst("k", t0, 50, true)
	}
	if v := z3.TakeBurst("k", t0, 50, true); !v.Refuse {
		t.Fatalf("burst above max_burst: %+v", v)
	}
}
