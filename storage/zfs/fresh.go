package zfs

import "time"

// Freshness is what a replica's snapshots say about its copy.
type Freshness struct {
	// Newest is the newest snapshot on the target (nil: none).
	Newest *Snapshot
	// Common is the newest snapshot the target shares with the source, by
	// GUID (the identity zfs send -i needs; a snapshot of the same name
	// but another GUID is not common). Nil when none is shared or the
	// source was not listed.
	Common *Snapshot
	// SourceListed says the source's snapshots were compared.
	SourceListed bool
}

// Fresh compares the target's snapshots with the source's. source nil
// means the source could not be listed from here (it is not an offedge
// node): only the target's newest snapshot is known.
func Fresh(target, source []Snapshot) Freshness {
	var f Freshness
	for i := range target {
		if f.Newest == nil || !target[i].Created.Before(f.Newest.Created) {
			f.Newest = &target[i]
		}
	}
	if source == nil {
		return f
	}
	f.SourceListed = true
	onSource := make(map[uint64]bool, len(source))
	for _, s := range source {
		onSource[s.GUID] = true
	}
	for i := range target {
		if onSource[target[i].GUID] && (f.Common == nil || !target[i].Created.Before(f.Common.Created)) {
			f.Common = &target[i]
		}
	}
	return f
}

// Lag is the age of the newest copy at now; ok is false when the target
// has no snapshot at all.
func (f Freshness) Lag(now time.Time) (time.Duration, bool) {
	if f.Newest == nil {
		return 0, false
	}
	return max(now.Sub(f.Newest.Created), 0), true
}

// CommonAge is the age of the newest common snapshot; ok is false when
// there is none (or the source was not listed).
func (f Freshness) CommonAge(now time.Time) (time.Duration, bool) {
	if f.Common == nil {
		return 0, false
	}
	return max(now.Sub(f.Common.Created), 0), true
}

// NoCommon says the source was listed and shares no snapshot with the
// target: the next incremental send cannot run (the source pruned the
// common snapshot: products to ovh3 stalled a week in 2023-06).
func (f Freshness) NoCommon() bool { return f.SourceListed && f.Common == nil }
