package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/offedge/offedge/edge/protect"
	"github.com/offedge/offedge/internal/atomicfile"
)

// banSaveDelay coalesces a burst of ban changes (a jail banning a botnet)
// into one write of the state file.
const banSaveDelay = 200 * time.Millisecond

// banState keeps the node's bans in the state file the plan names: it
// restores them at start and writes the list after each change, so a
// restart or an upgrade does not lift a ban (nftables' ban sets would keep
// theirs until their timeout, the accept-time check would not).
type banState struct {
	log  *slog.Logger
	list *protect.BanList

	writeMu sync.Mutex // held while the file is written
	mu      sync.Mutex
	path    string // "" while stopped or when the plan names none
	latest  []protect.Ban
	dirty   bool
	timer   *time.Timer
	lastErr string

	writes atomic.Uint64
	errs   atomic.Uint64
}

// restoreBans reads path into list. A missing file is a first start. A file
// that cannot be decoded is moved aside (never overwritten: it is the only
// record of those bans) and the node starts with none, saying so.
func restoreBans(log *slog.Logger, list *protect.BanList, path string, max int) *banState {
	s := &banState{log: log, list: list, path: path}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			log.Error("ban state not read; starting without the saved bans", "file", path, "err", err)
		default:
			bans, err := protect.DecodeBans(data, max)
			if err != nil {
				aside := fmt.Sprintf("%s.unreadable-%d", path, time.Now().Unix())
				rerr := os.Rename(path, aside)
				log.Error("ban state unreadable; moved aside, starting without the saved bans", "file", path, "err", err, "moved_to", aside, "move_err", rerr)
			} else if kept, dropped := list.Restore(bans); kept+dropped > 0 {
				log.Info("bans restored", "file", path, "restored", kept, "dropped", dropped)
			}
		}
	}
	list.OnChange(s.changed)
	return s
}

// changed is the ban list's change hook (called under the list's lock).
func (s *banState) changed(bans []protect.Ban) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest, s.dirty = bans, true
	if s.path == "" || s.timer != nil {
		return
	}
	s.timer = time.AfterFunc(banSaveDelay, s.flush)
}

// flush writes the latest list if it changed since the last write. The
// file is written outside mu, so a ban being added (whose hook takes mu)
// never waits on the disk; writeMu keeps writes in order.
func (s *banState) flush() {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	s.timer = nil
	path, bans, dirty := s.path, s.latest, s.dirty
	s.dirty = false
	s.mu.Unlock()
	if !dirty || path == "" {
		return
	}
	err := atomicfile.Write(path, protect.EncodeBans(bans), 0o600)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs.Add(1)
		s.dirty = true // retried on the next change, or at stop
		if msg := err.Error(); msg != s.lastErr {
			s.log.Error("ban state not written: the bans hold until a restart", "file", path, "err", err)
			s.lastErr = msg
		}
		return
	}
	s.writes.Add(1)
	s.lastErr = ""
}

// setPath follows a reload; the bans in force are written to the new file.
func (s *banState) setPath(path string) {
	bans := s.list.List() // before mu: List may call the hook, which takes mu
	s.mu.Lock()
	changed := s.path != path
	s.path = path
	if changed && path != "" {
		s.latest, s.dirty = bans, true
	}
	s.mu.Unlock()
	if changed {
		s.flush()
	}
}

// stop writes what is pending and stops writing.
func (s *banState) stop() {
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
	s.flush()
	s.mu.Lock()
	s.path = ""
	s.mu.Unlock()
}

// BanStateStats count the state file's writes.
type BanStateStats struct {
	File        string `json:"file,omitempty"`
	Writes      uint64 `json:"writes"`
	WriteErrors uint64 `json:"write_errors"`
}

func (s *banState) stats() BanStateStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return BanStateStats{File: s.path, Writes: s.writes.Load(), WriteErrors: s.errs.Load()}
}
