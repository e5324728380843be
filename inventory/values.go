package inventory

import (
	"fmt"
	"math"
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

// Percent is a percentage written as a number or with a % sign ("80",
// "85%", "92.5%").
type Percent float64

// UnmarshalText parses "80", "85%", "92.5%".
func (p *Percent) UnmarshalText(b []byte) error {
	s := strings.TrimSuffix(strings.TrimSpace(string(b)), "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("invalid percentage %q (use 80 or 80%%)", string(b))
	}
	*p = Percent(v)
	return nil
}

// MarshalText renders the percentage as it parses.
func (p Percent) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(p), 'f', -1, 64) + "%"), nil
}

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

// Expires is nginx's expires value: "off", "epoch", "max", a time from
// the answer ("1h", "30d", "-1": seconds when no unit) or "modified TIME"
// (from the answer's Last-Modified). Times take nginx's units: ms, s, m,
// h, d, w, M (30 days) and y (365 days), combined as "1h30m".
type Expires struct {
	// Mode is "off", "epoch", "max", "access" or "modified".
	Mode string
	// Seconds is the offset of access and modified (negative: in the past,
	// which sends Cache-Control: no-cache).
	Seconds int64
}

// UnmarshalText parses an expires value.
func (e *Expires) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch s {
	case "off", "epoch", "max":
		*e = Expires{Mode: s}
		return nil
	case "":
		return fmt.Errorf("empty expires (use off, epoch, max, 1h or modified 1h)")
	}
	mode := "access"
	if rest, ok := strings.CutPrefix(s, "modified"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		mode, s = "modified", strings.TrimSpace(rest)
	}
	if strings.HasPrefix(s, "@") {
		return fmt.Errorf("expires %q: a time of day (@) is not supported; use a duration such as 1h", string(b))
	}
	n, err := parseNginxTime(s)
	if err != nil {
		return fmt.Errorf("invalid expires %q: %v (use off, epoch, max, 1h, -1 or modified 1h)", string(b), err)
	}
	*e = Expires{Mode: mode, Seconds: n}
	return nil
}

// MarshalText renders the value the way it parses.
func (e Expires) MarshalText() ([]byte, error) {
	switch e.Mode {
	case "access":
		return []byte(strconv.FormatInt(e.Seconds, 10) + "s"), nil
	case "modified":
		return []byte("modified " + strconv.FormatInt(e.Seconds, 10) + "s"), nil
	}
	return []byte(e.Mode), nil
}

// parseNginxTime parses nginx's time syntax in seconds: an optional '-',
// then numbers each with a unit (a bare number is seconds), at most ten
// years in magnitude.
func parseNginxTime(s string) (int64, error) {
	neg := false
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		neg, s = true, rest
	}
	if s == "" {
		return 0, fmt.Errorf("no number")
	}
	const maxSeconds = 10 * 365 * 86400
	var total, ms int64
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 10 {
			return 0, fmt.Errorf("expected a number at %q", s)
		}
		n, _ := strconv.ParseInt(s[:i], 10, 64)
		s = s[i:]
		unit := int64(1)
		switch {
		case strings.HasPrefix(s, "ms"):
			s = s[2:]
			ms += n
			unit = 0
		case s == "":
		default:
			mult := map[byte]int64{'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 7 * 86400, 'M': 30 * 86400, 'y': 365 * 86400}[s[0]]
			if mult == 0 {
				return 0, fmt.Errorf("unknown unit %q", s[:1])
			}
			unit, s = mult, s[1:]
		}
		total += n * unit
		if total > maxSeconds {
			return 0, fmt.Errorf("more than ten years")
		}
	}
	total += ms / 1000
	if neg {
		total = -total
	}
	return total, nil
}
