package firewall

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/google/nftables"

	"github.com/offedge/offedge/plan"
)

// Conn talks netlink to one network namespace's nftables.
type Conn struct {
	nft *nftables.Conn
	ns  *os.File
}

// Open connects to the nftables of the current network namespace, or of
// the namespace at nsPath (/run/netns/NAME, /proc/PID/ns/net) when set.
func Open(nsPath string) (*Conn, error) {
	var opts []nftables.ConnOption
	c := &Conn{}
	if nsPath != "" {
		f, err := os.Open(nsPath)
		if err != nil {
			return nil, fmt.Errorf("opening network namespace: %w", err)
		}
		c.ns = f
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	nc, err := nftables.New(opts...)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	c.nft = nc
	return c, nil
}

// Close releases the namespace handle.
func (c *Conn) Close() error {
	if c.ns != nil {
		return c.ns.Close()
	}
	return nil
}

// Read decodes offedge's table; ErrNoTable when there is none.
func (c *Conn) Read(name string) (*Live, error) { return Read(c.nft, name) }

// Apply replaces offedge's table with fw in one atomic batch: the old table
// is deleted and the new one added in the same transaction, so the kernel
// never runs half a ruleset; if the kernel refuses any part, nothing
// changes. What the ban sets hold is carried over (with the time each ban
// has left). No other table is touched.
func (c *Conn) Apply(fw *plan.Firewall) error {
	if fw == nil || fw.Table == "" {
		return errors.New("firewall: no ruleset to apply")
	}
	extra := map[string][]nftables.SetElement{}
	old, err := lookupTable(c.nft, fw.Table)
	switch {
	case errors.Is(err, ErrNoTable):
	case err != nil:
		return err
	default:
		for _, s := range fw.Sets {
			if !s.Ban {
				continue
			}
			live, err := c.nft.GetSetByName(old, s.Name)
			if err != nil || !live.HasTimeout || live.KeyType.Name != keyType(s.Family).Name {
				continue
			}
			els, err := c.nft.GetSetElements(live)
			if err != nil {
				return fmt.Errorf("reading ban set %s: %w", s.Name, err)
			}
			for _, e := range els {
				ne := nftables.SetElement{Key: e.Key, IntervalEnd: e.IntervalEnd}
				if !e.IntervalEnd {
					ne.Timeout = e.Expires
				}
				extra[s.Name] = append(extra[s.Name], ne)
			}
		}
		c.nft.DelTable(old)
	}
	if err := queue(c.nft, fw, extra); err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	if err := c.nft.Flush(); err != nil {
		return fmt.Errorf("firewall: the kernel refused the ruleset (nothing changed): %w", err)
	}
	return nil
}

// Remove deletes offedge's table, if there is one.
func (c *Conn) Remove(name string) error {
	t, err := lookupTable(c.nft, name)
	if errors.Is(err, ErrNoTable) {
		return nil
	}
	if err != nil {
		return err
	}
	c.nft.DelTable(t)
	if err := c.nft.Flush(); err != nil {
		return fmt.Errorf("removing table inet %s: %w", name, err)
	}
	return nil
}

// Ban adds p to the ban set of its family for d (0: until removed).
func (c *Conn) Ban(name string, p netip.Prefix, d time.Duration) error {
	t, err := lookupTable(c.nft, name)
	if err != nil {
		return err
	}
	setName := plan.BanSet4
	if p.Addr().Is6() {
		setName = plan.BanSet6
	}
	s, err := c.nft.GetSetByName(t, setName)
	if err != nil {
		return fmt.Errorf("ban set %s: %w", setName, err)
	}
	els := elements([]netip.Prefix{p})
	if d > 0 {
		els[0].Timeout = d // the interval's start carries the timeout
	}
	if err := c.nft.SetAddElements(s, els); err != nil {
		return err
	}
	return c.nft.Flush()
}

// Unban removes p from the ban set of its family (p exactly as it was
// banned).
func (c *Conn) Unban(name string, p netip.Prefix) error {
	t, err := lookupTable(c.nft, name)
	if err != nil {
		return err
	}
	setName := plan.BanSet4
	if p.Addr().Is6() {
		setName = plan.BanSet6
	}
	s, err := c.nft.GetSetByName(t, setName)
	if err != nil {
		return fmt.Errorf("ban set %s: %w", setName, err)
	}
	if err := c.nft.SetDeleteElements(s, elements([]netip.Prefix{p})); err != nil {
		return err
	}
	return c.nft.Flush()
}

// Snapshot is offedge's table as it was before an apply, for rollback.
type Snapshot struct {
	name string
	fw   *plan.Firewall // nil: there was no table
}

// Snapshot records offedge's table so that Restore can put it back. It
// fails when the table holds rules offedge cannot write again.
func (c *Conn) Snapshot(name string) (*Snapshot, error) {
	live, err := c.Read(name)
	if errors.Is(err, ErrNoTable) {
		return &Snapshot{name: name}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(live.Foreign) > 0 {
		var what []string
		for _, f := range live.Foreign {
			what = append(what, f.What)
		}
		return nil, fmt.Errorf("table inet %s holds rules offedge did not write, which a rollback could not restore (%s); remove them first", name, strings.Join(what, "; "))
	}
	return &Snapshot{name: name, fw: live.Firewall}, nil
}

// Restore puts the snapshot back (deleting the table when there was none).
func (c *Conn) Restore(s *Snapshot) error {
	if s.fw == nil {
		return c.Remove(s.name)
	}
	return c.Apply(s.fw)
}
