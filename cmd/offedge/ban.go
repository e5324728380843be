package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/offedge/offedge/edge/protect"
	"github.com/offedge/offedge/runtime"
)

// protectHandlers are the admin endpoints of the node's protections:
// GET /bans, POST /bans?prefix=P&for=D&reason=R, DELETE /bans?prefix=P,
// POST /cache/purge?cache=C&key=K.
func protectHandlers(mux *http.ServeMux, rt func() *runtime.Node) {
	mux.HandleFunc("GET /bans", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rt().Bans().List())
	})
	mux.HandleFunc("POST /bans", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p, err := parseBanPrefix(q.Get("prefix"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var d time.Duration
		if s := q.Get("for"); s != "" {
			if d, err = time.ParseDuration(s); err != nil || d < 0 {
				http.Error(w, fmt.Sprintf("for %q: a duration such as 1h, or none for a ban without end", s), http.StatusBadRequest)
				return
			}
		}
		reason := "manual"
		if s := strings.TrimSpace(q.Get("reason")); s != "" {
			reason = "manual: " + s
		}
		b, err := rt().Bans().Add(p, d, reason)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(b)
	})
	mux.HandleFunc("DELETE /bans", func(w http.ResponseWriter, r *http.Request) {
		p, err := parseBanPrefix(r.URL.Query().Get("prefix"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !rt().Bans().Del(p) {
			http.Error(w, fmt.Sprintf("%s is not banned (a range is lifted whole, by the prefix it was banned as)", p), http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, "%s unbanned\n", p)
	})
	mux.HandleFunc("POST /cache/purge", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ok, err := rt().PurgeCache(q.Get("cache"), q.Get("key"))
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusNotFound)
		case !ok:
			http.Error(w, "no entry with that key", http.StatusNotFound)
		default:
			fmt.Fprintln(w, "purged")
		}
	})
}

// parseBanPrefix reads an address (a /32 or /128) or a prefix.
func parseBanPrefix(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("give the address or prefix to ban (prefix=203.0.113.7 or 2001:db8::/64)")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set; did you mean %s?", p, p.Masked())
	}
	return p, nil
}

func cmdBan(e *env, args []string) error {
	if len(args) == 0 {
		return usageError("ban needs a subcommand: add, del or list")
	}
	sub, rest := args[0], args[1:]
	fs := e.newFlags("ban " + sub)
	admin := fs.String("admin", "", "admin `ADDR` of the running offedge (required)")
	var dur *time.Duration
	var reason *string
	if sub == "add" {
		dur = fs.Duration("for", 0, "how long the ban lasts, e.g. 24h (default: until lifted)")
		reason = fs.String("reason", "", "why, kept with the ban")
	}
	pos, err := e.parse(fs, rest)
	if err != nil {
		return err
	}
	if *admin == "" {
		return usageError("--admin is required: the address of the running offedge's admin endpoint")
	}
	c, err := adminClient(30 * time.Second)
	if err != nil {
		return err
	}
	base := "http://" + *admin + "/bans"
	switch sub {
	case "list":
		if len(pos) > 0 {
			return usageError("unexpected argument %q", pos[0])
		}
		resp, err := c.Get(base)
		if err != nil {
			return err
		}
		body, err := adminBody(resp)
		if err != nil {
			return err
		}
		var bans []protect.Ban
		if err := json.Unmarshal(body, &bans); err != nil {
			return fmt.Errorf("reading the ban list: %w", err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PREFIX\tUNTIL\tSINCE\tREASON")
		for _, b := range bans {
			until := "never"
			if !b.Until.IsZero() {
				until = b.Until.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Prefix, until, b.Since.UTC().Format(time.RFC3339), b.Reason)
		}
		return tw.Flush()
	case "add", "del":
		if len(pos) != 1 {
			return usageError("ban %s takes one address or prefix", sub)
		}
		p, err := parseBanPrefix(pos[0])
		if err != nil {
			return usageError("%v", err)
		}
		q := url.Values{"prefix": {p.String()}}
		method := http.MethodDelete
		if sub == "add" {
			method = http.MethodPost
			if *dur < 0 {
				return usageError("--for %v: must not be negative", *dur)
			}
			if *dur > 0 {
				q.Set("for", dur.String())
			}
			if *reason != "" {
				q.Set("reason", *reason)
			}
		}
		req, _ := http.NewRequest(method, base+"?"+q.Encode(), nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		if _, err := adminBody(resp); err != nil {
			return err
		}
		if sub == "add" {
			fmt.Fprintf(e.stdout, "%s banned\n", p)
		} else {
			fmt.Fprintf(e.stdout, "%s unbanned\n", p)
		}
		return nil
	}
	return usageError("unknown ban subcommand %q (add, del, list)", sub)
}

// adminBody reads an admin answer; a non-2xx answer is the error.
func adminBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		return nil, errors.New(strings.TrimSpace(string(body)))
	}
	return body, nil
}
