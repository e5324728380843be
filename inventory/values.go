package inventory

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Pos is a position in an inventory file.
type Pos struct {
	File string
	Line int
	Col  int
}

// String renders "file:line:col" (or "file" alone when there is no line).
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	if p.Col == 0 {
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// IsZero reports whether p is unset.
func (p Pos) IsZero() bool { return p.File == "" && p.Line == 0 }

// Duration is a time.Duration written as Go durations ("30s", "1h30m") or with
// a day suffix ("7d").
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses "90s", "5m", "1h", "7d".
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return fmt.Errorf("empty duration")
	}
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid duration %q (use 30s, 5m, 2h or 7d)", s)
		}
		*d = Duration(n * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q (use 30s, 5m, 2h or 7d)", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText renders the duration the way it parses.
func (d Duration) MarshalText() ([]byte, error) {
	v := time.Duration(d)
	if v != 0 && v%(24*time.Hour) == 0 {
		return []byte(strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"), nil
	}
	return []byte(v.String()), nil
}

// String renders the duration.
func (d Duration) String() string { b, _ := d.MarshalText(); return string(b) }

// Size is a byte count written as a number with an optional k, m or g suffix
// (powers of 1024, as nginx: "256k", "1m", "10g").
type Size int64

// UnmarshalText parses "512", "256k", "1m", "10g".
func (s *Size) UnmarshalText(b []byte) error {
	t := strings.ToLower(strings.TrimSpace(string(b)))
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, strings.TrimSuffix(t, "m")
	case strings.HasSuffix(t, "g"):
		mult, t = 1<<30, strings.TrimSuffix(t, "g")
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("invalid size %q (use 512, 256k, 1m or 10g)", string(b))
	}
	*s = Size(n * mult)
	return nil
}

// MarshalText renders the size with the largest exact suffix.
func (s Size) MarshalText() ([]byte, error) {
	n := int64(s)
	switch {
	case n != 0 && n%(1<<30) == 0:
		return []byte(strconv.FormatInt(n>>30, 10) + "g"), nil
	case n != 0 && n%(1<<20) == 0:
		return []byte(strconv.FormatInt(n>>20, 10) + "m"), nil
	case n != 0 && n%(1<<10) == 0:
		return []byte(strconv.FormatInt(n>>10, 10) + "k"), nil
	}
	return []byte(strconv.FormatInt(n, 10)), nil
}

// String renders the size.
func (s Size) String() string { b, _ := s.MarshalText(); return string(b) }
