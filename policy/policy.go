// Package policy holds the LRU limits every tier prunes to and the pure
// victim selection they share. It does no I/O, takes no locks and reads
// no clock: callers gather their entries, ask Victims which to evict as of
// a time they choose (a remote tier's own clock, say), and evict them.
package policy

import (
	"fmt"
	"slices"
	"time"

	"github.com/tiercache/tiercache"
)

// Limits bounds one tier. A zero field means unlimited. An entry is
// evicted if any limit says so.
type Limits struct {
	// MaxEntries is the most entries the tier may hold.
	MaxEntries int `json:"max_entries"`
	// MaxBytes is the most bytes of tree data the tier may hold.
	MaxBytes int64 `json:"max_bytes"`
	// MaxAge is the longest an entry may stay unused: one whose last
	// access is more than MaxAge before the time victims are chosen at
	// goes, however much room is left.
	MaxAge time.Duration `json:"max_age,omitempty"`
	// OnEvict, if set, is called by a tier's prune once for each entry
	// it evicted by these limits, once the eviction took effect (a
	// remote store may report a batch of deletions together), in the
	// order evicted, from the goroutine that called the prune.
	// The Item is the entry as the tier ranked it: Key its stored key
	// (see tiercache.ScopedKey), Size as counted against MaxBytes. A
	// remote tier that cannot tell an evicted entry's key (its record
	// unreadable) reports Key "". What a prune collects as garbage
	// (leftovers of interrupted writes, broken entries) is not reported.
	// A hook rather than a result, so that every Store wrapper passes it
	// on as it passes the limits.
	OnEvict func(Item) `json:"-"`
	// OnWarn, if set, is called by a tier's prune with what its cleanup
	// of leftovers could not do and the prune went on without (a remote
	// that refuses to list or abort stale multipart uploads, say), from
	// the goroutine that called the prune. Left unset, such failures
	// are dropped: fsck reports what they leave.
	OnWarn func(error) `json:"-"`
}

// Unlimited reports whether l imposes no limit at all.
func (l Limits) Unlimited() bool { return l.MaxEntries == 0 && l.MaxBytes == 0 && l.MaxAge == 0 }

// Report reports the eviction of it to OnEvict, if set.
func (l Limits) Report(it Item) {
	if l.OnEvict != nil {
		l.OnEvict(it)
	}
}

// Warn passes err to l.OnWarn, if set.
func (l Limits) Warn(err error) {
	if l.OnWarn != nil {
		l.OnWarn(err)
	}
}

// Validate rejects negative limits with an error wrapping
// tiercache.ErrInvalidArgument.
func (l Limits) Validate() error {
	if l.MaxEntries < 0 {
		return fmt.Errorf("%w: max entries %d is negative", tiercache.ErrInvalidArgument, l.MaxEntries)
	}
	if l.MaxBytes < 0 {
		return fmt.Errorf("%w: max bytes %d is negative", tiercache.ErrInvalidArgument, l.MaxBytes)
	}
	if l.MaxAge < 0 {
		return fmt.Errorf("%w: max age %s is negative", tiercache.ErrInvalidArgument, l.MaxAge)
	}
	return nil
}

// Item is what victim selection needs to know of an entry.
type Item struct {
	// Key identifies the entry; ties in LastAccess are broken by Key so
	// the choice is deterministic.
	Key string
	// Size is the entry's size in bytes as counted against MaxBytes.
	Size int64
	// LastAccess orders eviction: the least recent goes first.
	LastAccess time.Time
}

// Victims returns the items to evict so that the rest satisfy l at time
// now: the least recently accessed first, as few as possible in that
// order. With MaxAge, every item last accessed more than MaxAge before
// now is a victim; an access after now (a clock that differs from the
// one that recorded it) counts as recent. It does not modify items.
// Invalid limits return an error.
func Victims(items []Item, l Limits, now time.Time) ([]Item, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if l.Unlimited() {
		return nil, nil
	}
	var total int64
	var stale bool
	for _, it := range items {
		if it.Size < 0 {
			return nil, fmt.Errorf("%w: item %q has negative size %d", tiercache.ErrInvalidArgument, it.Key, it.Size)
		}
		total += it.Size
		stale = stale || tooOld(it, l, now)
	}
	if !stale && fits(len(items), total, l) {
		return nil, nil
	}
	order := slices.Clone(items)
	slices.SortFunc(order, func(a, b Item) int {
		if c := a.LastAccess.Compare(b.LastAccess); c != 0 {
			return c
		}
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	n := len(order)
	var victims []Item
	// The stale items come first in this order, so one pass evicts
	// them and then as many more as the other limits need.
	for _, it := range order {
		if !tooOld(it, l, now) && fits(n, total, l) {
			break
		}
		victims = append(victims, it)
		n--
		total -= it.Size
	}
	return victims, nil
}

func fits(n int, total int64, l Limits) bool {
	return (l.MaxEntries == 0 || n <= l.MaxEntries) && (l.MaxBytes == 0 || total <= l.MaxBytes)
}

// tooOld reports whether l's MaxAge evicts it at now.
func tooOld(it Item, l Limits, now time.Time) bool {
	return l.MaxAge > 0 && now.Sub(it.LastAccess) > l.MaxAge
}
