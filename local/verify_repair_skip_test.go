package local

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
)

// TestVerifyRepairSkippedNotRepaired: a leftover that Verify's repair,
// looking again under the key's stripe lock, finds no longer a leftover
// is left alone and not reported (neither repaired, which it was not, nor
// as a problem, which it no longer is): a retired version whose
// grace restarted since the age check (a Put replaced it while a stale
// record named it current), and an orphan version a Put pointed at
// meanwhile (a commit that outlived the grace). The hooks are Verify's
// own steps, with the change made where the problem is found and the
// lock not yet taken.
func TestVerifyRepairSkippedNotRepaired(t *testing.T) {
	const grace = time.Hour
	long := time.Now().Add(-2 * grace)
	for _, tc := range []struct {
		name string
		// setup leaves the version old found as a problem by step.
		setup  func(t *testing.T, c *Cache, old string)
		step   func(s *scan) func(found) error
		meddle func(t *testing.T, c *Cache, old string)
	}{
		{
			name: "retired, grace restarted",
			setup: func(t *testing.T, c *Cache, old string) {
				if _, err := c.Put(t.Context(), "k", smallSrc(t, "new"), ""); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(filepath.Join(c.retiredDir, old), long, long); err != nil {
					t.Fatal(err)
				}
			},
			step: func(s *scan) func(found) error { return s.retired },
			meddle: func(t *testing.T, c *Cache, old string) {
				if err := c.retire(old); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "orphan, pointed at meanwhile",
			setup: func(t *testing.T, c *Cache, old string) {
				if err := removePointer(filepath.Join(c.indexDir, nameOf("k"))); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(filepath.Join(c.dataDir, old), long, long); err != nil {
					t.Fatal(err)
				}
			},
			step: func(s *scan) func(found) error { return s.orphans },
			meddle: func(t *testing.T, c *Cache, old string) {
				lock, err := c.lockStripe(t.Context(), nameOf("k"))
				if err != nil {
					t.Fatal(err)
				}
				defer lock.Unlock()
				if err := c.swap(nameOf("k"), old); err != nil {
					t.Fatal(err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := open(t, Options{Grace: grace})
			ctx := t.Context()
			if _, err := c.Put(ctx, "k", smallSrc(t, "old"), ""); err != nil {
				t.Fatal(err)
			}
			old, _ := c.current(nameOf("k"))
			tc.setup(t, c, old)
			s := &scan{c: c, stop: ctx.Err, grace: grace, settle: stagingSettle, wait: ctx}
			v := &verifier{c: c, opts: VerifyOptions{Repair: true}, report: tiercache.CheckReport{Problems: []tiercache.Problem{}}}
			found := false
			err := tc.step(s)(func(p *tiercache.Problem, remove func() error) error {
				if p != nil && p.Path == filepath.Join(c.dataDir, old) {
					found = true
					tc.meddle(t, c, old)
				}
				if p != nil {
					v.add(*p, remove)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !found {
				t.Fatal("the step did not find the version as a problem")
			}
			if _, err := os.Lstat(filepath.Join(c.dataDir, old)); err != nil {
				t.Fatalf("the version was removed: %v", err)
			}
			for _, p := range v.report.Problems {
				if p.Repaired {
					t.Errorf("reported %+v repaired, but it was left in place", p)
				} else {
					t.Errorf("reported %+v, which is no longer a leftover", p)
				}
			}
		})
	}
}

// TestVerifyRepairTrashRefused: a trash entry that cannot be deleted (on
// Windows, a file a running build holds open) is reported unrepaired,
// and Verify goes on to return its report rather than fail.
func TestVerifyRepairTrashRefused(t *testing.T) {
	c, err := Open(t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(t.Context(), "k", smallSrc(t, "t"), ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	orig := removeTrash
	removeTrash = func(string) error { return errors.New("the process cannot access the file") }
	t.Cleanup(func() { removeTrash = orig })
	rep, err := c.Verify(t.Context(), VerifyOptions{Repair: true, Grace: time.Nanosecond})
	if err != nil {
		t.Fatalf("Verify: %v; want a report", err)
	}
	found := false
	for _, p := range rep.Problems {
		if p.Kind == ProblemTrash && !p.Repaired && strings.Contains(p.Detail, "cannot access") {
			found = true
		}
	}
	if !found {
		t.Errorf("problems %+v; want the trash reported unrepaired", rep.Problems)
	}
}
