package protect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Ban is one banned address range.
type Ban struct {
	Prefix netip.Prefix `json:"prefix"`
	// Until is when the ban ends; the zero time is never.
	Until time.Time `json:"until,omitzero"`
	// Reason says who banned it: "manual", or "jail NAME" with its site.
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// BanListConfig bounds a node's ban list.
type BanListConfig struct {
	// MaxBans bounds the bans held; when full, automatic bans are refused
	// (and counted) while manual ones still go in.
	MaxBans int `json:"max_bans"`
	// Allow lists the addresses never banned, by hand or by a jail (the
	// node's own monitoring, the operators).
	Allow []netip.Prefix `json:"allow,omitempty"`
	// StateFile keeps the bans across restarts: the runtime writes it
	// (0600, atomically) after each change and restores it at start. A
	// relative name is in the node's state directory; "" keeps them in
	// memory only.
	StateFile string `json:"state_file"`
}

// BanList is the node's set of banned ranges, checked at accept on every
// listener it is given to, before TLS or any byte is read. Safe for
// concurrent use; reads take no lock.
type BanList struct {
	cfg BanListConfig
	now func() time.Time

	mu   sync.Mutex
	bans map[netip.Prefix]Ban
	snap atomic.Pointer[banSnapshot]
	// onChange is told of every change (the firewall's ban set).
	onChange []func([]Ban)

	refused atomic.Uint64 // connections refused because banned
	full    atomic.Uint64 // automatic bans dropped because the list was full
}

// banSnapshot is what Banned reads: single addresses by map, ranges by scan.
type banSnapshot struct {
	hosts  map[netip.Addr]Ban
	ranges []Ban
}

// NewBanList builds an empty ban list.
func NewBanList(c BanListConfig, now func() time.Time) (*BanList, error) {
	if c.MaxBans <= 0 {
		return nil, fmt.Errorf("max_bans %d: must be positive", c.MaxBans)
	}
	if now == nil {
		now = time.Now
	}
	l := &BanList{cfg: c, now: now, bans: map[netip.Prefix]Ban{}}
	l.snap.Store(&banSnapshot{hosts: map[netip.Addr]Ban{}})
	return l, nil
}

// SetConfig changes the bound and the allow list (a reload); bans in
// force stay, and those the new allow list covers are lifted.
func (l *BanList) SetConfig(c BanListConfig) error {
	if c.MaxBans <= 0 {
		return fmt.Errorf("max_bans %d: must be positive", c.MaxBans)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = c
	for p := range l.bans {
		for _, a := range c.Allow {
			if a.Overlaps(p) {
				delete(l.bans, p)
			}
		}
	}
	l.publishLocked()
	return nil
}

// ErrAllowListed is returned when a ban would cover an address of the
// allow list.
var ErrAllowListed = errors.New("covers an address of the ban allow list")

// Add bans p for d (0: forever). It refuses a range that overlaps the
// allow list.
func (l *BanList) Add(p netip.Prefix, d time.Duration, reason string) (Ban, error) {
	return l.add(p, d, reason, true)
}

func (l *BanList) add(p netip.Prefix, d time.Duration, reason string, manual bool) (Ban, error) {
	if !p.IsValid() {
		return Ban{}, errors.New("not an address or prefix")
	}
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapShift(p)).Masked()
	l.mu.Lock()
	allow := l.cfg.Allow
	l.mu.Unlock()
	for _, a := range allow {
		if a.Overlaps(p) {
			return Ban{}, fmt.Errorf("%s: %w (%s)", p, ErrAllowListed, a)
		}
	}
	if d < 0 {
		return Ban{}, fmt.Errorf("duration %v: must not be negative", d)
	}
	now := l.now()
	b := Ban{Prefix: p, Reason: reason, Since: now}
	if d > 0 {
		b.Until = now.Add(d)
	}
	l.mu.Lock()
	l.expireLocked(now)
	if _, ok := l.bans[p]; !ok && len(l.bans) >= l.cfg.MaxBans && !manual {
		l.mu.Unlock()
		l.full.Add(1)
		return Ban{}, fmt.Errorf("%s: the ban list is full (%d bans)", p, l.cfg.MaxBans)
	}
	l.bans[p] = b
	l.publishLocked()
	l.mu.Unlock()
	return b, nil
}

// unmapShift is how many bits an IPv4-mapped prefix loses when unmapped.
func unmapShift(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return 96
	}
	return 0
}

// Del lifts the ban on exactly p; it reports whether there was one.
func (l *BanList) Del(p netip.Prefix) bool {
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapShift(p)).Masked()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.bans[p]; !ok {
		return false
	}
	delete(l.bans, p)
	l.publishLocked()
	return true
}

// List returns the bans in force, sorted by prefix.
func (l *BanList) List() []Ban {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.expireLocked(l.now()) {
		l.publishLocked()
	}
	return l.listLocked()
}

func (l *BanList) listLocked() []Ban {
	out := make([]Ban, 0, len(l.bans))
	for _, b := range l.bans {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Ban) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}

// expireLocked drops ended bans; it reports whether it dropped any.
func (l *BanList) expireLocked(now time.Time) bool {
	dropped := false
	for p, b := range l.bans {
		if !b.Until.IsZero() && !now.Before(b.Until) {
			delete(l.bans, p)
			dropped = true
		}
	}
	return dropped
}

func (l *BanList) publishLocked() {
	s := &banSnapshot{hosts: map[netip.Addr]Ban{}}
	for p, b := range l.bans {
		if p.IsSingleIP() {
			s.hosts[p.Addr()] = b
		} else {
			s.ranges = append(s.ranges, b)
		}
	}
	l.snap.Store(s)
	if len(l.onChange) > 0 {
		list := l.listLocked()
		for _, f := range l.onChange {
			f(list)
		}
	}
}

// OnChange registers f, called (under the list's lock: it must not call
// back into the list) with every ban in force after each change.
func (l *BanList) OnChange(f func([]Ban)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onChange = append(l.onChange, f)
}

// Banned reports whether a is banned now, and by which ban.
func (l *BanList) Banned(a netip.Addr) (Ban, bool) {
	a = a.Unmap()
	s := l.snap.Load()
	now := l.now()
	if b, ok := s.hosts[a]; ok && (b.Until.IsZero() || now.Before(b.Until)) {
		return b, true
	}
	for _, b := range s.ranges {
		if b.Prefix.Contains(a) && (b.Until.IsZero() || now.Before(b.Until)) {
			return b, true
		}
	}
	return Ban{}, false
}

// Refuse is Banned for an accept-time gate: it counts a refusal and
// returns the rule that decided ("ban 192.0.2.7/32 (manual)").
func (l *BanList) Refuse(a netip.Addr) (string, bool) {
	b, ok := l.Banned(a)
	if !ok {
		return "", false
	}
	l.refused.Add(1)
	return "ban " + b.Prefix.String() + " (" + b.Reason + ")", true
}

// Allowed reports whether a is on the allow list (never banned).
func (l *BanList) Allowed(a netip.Addr) bool {
	a = a.Unmap()
	l.mu.Lock()
	allow := l.cfg.Allow
	l.mu.Unlock()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// BanStats count what the ban list did.
type BanStats struct {
	Bans    int    `json:"bans"`
	Refused uint64 `json:"refused"`
	Full    uint64 `json:"full"`
}

// Stats returns the ban list's counters.
func (l *BanList) Stats() BanStats {
	l.mu.Lock()
	n := len(l.bans)
	l.mu.Unlock()
	return BanStats{Bans: n, Refused: l.refused.Load(), Full: l.full.Load()}
}

// banStateVersion is the format of the ban state file.
const banStateVersion = 1

// banStateEntryBytes bounds one ban in the state file (a prefix, two
// times, a reason), for the file's size limit.
const banStateEntryBytes = 512

type banState struct {
	Version int   `json:"version"`
	Bans    []Ban `json:"bans"`
}

// EncodeBans is the state file content for bans: JSON, one version field,
// the bans in force, so that a restart restores them (fail2ban keeps its
// bans in a database for the same reason: an attacker's ban must not end
// because the service was upgraded).
func EncodeBans(bans []Ban) []byte {
	if bans == nil {
		bans = []Ban{}
	}
	b, _ := json.MarshalIndent(banState{Version: banStateVersion, Bans: bans}, "", " ")
	return append(b, '\n')
}

// DecodeBans reads a state file written by EncodeBans, refusing one larger
// than max bans could make or of another version.
func DecodeBans(data []byte, max int) ([]Ban, error) {
	if limit := int64(max)*banStateEntryBytes + 64; int64(len(data)) > limit {
		return nil, fmt.Errorf("%d bytes: more than %d bans can take (%d bytes)", len(data), max, limit)
	}
	var st banState
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, err
	}
	if st.Version != banStateVersion {
		return nil, fmt.Errorf("version %d: this offedge reads version %d", st.Version, banStateVersion)
	}
	for i, b := range st.Bans {
		if !b.Prefix.IsValid() {
			return nil, fmt.Errorf("ban %d: no prefix", i+1)
		}
	}
	return st.Bans, nil
}

// Restore puts back bans saved by an earlier run: those ended by now, or
// covered by the allow list in force, or beyond the bound are left out and
// counted in dropped. A ban already held keeps the longer end.
func (l *BanList) Restore(bans []Ban) (kept, dropped int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range bans {
		p := netip.PrefixFrom(b.Prefix.Addr().Unmap(), b.Prefix.Bits()-unmapShift(b.Prefix)).Masked()
		b.Prefix = p
		if !p.IsValid() || (!b.Until.IsZero() && !now.Before(b.Until)) || overlapsAny(l.cfg.Allow, p) {
			dropped++
			continue
		}
		if old, ok := l.bans[p]; ok {
			if !old.Until.IsZero() && (b.Until.IsZero() || b.Until.After(old.Until)) {
				l.bans[p] = b
			}
			kept++
			continue
		}
		if len(l.bans) >= l.cfg.MaxBans {
			dropped++
			continue
		}
		l.bans[p] = b
		kept++
	}
	l.publishLocked()
	return kept, dropped
}

func overlapsAny(list []netip.Prefix, p netip.Prefix) bool {
	for _, a := range list {
		if a.Overlaps(p) {
			return true
		}
	}
	return false
}
