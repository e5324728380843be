package protect

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// ZoneConfig declares one request-rate zone of a node (nginx
// limit_req_zone with the limit_req that uses it): every key (a client, a
// class, or both: see Key) may make Rate requests a second, plus a Burst
// of excess ones. Every field is resolved by the plan; NewZone refuses
// zeros it would otherwise have to guess.
type ZoneConfig struct {
	// Rate is the sustained rate, in requests per second (nginx
	// rate=240r/m is 4).
	Rate float64 `json:"rate"`
	// Burst is how many requests beyond the rate a key may make at once.
	Burst int `json:"burst"`
	// NoDelay answers the burst at once; without it, excess requests wait
	// until the rate allows them (at most Burst of them waiting).
	NoDelay bool `json:"nodelay,omitempty"`
	// DryRun counts and logs the requests the zone would refuse or delay,
	// and lets them through (nginx limit_req_dry_run on).
	DryRun bool `json:"dry_run,omitempty"`
	// Status is the answer to a refused request: 429 (with Retry-After),
	// 503, or 444 (close the connection without an answer, as nginx).
	Status int `json:"status"`
	// MaxKeys bounds the keys the zone tracks at once (nginx sizes the
	// zone in bytes: 10m holds about 160,000 states); the least recently
	// seen key is forgotten first.
	MaxKeys int `json:"max_keys"`
	// Key says what a request is counted by: "address" (the client,
	// IPv6 by /64), "class" (the value of the Map, one bucket per class),
	// or "class+address" (the client within its class). A request whose
	// class is empty is not limited by the zone (nginx: an empty key).
	Key string `json:"key"`
	// Map names the class map of the node that "class" keys use.
	Map string `json:"map,omitempty"`
}

// Zone keys.
const (
	KeyAddress      = "address"
	KeyClass        = "class"
	KeyClassAddress = "class+address"
)

// StatusClose is nginx's 444: the connection is closed without an answer.
const StatusClose = 444

// Validate reports the first field of c that NewZone would refuse.
func (c ZoneConfig) Validate() error {
	switch {
	case !(c.Rate > 0) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("rate %v: must be a positive number of requests per second", c.Rate)
	case c.Burst < 0:
		return fmt.Errorf("burst %d: must not be negative", c.Burst)
	case c.MaxKeys <= 0:
		return fmt.Errorf("max_keys %d: must be positive", c.MaxKeys)
	}
	switch c.Status {
	case 429, 503, StatusClose:
	default:
		return fmt.Errorf("status %d: must be 429, 503 or 444 (close without an answer)", c.Status)
	}
	switch c.Key {
	case KeyAddress:
		if c.Map != "" {
			return errors.New("map is only used by the class and class+address keys")
		}
	case KeyClass, KeyClassAddress:
		if c.Map == "" {
			return fmt.Errorf("key %q needs a map", c.Key)
		}
	default:
		return fmt.Errorf("key %q: must be address, class or class+address", c.Key)
	}
	return nil
}

// Verdict is a zone's decision on one request.
type Verdict struct {
	// Limited is true when the request exceeded the zone. In dry-run it
	// is still let through (Refuse is false).
	Limited bool
	// Refuse is true when the request must be answered with the zone's
	// Status (or closed, for 444).
	Refuse bool
	// Delay is how long an excess request of a zone without nodelay must
	// wait before it is served.
	Delay time.Duration
	// RetryAfter is when the key may try again, for Retry-After.
	RetryAfter time.Duration
}

// ZoneStats count a zone's decisions.
type ZoneStats struct {
	Passed   uint64 `json:"passed"`
	Delayed  uint64 `json:"delayed"`
	Rejected uint64 `json:"rejected"`
	// DryRun counts the requests a dry-run zone would have refused.
	DryRun uint64 `json:"dry_run"`
	// Keys is the number of keys tracked now; Evicted how many were
	// forgotten because the zone was full.
	Keys    int    `json:"keys"`
	Evicted uint64 `json:"evicted"`
}

// Zone is one built rate zone; safe for concurrent use.
type Zone struct {
	cfg      ZoneConfig
	limit    rate.Limit
	bucket   int           // token bucket size
	maxDelay time.Duration // without nodelay: longest wait allowed

	mu   sync.Mutex
	ll   *list.List // front = most recently seen
	keys map[string]*list.Element

	passed, delayed, rejected, dry, evicted atomic.Uint64
}

type zoneKey struct {
	key string
	lim *rate.Limiter
}

// NewZone builds the zone c declares.
func NewZone(c ZoneConfig) (*Zone, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	z := &Zone{cfg: c, limit: rate.Limit(c.Rate), ll: list.New(), keys: map[string]*list.Element{}}
	if c.NoDelay {
		// nginx nodelay: Burst excess requests at once, then one per
		// 1/Rate: a bucket of Burst+1 tokens.
		z.bucket = c.Burst + 1
	} else {
		// Without nodelay, requests are spaced at the rate: one token,
		// and up to Burst requests waiting their turn.
		z.bucket = 1
		z.maxDelay = time.Duration(float64(c.Burst) / c.Rate * float64(time.Second))
	}
	return z, nil
}

// Config is the declaration the zone was built from.
func (z *Zone) Config() ZoneConfig { return z.cfg }

// Take counts one request of key at now and returns the zone's verdict.
// An empty key is not limited.
func (z *Zone) Take(key string, now time.Time) Verdict {
	if key == "" {
		return Verdict{}
	}
	lim := z.limiter(key)
	var v Verdict
	if z.cfg.NoDelay {
		if !lim.AllowN(now, 1) {
			v.Limited = true
			v.RetryAfter = time.Duration(float64(time.Second) / z.cfg.Rate)
		}
	} else {
		r := lim.ReserveN(now, 1)
		d := r.DelayFrom(now)
		switch {
		case d == 0:
		case d <= z.maxDelay:
			v.Delay = d
		default:
			r.CancelAt(now)
			v.Limited = true
			v.RetryAfter = d - z.maxDelay
		}
	}
	switch {
	case v.Limited && z.cfg.DryRun:
		z.dry.Add(1)
		z.passed.Add(1)
		v.RetryAfter = 0
	case v.Limited:
		v.Refuse = true
		z.rejected.Add(1)
	case v.Delay > 0 && z.cfg.DryRun:
		// Dry-run delays nothing either; the wait is counted as excess.
		z.dry.Add(1)
		z.passed.Add(1)
		v.Delay, v.Limited = 0, true
	case v.Delay > 0:
		z.delayed.Add(1)
	default:
		z.passed.Add(1)
	}
	return v
}

// limiter returns key's limiter, creating it (and forgetting the least
// recently seen key when the zone is full).
func (z *Zone) limiter(key string) *rate.Limiter {
	z.mu.Lock()
	defer z.mu.Unlock()
	if el, ok := z.keys[key]; ok {
		z.ll.MoveToFront(el)
		return el.Value.(*zoneKey).lim
	}
	for z.ll.Len() >= z.cfg.MaxKeys {
		old := z.ll.Back()
		z.ll.Remove(old)
		delete(z.keys, old.Value.(*zoneKey).key)
		z.evicted.Add(1)
	}
	k := &zoneKey{key: key, lim: rate.NewLimiter(z.limit, z.bucket)}
	z.keys[key] = z.ll.PushFront(k)
	return k.lim
}

// Stats returns the zone's counters.
func (z *Zone) Stats() ZoneStats {
	z.mu.Lock()
	n := z.ll.Len()
	z.mu.Unlock()
	return ZoneStats{Passed: z.passed.Load(), Delayed: z.delayed.Load(), Rejected: z.rejected.Load(),
		DryRun: z.dry.Load(), Keys: n, Evicted: z.evicted.Load()}
}
