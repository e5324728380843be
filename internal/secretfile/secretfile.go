// Package secretfile reads small secret files (tunnel pre-shared secrets)
// the way a careful daemon must: it refuses a file that group or others can
// read or write, refuses an empty or too-short secret, and never puts the
// content in an error. Callers must not log what it returns.
package secretfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// MinLen is the shortest secret accepted, in bytes, after the trailing
// newline is removed. `pwgen 32` gives 32.
const MinLen = 16

// MaxLen bounds how much of a file is read; a secret file larger than this
// is refused as a probable mistake (a certificate bundle, a log file).
const MaxLen = 64 << 10

// ErrPermissions is wrapped by the error [Read] returns for a file readable
// or writable by group or others.
var ErrPermissions = errors.New("secret file is accessible by group or others")

// ErrTooShort is wrapped by the error [Read] returns for an empty or short secret.
var ErrTooShort = errors.New("secret is too short")

// Read returns the secret stored in path, without its trailing newline (LF
// or CRLF). The file must be a regular file whose mode grants nothing to
// group or others (0600 or 0400); the error then names the path and the fix.
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so that the mode checked is the mode
	// of the bytes read.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %s: not a regular file (%s)", path, st.Mode().Type())
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s: mode %04o: %w; fix with: chmod 600 %s", path, perm, ErrPermissions, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxLen+1))
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	if len(b) > MaxLen {
		return nil, fmt.Errorf("secret file %s: larger than %d bytes; is it the right file?", path, MaxLen)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) < MinLen {
		return nil, fmt.Errorf("secret file %s: %d bytes: %w (need at least %d; generate one with: pwgen 32 1 > %s)", path, len(b), ErrTooShort, MinLen, path)
	}
	return b, nil
}
