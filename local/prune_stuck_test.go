package local

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestPruneGoesPastAnEntryItCannotEvict: a victim whose eviction fails (a
// lock file another user left unusable; here a directory in its place)
// does not stop the prune: the other victims are evicted, and the
// failure is reported naming the key.
func TestPruneGoesPastAnEntryItCannotEvict(t *testing.T) {
	c, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	src := smallSrc(t, "p")
	for i := range 4 {
		if _, err := c.Put(t.Context(), fmt.Sprint("k", i), src, ""); err != nil {
			t.Fatal(err)
		}
	}
	stuck := c.stripeOf(c.nameOf("k0"))
	for i := 1; i < 4; i++ {
		if c.stripeOf(c.nameOf(fmt.Sprint("k", i))) == stuck {
			t.Fatal("two keys share k0's stripe: choose other names")
		}
	}
	if err := os.Remove(stuck); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.Mkdir(stuck, 0o755); err != nil {
		t.Fatal(err)
	}
	n, err := c.Prune(t.Context(), 0, 1)
	if n != 3 || err == nil || !strings.Contains(err.Error(), `evict "k0"`) {
		t.Fatalf("prune: %d evicted, %v; want the 3 others evicted and an error naming k0", n, err)
	}
	if keys := listKeys(t, c); len(keys) != 1 || keys[0] != "k0" {
		t.Errorf("left: %v, want k0 alone", keys)
	}
}
