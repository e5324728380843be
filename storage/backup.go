package storage

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/offedge/offedge/plan"
)

// backupResult is the last scan of one backup directory.
type backupResult struct {
	dir       string
	newest    time.Time // zero: no matching file
	files     int       // matching regular files among the entries read
	truncated bool      // the scan stopped at the plan's MaxEntries
	err       error
}

// ScanResult is what one bounded scan of a backup directory found.
type ScanResult struct {
	// Newest is the modification time of the newest matching regular file
	// (zero: none).
	Newest time.Time
	// Files counts the matching regular files among the entries read.
	Files int
	// Truncated says the directory holds more than maxEntries entries and
	// the rest were not read: Newest may then be older than the real newest.
	Truncated bool
}

// ScanDir finds the newest regular file of dir whose name matches glob
// (path.Match; empty: every file), reading at most maxEntries directory
// entries: a directory an attacker or a runaway job filled with millions
// of files costs a bounded amount of work per pass. Symbolic links and
// subdirectories are not followed.
func ScanDir(ctx context.Context, dir, glob string, maxEntries int) (ScanResult, error) {
	var res ScanResult
	f, err := os.Open(dir)
	if err != nil {
		return res, err
	}
	defer f.Close()
	read := 0
	for read < maxEntries {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		ents, err := f.ReadDir(min(256, maxEntries-read))
		read += len(ents)
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			if glob != "" {
				if ok, _ := path.Match(glob, e.Name()); !ok {
					continue
				}
			}
			info, err := e.Info()
			if err != nil {
				continue // removed meanwhile (a pruned dump)
			}
			res.Files++
			if mt := info.ModTime(); mt.After(res.Newest) {
				res.Newest = mt
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(ents) == 0) {
			return res, nil
		}
		if err != nil {
			return res, err
		}
	}
	// maxEntries read: is there more?
	if more, _ := f.ReadDir(1); len(more) > 0 {
		res.Truncated = true
	}
	return res, nil
}

func (w *Watch) measureBackups(ctx context.Context, st *plan.Storage) {
	maxEntries := st.MaxEntries
	if maxEntries <= 0 {
		maxEntries = plan.DefaultBackupMaxEntries
	}
	for _, b := range st.Backups {
		if ctx.Err() != nil {
			return
		}
		sr, err := ScanDir(ctx, b.Dir, b.Glob, maxEntries)
		res := backupResult{dir: b.Dir, newest: sr.Newest, files: sr.Files, truncated: sr.Truncated, err: err}
		if err != nil {
			w.log.Warn("backup not measured", "backup", b.Name, "dir", b.Dir, "err", err)
		} else if sr.Truncated {
			w.log.Warn("backup directory scan stopped at its bound", "backup", b.Name, "dir", b.Dir, "entries", maxEntries)
		}
		w.mu.Lock()
		if prev := w.backups[b.Name]; err != nil && prev.dir == b.Dir {
			// The age keeps growing from the newest file seen.
			res.newest = prev.newest
		}
		w.backups[b.Name] = res
		w.mu.Unlock()
	}
}

var (
	backupLabels     = []string{"backup", "dir"}
	descBackupAge    = prometheus.NewDesc("offedge_backup_newest_file_age_seconds", "Age of the newest file of a backup directory (now minus its modification time); grows while the directory cannot be read; +Inf when no file matches.", backupLabels, nil)
	descBackupNewest = prometheus.NewDesc("offedge_backup_newest_file_timestamp_seconds", "Modification time (Unix) of the newest file of a backup directory.", backupLabels, nil)
	descBackupFiles  = prometheus.NewDesc("offedge_backup_files", "Matching regular files among the directory entries read.", backupLabels, nil)
	descBackupUp     = prometheus.NewDesc("offedge_backup_up", "1 when the backup directory was read, 0 when it could not be (missing, permissions).", backupLabels, nil)
	descBackupTrunc  = prometheus.NewDesc("offedge_backup_scan_truncated", "1 when the directory holds more entries than the scan reads (the plan's max_entries): the newest file may have been missed.", backupLabels, nil)
)

func describeBackups(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBackupAge, descBackupNewest, descBackupFiles, descBackupUp, descBackupTrunc} {
		ch <- d
	}
}

// collectBackups exports the backups of the plan in force; w.mu is held.
func (w *Watch) collectBackups(st *plan.Storage, now time.Time, gauge func(*prometheus.Desc, float64, ...string)) {
	for _, b := range st.Backups {
		res, ok := w.backups[b.Name]
		if !ok || res.dir != b.Dir {
			continue
		}
		g := func(d *prometheus.Desc, v float64) { gauge(d, v, b.Name, b.Dir) }
		g(descBackupUp, b2f(res.err == nil))
		if res.newest.IsZero() {
			g(descBackupAge, math.Inf(1))
		} else {
			g(descBackupAge, max(now.Sub(res.newest), 0).Seconds())
			g(descBackupNewest, float64(res.newest.Unix()))
		}
		if res.err == nil {
			g(descBackupFiles, float64(res.files))
			g(descBackupTrunc, b2f(res.truncated))
		}
	}
}
