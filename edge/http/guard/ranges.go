package guard

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// MaxRanges bounds the byte ranges of one request once coalesced, as nginx's
// max_ranges (Apache httpd's MaxRanges is 200): a request asking for more
// gets the whole representation (200), as nginx answers.
const MaxRanges = 16

type byteRange struct{ start, end int64 } // end inclusive; math.MaxInt64: open

// CoalesceRanges rewrites a Range header so that no client can make a small
// file into a large multipart answer: overlapping and adjacent ranges are
// merged (RFC 9110 14.2 lets a server do so), suffix ranges reduced to the
// longest, and when more than max ranges remain, ok is false: the caller
// drops the header and serves the whole. A header that is not a valid
// bytes range set is returned unchanged, for the server to answer as it
// does (416 or the whole).
func CoalesceRanges(h string, max int) (out string, ok bool) {
	const unit = "bytes="
	if len(h) < len(unit) || !strings.EqualFold(h[:len(unit)], unit) {
		return h, true
	}
	var abs []byteRange
	suffix := int64(-1)
	for spec := range strings.SplitSeq(h[len(unit):], ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		dash := strings.IndexByte(spec, '-')
		if dash < 0 {
			return h, true
		}
		first, last := strings.TrimSpace(spec[:dash]), strings.TrimSpace(spec[dash+1:])
		if first == "" {
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n <= 0 {
				return h, true
			}
			suffix = max64(suffix, n)
			continue
		}
		a, err := strconv.ParseInt(first, 10, 64)
		if err != nil || a < 0 {
			return h, true
		}
		b := int64(math.MaxInt64)
		if last != "" {
			if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
				return h, true
			}
		}
		abs = append(abs, byteRange{a, b})
	}
	if len(abs) == 0 && suffix < 0 {
		return h, true
	}
	slices.SortFunc(abs, func(x, y byteRange) int {
		switch {
		case x.start < y.start:
			return -1
		case x.start > y.start:
			return 1
		}
		return 0
	})
	merged := abs[:0]
	for _, r := range abs {
		if n := len(merged); n > 0 && (merged[n-1].end == math.MaxInt64 || r.start <= merged[n-1].end+1) {
			merged[n-1].end = max64(merged[n-1].end, r.end)
			continue
		}
		merged = append(merged, r)
	}
	count := len(merged)
	if suffix > 0 {
		count++
	}
	if count > max {
		return "", false
	}
	b := make([]byte, 0, len(unit)+count*12)
	b = append(b, unit...)
	for i, r := range merged {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, r.start, 10)
		b = append(b, '-')
		if r.end != math.MaxInt64 {
			b = strconv.AppendInt(b, r.end, 10)
		}
	}
	if suffix > 0 {
		if len(merged) > 0 {
			b = append(b, ',')
		}
		b = append(b, '-')
		b = strconv.AppendInt(b, suffix, 10)
	}
	return string(b), true
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
