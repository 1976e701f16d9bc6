package tiered

import (
	"errors"
	"strings"
	"testing"

	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/remote"
)

// TestPushFramesReusedCountsCopies: FramesReused counts the frames the
// remote copied (none of their bytes sent), FramesKept those not
// compressed again. A store that refuses every copy copies none, though
// the base holds the frames and its local copy spares their compression
// (TestPushLocalBaseWithoutCopies checks a store that cannot copy).
func TestPushFramesReusedCountsCopies(t *testing.T) {
	t.Run("copies", func(t *testing.T) {
		_, c, src := pushV1(t)
		reuseChange(t, src, "d4/f100")
		res, err := c.Push(t.Context(), "v2", src, PushOptions{Base: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		// The memory store copies runs of any length: every frame
		// found is copied, and kept from the local copy.
		if res.FramesReused < 2 || res.FramesKept != res.FramesReused || res.Copied == 0 {
			t.Errorf("push with base v1: %d frames reused, %d kept, %d bytes copied; want as many reused as kept", res.FramesReused, res.FramesKept, res.Copied)
		}
	})
	t.Run("refused", func(t *testing.T) {
		store, c, src := pushV1(t)
		store.SetCopyRefused(errors.New("copies refused by the test"))
		reuseChange(t, src, "d4/f100")
		res, err := c.Push(t.Context(), "v2", src, PushOptions{Base: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Base != "v1" || res.FramesReused != 0 || res.Copied != 0 || res.FramesKept < 2 || !strings.Contains(res.BaseNote, "refused by the test") {
			t.Errorf("push with base v1, copies refused: base %q, %d frames reused, %d kept, %d bytes copied, note %q; want none reused or copied, frames kept, the refusal noted",
				res.Base, res.FramesReused, res.FramesKept, res.Copied, res.BaseNote)
		}
	})
}

// TestReuserCountsCopiedFrames: a frame counts as reused only if the
// ranges copied cover all of it, whatever parts they came in.
func TestReuserCountsCopiedFrames(t *testing.T) {
	r := &reuser{base: remote.Base{Meta: remote.Meta{Key: "b"}}, byHash: map[[32]byte][]archive.IndexFrame{}}
	// Frames of the stream at 0, 10, 20, 30 and 40, 10 bytes each, all
	// found in the base.
	for i := range 5 {
		f := archive.IndexFrame{Offset: int64(i) * 10, Length: 10, SHA256: [32]byte{byte(i)}}
		r.byHash[f.SHA256] = append(r.byHash[f.SHA256], archive.IndexFrame{Offset: f.Offset, Length: 10, SHA256: f.SHA256})
		r.onFrame(f)
	}
	// Copied, in parts reported out of order: frame 0 whole, frame 1
	// in two parts, frame 2 all but its last byte, frame 4
	// whole, frame 3 not at all.
	for _, c := range [][2]int64{{15, 5}, {0, 15}, {20, 9}, {40, 10}} {
		r.Copied(c[0], c[1])
	}
	var res PutResult
	r.report(&res)
	if res.FramesReused != 3 || res.Copied != 39 {
		t.Errorf("%d frames reused, %d bytes copied; want 3 (frames 0, 1 and 4) and 39", res.FramesReused, res.Copied)
	}
}
