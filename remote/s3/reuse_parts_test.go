package s3

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tiercache/tiercache/remote/storetest"
)

// rangeReuser is a storetest.Reuser that records where the store says
// each copied range lies.
type rangeReuser struct {
	*storetest.Reuser
	mu     sync.Mutex
	ranges []storetest.Span // Off and N only
}

func (r *rangeReuser) Copied(off, n int64) {
	r.Reuser.Copied(off, n)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ranges = append(r.ranges, storetest.Span{Off: off, N: n})
}

// partNumbers is the distinct part numbers of the data object's
// UploadPart and UploadPartCopy requests e recorded.
func partNumbers(e *env) map[string]bool {
	nums := map[string]bool{}
	for _, r := range e.rec.requests(func(r request) bool { return r.isData() && r.method == "PUT" }) {
		if q, _ := url.ParseQuery(r.query); q.Get("partNumber") != "" {
			nums[q.Get("partNumber")] = true
		}
	}
	return nums
}

// TestReusePartBudget: copied and uploaded runs alternating every 5 MiB
// make parts smaller than the part size, so a stream that a plain Put
// fits in the part limit would need more with every run copied. The
// Put stops copying while the parts left still hold the largest stream
// a plain Put could store, uploads the rest in parts of twice the part
// size, and succeeds, saying why copying stopped; what it copied before
// is reported with where it lies.
func TestReusePartBudget(t *testing.T) {
	const limit, partSize = 10, 8 * mib
	defer func(old int32) { partLimit = old }(partLimit)
	partLimit = limit
	for _, conc := range []int{1, 3} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			e := newEnv(t)
			s := e.store(t, func(c *Config) { c.PartSize, c.Concurrency = partSize, conc })
			base := randBytes(90, 40*mib)
			b := putBase(t, s, "base", base)
			// 80 MiB, what a plain Put stores in 10 parts of 8 MiB:
			// 5 MiB fresh, 5 MiB of the base, and so on.
			var pieces []piece
			for i := range 8 {
				pieces = append(pieces, piece{fresh: 5 * mib}, piece{baseOff: int64(i) * 5 * mib, n: 5 * mib})
			}
			data, runs := compose(base, 91, pieces...)
			if len(data) != limit*partSize {
				t.Fatalf("stream of %d bytes, want %d", len(data), limit*partSize)
			}
			e.rec.reset()
			r := &rangeReuser{Reuser: newReuser(b, data, runs, mib)}
			putReusing(t, s, "next", r, data)

			n := len(partNumbers(e))
			if n > limit {
				t.Errorf("the upload has %d parts, over the limit of %d", n, limit)
			}
			t.Logf("%d parts, %d bytes copied", n, copied(r.Reuser))
			f := r.Failures()
			if len(f) != 1 || !strings.Contains(f[0].Error(), fmt.Sprintf("of the %d parts", limit)) {
				t.Errorf("CopyFailed calls: %v; want one saying the part budget ran low", f)
			}
			got := copied(r.Reuser)
			if got == 0 || got >= int64(len(data))/2 {
				t.Errorf("copied %d bytes of the %d the base repeats; want some, before copying stopped", got, len(data)/2)
			}
			var sum int64
			for _, c := range r.ranges {
				sum += c.N
				if !bytes.Equal(data[c.Off:c.Off+c.N], base[c.Off/(2*5*mib)*5*mib:][:c.N]) || c.Off%(10*mib) != 5*mib {
					t.Errorf("copied range %d+%d is not one of the base's runs", c.Off, c.N)
				}
			}
			if sum != got {
				t.Errorf("the copied ranges sum to %d bytes, the copied count to %d", sum, got)
			}
		})
	}
}
