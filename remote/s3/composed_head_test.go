package s3

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// TestComposedCheckTransportFailure: when the HEAD that checks an object
// composed of copied parts fails in transport (503 after every retry),
// the Put deletes the uncommitted object and reports that failure, not
// an integrity failure of the server.
func TestComposedCheckTransportFailure(t *testing.T) {
	e := newEnv(t)
	s := e.store(t, nil)
	base := randBytes(70, 12*mib)
	b := putBase(t, s, "base", base)
	data, runs := compose(base, 71, piece{fresh: mib}, piece{baseOff: 0, n: 11 * mib})

	e.rec.setFault(func(req *http.Request, _ int) *http.Response {
		if req.Method == http.MethodHead && strings.Contains(req.URL.Path, "/ci/data/next/") {
			return slowDown(req)
		}
		return nil
	})
	r := newReuser(b, data, runs, mib)
	_, err := s.Put(bg, remote.Meta{Key: "next", Size: 2}, r)
	e.rec.setFault(nil)
	if copied(r) == 0 {
		t.Fatal("nothing copied: the composed object was not checked")
	}
	if err == nil || errors.Is(err, tiercache.ErrIntegrity) || !strings.Contains(err.Error(), "503") {
		t.Errorf("Put whose check of the composed object got 503s: %v; want the 503, not an integrity error", err)
	}
	if objs := e.objects(t, "ci/data/next/"); len(objs) != 0 {
		t.Errorf("uncommitted data objects left: %q", objs)
	}
	if _, err := s.Stat(bg, "next"); !errors.Is(err, tiercache.ErrNotFound) {
		t.Errorf("Stat after the failed Put: %v, want a miss", err)
	}
}
