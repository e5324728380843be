package protect

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestBanStateRoundTripAndRestore(t *testing.T) {
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l, err := NewBanList(BanListConfig{MaxBans: 10}, clock)
	if err != nil {
		t.Fatal(err)
	}
	l.Add(netip.MustParsePrefix("192.0.2.7/32"), time.Hour, "manual: scraping")
	l.Add(netip.MustParsePrefix("2001:db8:1:2::/64"), 0, "jail abuse site www")
	l.Add(netip.MustParsePrefix("198.51.100.9/32"), time.Minute, "manual")
	data := EncodeBans(l.List())

	bans, err := DecodeBans(data, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Two minutes later, with 198.51.100.0/24 now on the allow list and
	// room for two bans only: the one-minute ban ended, the allow-listed
	// one goes; the others come back with their reason and end.
	now = now.Add(2 * time.Minute)
	r, _ := NewBanList(BanListConfig{MaxBans: 2, Allow: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}, clock)
	kept, dropped := r.Restore(bans)
	if kept != 2 || dropped != 1 {
		t.Fatalf("restored %d, dropped %d; want 2 and 1", kept, dropped)
	}
	b, ok := r.Banned(netip.MustParseAddr("192.0.2.7"))
	if !ok || b.Reason != "manual: scraping" || !b.Until.Equal(now.Add(-2*time.Minute).Add(time.Hour)) {
		t.Errorf("192.0.2.7: %+v %v", b, ok)
	}
	if _, ok := r.Banned(netip.MustParseAddr("2001:db8:1:2::99")); !ok {
		t.Error("the /64 ban did not come back")
	}
	// The bound holds on restore: a third ban is dropped, not added.
	r2, _ := NewBanList(BanListConfig{MaxBans: 1}, clock)
	if kept, dropped := r2.Restore(bans); kept != 1 || dropped != 2 {
		t.Errorf("max_bans 1: restored %d, dropped %d", kept, dropped)
	}
}

func TestDecodeBansRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"garbage":       "not json",
		"version":       `{"version": 2, "bans": []}`,
		"unknown field": `{"version": 1, "bans": [], "extra": 1}`,
		"no prefix":     `{"version": 1, "bans": [{"reason": "x"}]}`,
		"bad prefix":    `{"version": 1, "bans": [{"prefix": "300.1.1.1/32"}]}`,
		"too large":     `{"version": 1, "bans": [` + strings.Repeat(`{"prefix":"192.0.2.1/32","reason":"`+strings.Repeat("x", 600)+`"},`, 3) + `{"prefix":"192.0.2.1/32"}]}`,
	} {
		if _, err := DecodeBans([]byte(in), 2); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeBans(f *testing.F) {
	f.Add(EncodeBans([]Ban{{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Reason: "manual"}}))
	f.Add([]byte(`{"version":1,"bans":[{"prefix":"::ffff:192.0.2.1/128","until":"2026-12-02T01:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"bans":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		bans, err := DecodeBans(data, 100)
		if err != nil {
			return
		}
		l, _ := NewBanList(BanListConfig{MaxBans: 100}, nil)
		kept, dropped := l.Restore(bans)
		if kept+dropped != len(bans) || l.Stats().Bans > 100 {
			t.Fatalf("restore of %d bans: kept %d dropped %d held %d", len(bans), kept, dropped, l.Stats().Bans)
		}
		if _, err := DecodeBans(EncodeBans(l.List()), 100); err != nil {
			t.Fatalf("the encoding of restored bans does not decode: %v", err)
		}
	})
}
