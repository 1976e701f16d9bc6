package s3

import (
	"testing"

	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/storetest"
)

// TestBaseConformance runs the remote.BaseStore suite on a fresh bucket
// of the shared MinIO server per subtest, in the smallest parts S3
// allows, so the suite's 24 MiB bases span several copyable parts.
func TestBaseConformance(t *testing.T) {
	storetest.RunBase(t, func(t *testing.T) remote.BaseStore {
		return newEnv(t).store(t, func(c *Config) { c.PartSize = MinPartSize })
	})
}
