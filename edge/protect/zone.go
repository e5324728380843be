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
	// Burst is how many requests beyond the rate a key may make at once,
	// for a route that names the zone without its own burst.
	Burst int `json:"burst"`
	// NoDelay answers the burst at once; without it, excess requests wait
	// until the rate allows them (at most Burst of them waiting). Like
	// Burst, the default of the routes that do not say.
	NoDelay bool `json:"nodelay,omitempty"`
	// MaxBurst is the largest burst of any route counting against the
	// zone (each nginx limit_req line has its own burst over the zone's
	// one state per key): the state holds that much excess.
	MaxBurst int `json:"max_burst"`
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
	case c.MaxBurst < c.Burst:
		return fmt.Errorf("max_burst %d: must be at least the zone's burst %d", c.MaxBurst, c.Burst)
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

// Zone is one built rate zone; safe for concurrent use. Each key has one
// token bucket (x/time/rate) of MaxBurst+1 tokens filled at Rate: the
// tokens missing are nginx's "excess", the requests ahead of this one, so
// that each route can judge it against its own burst (Take).
type Zone struct {
	cfg   ZoneConfig
	limit rate.Limit

	mu   sync.Mutex
	ll   *list.List // front = most recently seen
	keys map[string]*list.Element

	passed, delayed, rejected, dry, evicted atomic.Uint64
}

type zoneKey struct {
	key string
	mu  sync.Mutex // makes reading the tokens and taking one a single step
	lim *rate.Limiter
}

// NewZone builds the zone c declares.
func NewZone(c ZoneConfig) (*Zone, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Zone{cfg: c, limit: rate.Limit(c.Rate), ll: list.New(), keys: map[string]*list.Element{}}, nil
}

// Config is the declaration the zone was built from.
func (z *Zone) Config() ZoneConfig { return z.cfg }

// Take counts one request of key at now with the zone's own burst and
// nodelay, and returns the verdict. An empty key is not limited.
func (z *Zone) Take(key string, now time.Time) Verdict {
	return z.TakeBurst(key, now, z.cfg.Burst, z.cfg.NoDelay)
}

// TakeBurst is Take for a route with its own burst (at most MaxBurst) and
// nodelay, nginx's limit_req zone=Z burst=N [nodelay]: the request is
// refused when more than burst requests are ahead of it; otherwise it
// passes at once (nodelay) or waits until the rate reaches it.
func (z *Zone) TakeBurst(key string, now time.Time, burst int, nodelay bool) Verdict {
	if key == "" {
		return Verdict{}
	}
	burst = min(max(burst, 0), z.cfg.MaxBurst)
	k := z.limiter(key)
	// The tokens that must remain after this request: the share of the
	// zone's state beyond this route's burst.
	floor := float64(z.cfg.MaxBurst - burst)
	var v Verdict
	k.mu.Lock()
	tokens := k.lim.TokensAt(now)
	if tokens-1 < floor {
		v.Limited = true
		v.RetryAfter = time.Duration((floor + 1 - tokens) / z.cfg.Rate * float64(time.Second))
	} else {
		k.lim.AllowN(now, 1)
		if excess := float64(z.cfg.MaxBurst) - (tokens - 1); !nodelay && excess > 0 {
			v.Delay = time.Duration(excess / z.cfg.Rate * float64(time.Second))
		}
	}
	k.mu.Unlock()
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
func (z *Zone) limiter(key string) *zoneKey {
	z.mu.Lock()
	defer z.mu.Unlock()
	if el, ok := z.keys[key]; ok {
		z.ll.MoveToFront(el)
		return el.Value.(*zoneKey)
	}
	for z.ll.Len() >= z.cfg.MaxKeys {
		old := z.ll.Back()
		z.ll.Remove(old)
		delete(z.keys, old.Value.(*zoneKey).key)
		z.evicted.Add(1)
	}
	k := &zoneKey{key: key, lim: rate.NewLimiter(z.limit, z.cfg.MaxBurst+1)}
	z.keys[key] = z.ll.PushFront(k)
	return k
}

// Stats returns the zone's counters.
func (z *Zone) Stats() ZoneStats {
	z.mu.Lock()
	n := z.ll.Len()
	z.mu.Unlock()
	return ZoneStats{Passed: z.passed.Load(), Delayed: z.delayed.Load(), Rejected: z.rejected.Load(),
		DryRun: z.dry.Load(), Keys: n, Evicted: z.evicted.Load()}
}
