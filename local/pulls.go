package local

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tiercache/tiercache"
)

// pullsDir holds one small file per directory pulled into: the key that
// last restored it. A push from that directory takes that entry as the
// base whose unchanged frames it need not upload (see NotePull).
const pullsDir = "pulls"

// pullRecord is the file recording the last pull into paths, named by
// the SHA-256 of their absolute, cleaned forms (any length, any bytes).
func (c *Cache) pullRecord(paths []string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		h.Write([]byte(abs)) // Abs cleans
		h.Write([]byte{0})
	}
	return filepath.Join(c.root, pullsDir, hex.EncodeToString(h.Sum(nil)[:16])), nil
}

// NotePull records that key was just restored into paths (a directory,
// or the paths of an entry of several), so that a later push of the same
// paths on this machine can find the entry its tree came from
// (LastPull). The record is a hint, not an entry: it is overwritten by
// the next pull into dir, and a lost or stale one costs only a larger
// upload.
func (c *Cache) NotePull(paths []string, scope, key string) error {
	if err := tiercache.ValidateKey(key); err != nil {
		return err
	}
	if err := tiercache.ValidateScope(scope); err != nil {
		return err
	}
	p, err := c.pullRecord(paths)
	if err == nil {
		err = replaceFile(p, tiercache.ScopedKey(scope, key)+"\n")
	}
	if err == nil {
		c.own(p)
	}
	if err != nil {
		return fmt.Errorf("local tier: record the pull of %q: %w", key, err)
	}
	return nil
}

// LastPull returns the scope and key NotePull last recorded for paths; ok
// is false if there is none (or it is not a valid one).
func (c *Cache) LastPull(paths []string) (scope, key string, ok bool, err error) {
	p, err := c.pullRecord(paths)
	if err != nil {
		return "", "", false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("local tier: read the last pull record: %w", err)
	}
	stored := strings.TrimSuffix(string(b), "\n")
	if tiercache.ValidateStoredKey(stored) != nil {
		return "", "", false, nil
	}
	scope, key = tiercache.SplitStoredKey(stored)
	return scope, key, true, nil
}
