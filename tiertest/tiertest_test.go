package tiertest

import (
	"errors"
	"testing"

	"github.com/tiercache/tiercache"
)

func TestKeyTables(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range WeirdKeys() {
		if err := tiercache.ValidateKey(k); err != nil {
			t.Errorf("weird key %q is invalid: %v", k, err)
		}
		if seen[k] {
			t.Errorf("weird key %q repeated", k)
		}
		seen[k] = true
	}
	for _, k := range InvalidKeys() {
		if err := tiercache.ValidateKey(k); !errors.Is(err, tiercache.ErrInvalidKey) {
			t.Errorf("invalid key %q passes ValidateKey: %v", k, err)
		}
	}
}
