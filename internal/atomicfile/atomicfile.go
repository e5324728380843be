// Package atomicfile replaces a file so that a reader, or a crash, sees the
// old content or the new one and never a part of either.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data. The new content goes to a fresh
// temporary file beside path, created with O_EXCL and mode (so it is never
// written through a file or symlink already there, and never readable
// wider than mode, whatever the umask or the old file's mode), is synced,
// then renamed over path; the directory is synced so the rename survives a
// crash. On error path is left as it was and no temporary file remains.
func Write(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	var suffix [6]byte
	rand.Read(suffix[:])
	tmp := filepath.Join(dir, "."+filepath.Base(path)+"."+hex.EncodeToString(suffix[:])+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode&fs.ModePerm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err == nil {
		// The umask may have narrowed mode at creation; the mode asked for
		// is what the file gets, no wider.
		if err = f.Chmod(mode & fs.ModePerm); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
