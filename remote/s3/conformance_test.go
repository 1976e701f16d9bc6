package s3

import (
	"testing"

	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/storetest"
)

// TestConformance runs the remote.Store suite on a fresh bucket of the
// shared MinIO server per subtest.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) remote.Store { return newEnv(t).store(t, nil) })
}
