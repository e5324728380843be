package protect

import (
	"container/list"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// JailConfig declares an automatic ban, as a fail2ban jail does from a
// log: a client (IPv6 by /64) that causes MaxEvents events within Window
// is banned for BanTime. Events are the requests a limit zone refused or
// delayed ("limit"), a bot rule matched ("bot"), or answered with a 4xx
// status ("4xx"), as Events lists.
type JailConfig struct {
	Name      string        `json:"name"`
	Events    []string      `json:"events"`
	MaxEvents int           `json:"max_events"`
	Window    time.Duration `json:"window"`
	BanTime   time.Duration `json:"ban_time"` // 0: forever (fail2ban bantime -1)
	// MaxClients bounds the clients the jail watches at once; the least
	// recently seen is forgotten first.
	MaxClients int `json:"max_clients"`
}

// Jail events.
const (
	EventLimit = "limit"
	EventBot   = "bot"
	Event4xx   = "4xx"
)

// Jail counts events per client and bans through a BanList.
type Jail struct {
	cfg    JailConfig
	reason string
	bans   *BanList
	now    func() time.Time
	events map[string]bool

	mu      sync.Mutex
	ll      *list.List
	clients map[netip.Prefix]*list.Element

	banned atomic.Uint64
}

type jailClient struct {
	p     netip.Prefix
	times []time.Time // the last MaxEvents events, oldest first
}

// NewJail builds the jail c declares, banning into bans; site names the
// site it watches, for the ban's reason.
func NewJail(c JailConfig, site string, bans *BanList, now func() time.Time) (*Jail, error) {
	if c.Name == "" {
		return nil, fmt.Errorf("a jail needs a name")
	}
	if c.MaxEvents <= 0 || c.Window <= 0 || c.BanTime < 0 || c.MaxClients <= 0 {
		return nil, fmt.Errorf("jail %q: max_events (%d), window (%v) and max_clients (%d) must be positive, ban_time (%v) not negative", c.Name, c.MaxEvents, c.Window, c.MaxClients, c.BanTime)
	}
	if len(c.Events) == 0 {
		return nil, fmt.Errorf("jail %q: events lists nothing to count", c.Name)
	}
	ev := map[string]bool{}
	for _, e := range c.Events {
		switch e {
		case EventLimit, EventBot, Event4xx:
			ev[e] = true
		default:
			return nil, fmt.Errorf("jail %q: event %q: must be limit, bot or 4xx", c.Name, e)
		}
	}
	if bans == nil {
		return nil, fmt.Errorf("jail %q: no ban list", c.Name)
	}
	if now == nil {
		now = time.Now
	}
	reason := "jail " + c.Name
	if site != "" {
		reason += " site " + site
	}
	return &Jail{cfg: c, reason: reason, bans: bans, now: now, events: ev, ll: list.New(), clients: map[netip.Prefix]*list.Element{}}, nil
}

// Counts reports whether the jail counts events of kind ev.
func (j *Jail) Counts(ev string) bool { return j.events[ev] }

// Observe counts one event of kind ev from a; it bans a's client prefix
// when that makes MaxEvents within the window, and reports whether it did.
// Allow-listed clients are never counted.
func (j *Jail) Observe(a netip.Addr, ev string) bool {
	if !j.events[ev] || !a.IsValid() || j.bans.Allowed(a) {
		return false
	}
	p := ClientPrefix(a)
	now := j.now()
	j.mu.Lock()
	el, ok := j.clients[p]
	if !ok {
		for j.ll.Len() >= j.cfg.MaxClients {
			old := j.ll.Back()
			j.ll.Remove(old)
			delete(j.clients, old.Value.(*jailClient).p)
		}
		el = j.ll.PushFront(&jailClient{p: p})
		j.clients[p] = el
	} else {
		j.ll.MoveToFront(el)
	}
	c := el.Value.(*jailClient)
	cut := now.Add(-j.cfg.Window)
	i := 0
	for i < len(c.times) && !c.times[i].After(cut) {
		i++
	}
	c.times = append(c.times[i:], now)
	fire := len(c.times) >= j.cfg.MaxEvents
	if fire {
		j.ll.Remove(el)
		delete(j.clients, p)
	}
	j.mu.Unlock()
	if !fire {
		return false
	}
	if _, err := j.bans.add(p, j.cfg.BanTime, j.reason, false); err != nil {
		return false
	}
	j.banned.Add(1)
	return true
}

// Banned counts the bans the jail made.
func (j *Jail) Banned() uint64 { return j.banned.Load() }

// Name is the jail's name.
func (j *Jail) Name() string { return j.cfg.Name }
