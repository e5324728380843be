package protect

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
)

// Bot rule actions.
const (
	ActionPage   = "page"   // answer with a configured page (the stop-crawling page)
	ActionDeny   = "deny"   // 403
	ActionLimit  = "limit"  // 429 with Retry-After
	ActionTarpit = "tarpit" // hold the request, then 429; bounded in count and time
	ActionClose  = "close"  // close without an answer (nginx 444)
)

// BotRuleConfig matches requests to an action. A rule matches when every
// field it sets matches (a field lists alternatives: any of them).
type BotRuleConfig struct {
	Name      string         `json:"name"`
	UserAgent []Pattern      `json:"user_agent,omitempty"`
	Referer   []Pattern      `json:"referer,omitempty"`
	Path      []Pattern      `json:"path,omitempty"`
	Addr      []netip.Prefix `json:"addr,omitempty"`
	Action    string         `json:"action"`
	// PageFile is the file the page action answers with, read when the
	// rule is built (the HTTP edge reads it into Page); PageType its
	// Content-Type (default text/plain, as the reference's
	// stop-crawling.txt).
	PageFile string `json:"page_file,omitempty"`
	Page     string `json:"-"`
	PageType string `json:"page_type,omitempty"`
}

// BotRule is one compiled rule.
type BotRule struct {
	Name     string
	Action   string
	Page     string
	PageType string
	ua, ref  []pattern
	path     []pattern
	addr     []netip.Prefix
	hits     atomic.Uint64
}

// NewBotRule compiles c.
func NewBotRule(c BotRuleConfig) (*BotRule, error) {
	if c.Name == "" {
		return nil, errors.New("a bot rule needs a name")
	}
	r := &BotRule{Name: c.Name, Action: c.Action, Page: c.Page, PageType: c.PageType, addr: c.Addr}
	switch c.Action {
	case ActionPage:
		if c.PageType == "" {
			r.PageType = "text/plain; charset=utf-8"
		}
	case ActionDeny, ActionLimit, ActionTarpit, ActionClose:
		if c.Page != "" || c.PageFile != "" {
			return nil, fmt.Errorf("bot rule %q: a page is only served by the page action", c.Name)
		}
	default:
		return nil, fmt.Errorf("bot rule %q: action %q: must be page, deny, limit, tarpit or close", c.Name, c.Action)
	}
	comp := func(ps []Pattern, field string) ([]pattern, error) {
		var out []pattern
		for _, p := range ps {
			cp, err := compilePattern(p)
			if err != nil {
				return nil, fmt.Errorf("bot rule %q: %s: %w", c.Name, field, err)
			}
			out = append(out, cp)
		}
		return out, nil
	}
	var err error
	if r.ua, err = comp(c.UserAgent, "user_agent"); err != nil {
		return nil, err
	}
	if r.ref, err = comp(c.Referer, "referer"); err != nil {
		return nil, err
	}
	if r.path, err = comp(c.Path, "path"); err != nil {
		return nil, err
	}
	if len(r.ua)+len(r.ref)+len(r.path)+len(r.addr) == 0 {
		return nil, fmt.Errorf("bot rule %q: matches nothing (set user_agent, referer, path or addr)", c.Name)
	}
	return r, nil
}

func anyMatch(ps []pattern, s string) bool {
	if len(ps) == 0 {
		return true
	}
	for i := range ps {
		if ps[i].match(s) {
			return true
		}
	}
	return false
}

// Match reports whether the rule matches r.
func (b *BotRule) Match(r *Request) bool {
	if !anyMatch(b.ua, r.value(SourceUserAgent)) || !anyMatch(b.ref, r.Referer) || !anyMatch(b.path, r.Path) {
		return false
	}
	if len(b.addr) > 0 {
		a := r.Addr.Unmap()
		for _, p := range b.addr {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return true
}

// Hit counts a match; Hits reports the count.
func (b *BotRule) Hit()         { b.hits.Add(1) }
func (b *BotRule) Hits() uint64 { return b.hits.Load() }

// FirstMatch returns the first rule of rules that matches r, or nil.
func FirstMatch(rules []*BotRule, r *Request) *BotRule {
	for _, b := range rules {
		if b.Match(r) {
			return b
		}
	}
	return nil
}

// TarpitConfig bounds what tarpitted requests cost: at most Max held at
// once (others are answered 429 at once), each at most Hold.
type TarpitConfig struct {
	Max  int           `json:"max"`
	Hold time.Duration `json:"hold"`
}

// Tarpit holds requests of the tarpit action, at a bounded cost.
type Tarpit struct {
	slots   chan struct{}
	hold    time.Duration
	held    atomic.Uint64
	overrun atomic.Uint64
}

// NewTarpit builds the tarpit c declares.
func NewTarpit(c TarpitConfig) (*Tarpit, error) {
	if c.Max <= 0 || c.Hold <= 0 {
		return nil, fmt.Errorf("tarpit: max (%d) and hold (%v) must be positive", c.Max, c.Hold)
	}
	return &Tarpit{slots: make(chan struct{}, c.Max), hold: c.Hold}, nil
}

// Hold keeps the caller for the tarpit's hold time, or until ctx ends; it
// reports false at once when every slot is taken.
func (t *Tarpit) Hold(ctx context.Context) bool {
	select {
	case t.slots <- struct{}{}:
	default:
		t.overrun.Add(1)
		return false
	}
	defer func() { <-t.slots }()
	t.held.Add(1)
	tm := time.NewTimer(t.hold)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
	return true
}

// Held counts the requests the tarpit held; Overrun those answered at once
// because it was full; Holding those held now.
func (t *Tarpit) Held() uint64    { return t.held.Load() }
func (t *Tarpit) Overrun() uint64 { return t.overrun.Load() }
func (t *Tarpit) Holding() int    { return len(t.slots) }
