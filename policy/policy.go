// Package policy holds the LRU limits every tier prunes to and the pure
// victim selection they share. It does no I/O and takes no locks: callers
// gather their entries, ask Victims which to evict, and evict them.
package policy

import (
	"fmt"
	"slices"
	"time"

	"github.com/tiercache/tiercache"
)

// Limits bounds one tier. A zero field means unlimited.
type Limits struct {
	// MaxEntries is the most entries the tier may hold.
	MaxEntries int `json:"max_entries"`
	// MaxBytes is the most bytes of tree data the tier may hold.
	MaxBytes int64 `json:"max_bytes"`
}

// Unlimited reports whether l imposes no limit at all.
func (l Limits) Unlimited() bool { return l.MaxEntries == 0 && l.MaxBytes == 0 }

// Validate rejects negative limits with an error wrapping
// tiercache.ErrInvalidArgument.
func (l Limits) Validate() error {
	if l.MaxEntries < 0 {
		return fmt.Errorf("%w: max entries %d is negative", tiercache.ErrInvalidArgument, l.MaxEntries)
	}
	if l.MaxBytes < 0 {
		return fmt.Errorf("%w: max bytes %d is negative", tiercache.ErrInvalidArgument, l.MaxBytes)
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

// Victims returns the items to evict so that the rest satisfy l: the least
// recently accessed first, as few as possible in that order. It does not
// modify items. Invalid limits return an error.
func Victims(items []Item, l Limits) ([]Item, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if l.Unlimited() {
		return nil, nil
	}
	var total int64
	for _, it := range items {
		total += it.Size
	}
	if fits(len(items), total, l) {
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
	for _, it := range order {
		if fits(n, total, l) {
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
