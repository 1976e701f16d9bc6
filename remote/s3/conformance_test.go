package s3

import (
	"sync"
	"testing"

	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/storetest"
)

// TestConformance runs the remote.Store suite on a fresh bucket of the
// shared MinIO server per subtest.
func TestConformance(t *testing.T) {
	var envs sync.Map // *Store -> *env, to open read-only views of a store's bucket
	storetest.Run(t,
		func(t *testing.T) remote.Store {
			e := newEnv(t)
			// Every Touch is recorded, so LRU order follows the suite's
			// touches however close together they come.
			s := e.store(t, func(c *Config) { c.TouchInterval = -1 })
			envs.Store(s, e)
			return s
		},
		func(t *testing.T, rw remote.Store) remote.Store {
			e, ok := envs.Load(rw)
			if !ok {
				t.Fatalf("read-only view of a store the harness did not make: %T", rw)
			}
			return e.(*env).store(t, func(c *Config) { c.ReadOnly = true })
		})
}
