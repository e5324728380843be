// Package secretfile reads small secret files (tunnel pre-shared secrets)
// the way a careful daemon must: it refuses a file that group or others can
// read or write, refuses an empty or too-short secret, and never puts the
// content in an error. Callers must not log what it returns.
package secretfile

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"syscall"
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
	b, err := ReadFile(path, 0o077, "secret file")
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) < MinLen {
		return nil, fmt.Errorf("secret file %s: %d bytes: %w (need at least %d; generate one with: offedge secrets new %s, or pwgen 32 1 > %s)", path, len(b), ErrTooShort, MinLen, path, path)
	}
	return b, nil
}

// ReadFile returns the whole content of a file holding key material (a
// secret, a private key) the way [Read] checks it: a regular file, opened
// once, whose mode — of the opened file, not of the path, so that a file
// swapped between a check and the open cannot slip through — grants none of
// the bits in forbidden (0o077: nothing to group or others; 0o007: the
// group may read, as Debian's ssl-cert group does), and at most MaxLen
// bytes. what names the file in errors ("secret file", "certificate key");
// an error never carries the content.
func ReadFile(path string, forbidden os.FileMode, what string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO put in place of the file must not block
	// (it is then refused as not regular); regular files ignore the flag.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file (%s)", what, path, st.Mode().Type())
	}
	if perm := st.Mode().Perm(); perm&forbidden != 0 {
		fix := "chmod 600 " + path
		if forbidden&0o040 == 0 {
			fix = "chmod 640 " + path + " (group-readable keys are allowed here), or chmod 600"
		}
		return nil, fmt.Errorf("%s %s: mode %04o: %w; fix with: %s", what, path, perm, ErrPermissions, fix)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxLen+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if len(b) > MaxLen {
		clear(b)
		return nil, fmt.Errorf("%s %s: larger than %d bytes; is it the right file?", what, path, MaxLen)
	}
	return b, nil
}

// NewLen is the number of random bytes [Generate] draws for a new secret
// (256 bits); a secret file shorter than this, or that [Weakness] judges
// low in entropy, is accepted with a warning.
const NewLen = 32

// Generate writes a new secret to path: NewLen bytes from crypto/rand,
// base64url-encoded (43 characters) with a trailing newline, mode 0600. It
// refuses to replace an existing file (O_EXCL, so never through a symlink).
func Generate(path string) error {
	b := make([]byte, NewLen)
	rand.Read(b)
	enc := base64.RawURLEncoding.AppendEncode(nil, b)
	clear(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("new secret: %w", err)
	}
	_, err = f.Write(append(enc, '\n'))
	clear(enc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("new secret %s: %w", path, err)
	}
	return nil
}

// Weakness says why secret looks guessable ("" when it does not): shorter
// than NewLen bytes, or an estimated entropy under 128 bits. The estimate
// is length × log2 of the smaller of the alphabet its character classes
// suggest and the number of distinct bytes it uses, so that "aaaa…" or a
// repeated word scores low; it never says a secret is strong, only that it
// is not obviously weak.
func Weakness(secret []byte) string {
	if len(secret) < NewLen {
		return fmt.Sprintf("%d bytes, fewer than the %d random bytes of a new secret", len(secret), NewLen)
	}
	var lower, upper, digit, other bool
	distinct := map[byte]bool{}
	for _, c := range secret {
		distinct[c] = true
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		default:
			other = true
		}
	}
	alphabet := 0
	for _, c := range []struct {
		has bool
		n   int
	}{{lower, 26}, {upper, 26}, {digit, 10}, {other, 33}} {
		if c.has {
			alphabet += c.n
		}
	}
	if other && !lower && !upper && !digit {
		alphabet = 256 // binary
	}
	alphabet = min(alphabet, len(distinct))
	if bits := float64(len(secret)) * math.Log2(float64(max(alphabet, 1))); bits < 128 {
		return fmt.Sprintf("about %.0f bits of entropy (%d distinct characters), under 128", bits, len(distinct))
	}
	return ""
}
