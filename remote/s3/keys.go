package s3

import (
	"context"
	"strings"

	"github.com/tiercache/tiercache/remote"
)

// Keys returns the key of every entry whose key starts with prefix, each
// with its manifest's LastModified as the listing gives it: the server's
// time of the commit, since a manifest is only ever written by the Put
// that commits a new version (Touch writes the access marker; Delete,
// Prune and Check only delete). It is one listing of the
// manifests, as List's, and reads no manifest but those of fallback
// stems, whose names do not tell their keys (see stemFor): up to 16 at
// once, as List does, left out when gone or unreadable, as List leaves
// them. A full stem's entry is listed without its manifest being read,
// so Open may still find it damaged.
//
// LastModified is to the second on some servers (AWS S3's listings), so
// entries committed within one second may tie; a restore key then takes
// the first of them in key order, on every machine alike.
func (s *Store) Keys(ctx context.Context, prefix string) ([]remote.KeyTime, error) {
	// As in List: a prefix cut inside a UTF-8 sequence is listed by its
	// valid part and filtered below.
	enc, _ := encodeUpTo(prefix, maxCut)
	manifests, _, err := s.listAll(ctx, s.prefix+manifestsDir+enc, "manifests")
	if err != nil {
		return nil, err
	}
	var out, fallback []remote.KeyTime
	var unknown []names // of fallback, in step
	for _, o := range manifests {
		stem, ok := stemOf(o.name, s.prefix+manifestsDir, manifestSuffix)
		if !ok {
			continue
		}
		n, _ := s.namesForStem(stem)
		switch {
		case n.key == "":
			fallback = append(fallback, remote.KeyTime{Committed: o.modified})
			unknown = append(unknown, n)
		case strings.HasPrefix(n.key, prefix):
			out = append(out, remote.KeyTime{Key: n.key, Committed: o.modified})
		}
	}
	err = s.readListed(ctx, unknown, func(i int, m manifest) { fallback[i].Key = m.Meta.Key })
	if err != nil {
		return nil, err
	}
	for _, kt := range fallback {
		// Unread, or of a key outside prefix.
		if kt.Key != "" && strings.HasPrefix(kt.Key, prefix) {
			out = append(out, kt)
		}
	}
	return out, nil
}
