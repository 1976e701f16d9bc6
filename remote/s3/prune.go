package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
)

// S3's limits: the most keys one DeleteObjects request may carry, and the
// most objects one ListObjectsV2 page (or parts one ListParts page)
// returns. Stores copy them so tests can exercise batching and paging
// with fewer objects.
const (
	maxDeleteBatch = 1000
	maxListPage    = 1000
)

// object is one entry of a listing.
type object struct {
	name     string
	size     int64
	modified time.Time
	etag     string // as the server gave it, quotes and all
}

// listAll lists every object whose name starts with prefix. It also
// returns the server's clock at the first page (from the Date header), or
// the local clock if the server sent none.
//
// A listing that is not provably complete is an error: a page marked
// truncated without a continuation token (the SDK's paginator would stop
// there), or a token the server gave before (it would list forever).
// Prune judges the bucket by these listings, and an entry whose data
// object it did not see looks like one whose data is gone.
func (s *Store) listAll(ctx context.Context, prefix, what string) ([]object, time.Time, error) {
	var (
		objs  []object
		now   time.Time
		token *string
		seen  = map[string]bool{}
	)
	for {
		page, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix, MaxKeys: &s.pageSize, ContinuationToken: token})
		if err != nil {
			return nil, time.Time{}, mapError(err, s.bucket, "list "+what+" under", prefix)
		}
		if now.IsZero() {
			if t, ok := awsmiddleware.GetServerTime(page.ResultMetadata); ok {
				now = t
			} else {
				now = time.Now()
			}
		}
		for _, o := range page.Contents {
			if o.Key == nil {
				continue
			}
			obj := object{name: *o.Key}
			if o.Size != nil {
				obj.size = *o.Size
			}
			if o.LastModified != nil {
				obj.modified = *o.LastModified
			}
			obj.etag = aws.ToString(o.ETag)
			objs = append(objs, obj)
		}
		// A token without IsTruncated is followed too: a server that
		// leaves the flag out still pages.
		next := aws.ToString(page.NextContinuationToken)
		switch truncated := page.IsTruncated; {
		case truncated != nil && !*truncated, truncated == nil && next == "":
			return objs, now, nil
		case next == "":
			err = errors.New("the server marked a page truncated but gave no continuation token")
		case seen[next]:
			err = fmt.Errorf("the server repeated continuation token %q", next)
		}
		if err != nil {
			return nil, time.Time{}, mapError(fmt.Errorf("incomplete listing after %d objects: %w", len(objs), err), s.bucket, "list "+what+" under", prefix)
		}
		seen[next] = true
		token = &next
	}
}

// stemOf returns the stem of an object named dir + stem + suffix, or
// reports false for an object tiercache did not write.
func stemOf(name, dir, suffix string) (string, bool) {
	stem, ok := strings.CutPrefix(name, dir)
	if !ok {
		return "", false
	}
	if stem, ok = strings.CutSuffix(stem, suffix); !ok {
		return "", false
	}
	if _, _, ok := parseStem(stem); !ok {
		return "", false
	}
	return stem, true
}

// dataStemOf splits a data object name into its stem and id, and returns
// the tree size the id records.
func (s *Store) dataStemOf(name string) (stem, id string, treeSize int64, ok bool) {
	rest, ok := strings.CutPrefix(name, s.prefix+dataDir)
	if !ok {
		return "", "", 0, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", "", 0, false
	}
	stem, id = rest[:i], rest[i+1:]
	if treeSize, ok = parseDataID(id); !ok {
		return "", "", 0, false
	}
	if _, _, ok := parseStem(stem); !ok {
		return "", "", 0, false
	}
	return stem, id, treeSize, true
}

// List returns the Meta of every entry whose key starts with prefix. It
// lists the manifests and the access markers (one listing each, thanks to
// the prefix-preserving key encoding) and reads the manifests, up to 16 at
// once, for their metadata. Manifests deleted meanwhile and corrupt ones
// (which Open reports as tiercache.ErrIntegrity) are left out.
//
// The listing prefix is encodeUpTo(prefix, maxCut): the encoding of
// prefix, or of its leading part when the encoding is long, which every
// stem of a matching key starts with, full or fallback (see stemFor).
// Full stems are decoded and filtered by key before any read; a fallback
// stem's key is only known from its manifest, so those are filtered once
// read.
func (s *Store) List(ctx context.Context, prefix string) ([]remote.Meta, error) {
	// A prefix cut inside a UTF-8 sequence is listed by its valid part
	// and filtered below.
	enc, _ := encodeUpTo(prefix, maxCut)
	var manifests, markers []object
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		manifests, _, err = s.listAll(gctx, s.prefix+manifestsDir+enc, "manifests")
		return err
	})
	g.Go(func() (err error) {
		markers, _, err = s.listAll(gctx, s.prefix+accessDir+enc, "access markers")
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	access := make(map[string]time.Time, len(markers)) // by stem
	for _, o := range markers {
		if stem, ok := stemOf(o.name, s.prefix+accessDir, ""); ok && o.size == 0 {
			access[stem] = o.modified
		}
	}
	var entries []names
	for _, o := range manifests {
		stem, ok := stemOf(o.name, s.prefix+manifestsDir, manifestSuffix)
		if !ok {
			continue
		}
		n, _ := s.namesForStem(stem)
		if n.key == "" || strings.HasPrefix(n.key, prefix) {
			entries = append(entries, n)
		}
	}

	metas := make([]remote.Meta, len(entries))
	found := make([]bool, len(entries))
	err := s.readListed(ctx, entries, func(i int, m manifest) {
		if !strings.HasPrefix(m.Meta.Key, prefix) {
			return // a fallback stem of a key outside prefix
		}
		if t, ok := access[entries[i].stem]; ok && t.After(m.Meta.LastAccess) {
			m.Meta.LastAccess = t
		}
		metas[i], found[i] = m.Meta, true
	})
	if err != nil {
		return nil, err
	}
	out := metas[:0]
	for i, m := range metas {
		if found[i] {
			out = append(out, m)
		}
	}
	return out, nil
}

// readListed reads the manifests of entries, listConcurrency at a
// time, and calls read with each one's index and manifest (concurrently):
// one gone since the listing, or damaged, is left out, as a listing
// leaves it out; any other failure fails them all.
func (s *Store) readListed(ctx context.Context, entries []names, read func(i int, m manifest)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	for i, n := range entries {
		g.Go(func() error {
			m, err := s.readManifest(gctx, n)
			switch {
			case errors.Is(err, tiercache.ErrNotFound), errors.Is(err, tiercache.ErrIntegrity):
				return nil
			case err != nil:
				return err
			}
			read(i, m)
			return nil
		})
	}
	return g.Wait()
}

// dataObj is one data object of a key, as listed.
type dataObj struct {
	id       string
	treeSize int64 // as recorded in id
	size     int64 // the object's
	modified time.Time
}

// Manifest states, once read.
const (
	manifestUnread  = iota // not read: nothing needed it
	manifestOK             // read and valid
	manifestMissing        // no manifest (or deleted since the listing)
	manifestCorrupt        // present but does not parse
	manifestNewer          // of a newer format (see newerManifestError)
)

// keyState is what a survey found of one stem, and what Prune or Check
// learned of it since.
type keyState struct {
	n        names
	manifest *object // as listed; nil if none
	marker   *object
	data     []dataObj

	state   int
	m       manifest // when state is manifestOK
	corrupt error    // when state is manifestCorrupt or manifestNewer

	// Check's verdicts. broken: the entry is reported and, with Repair,
	// deleted. unsettled: the entry changed while it was checked (a
	// concurrent Put or Delete), so nothing of it is reported.
	broken, unsettled bool
}

// Prune evicts entries, least recently accessed first, until the store
// satisfies l, with sizes counted as tree bytes (remote.Meta.Size, which
// every data object's name records) and last access as the later of the
// access marker's and the manifest's LastModified. l.MaxAge is measured
// by the server's clock (the Date of its first listing's answer), which
// set those times, so a runner's clock that is off changes nothing. It also collects
// garbage older than OrphanGrace (see the package doc): data objects no
// manifest names, access markers of missing entries and manifests whose
// data is gone. Of an entry whose manifest is of a newer format (see
// newerManifestError), it collects nothing: only eviction removes it.
//
// It also aborts, as Check with Repair does, the multipart uploads of
// its data objects started more than OrphanGrace ago and with no part
// uploaded since (see staleUploads): a Put killed mid-upload leaves one,
// whose parts no listing of objects shows but which the bucket bills.
// That is best effort: a failure to list or abort them (credentials
// without s3:ListBucketMultipartUploads, s3:ListMultipartUploadParts or
// s3:AbortMultipartUpload) fails nothing, and Check reports what is left.
//
// It works from the survey it shares with Check, and deletes in
// DeleteObjects batches of up to 1000 names. An evicted entry's manifest
// is deleted before its data and marker, in a first round for all
// victims, so readers see a miss rather than a broken entry.
//
// Entries are told apart by their stems, not their keys: the key of a
// fallback stem is not in its name, and the stem identifies it as well.
// So ties in last access are broken by stem order.
//
// A manifest is deleted only if it still has the ETag listed (see
// deleteIfUnchanged): an entry re-put after the survey keeps its new
// version, which is neither evicted nor reported, and its data and
// marker stay. That takes a server that honours the ETags of
// DeleteObjects, as AWS S3 does; on one that ignores them (MinIO) such
// an entry may be lost (a miss, never a torn entry). If ctx ends midway,
// the evictions done so far stay done and their count is returned with
// the error.
//
// Each eviction is reported to l.OnEvict once its manifest is deleted,
// before its data. With OnEvict set, the manifests of victims with
// fallback stems are read first for their keys; one unreadable then is
// reported with Key "".
func (s *Store) Prune(ctx context.Context, l policy.Limits) (int, error) {
	if err := l.Validate(); err != nil {
		return 0, err
	}
	keys, now, err := s.survey(ctx)
	if err != nil {
		return 0, err
	}
	cutoff := now.Add(-s.cfg.OrphanGrace)
	// The manifests Prune cannot do without: of keys with several data
	// objects (which one is committed, and since when were the others
	// replaced?), of old keys with none (of a newer format, keeping its
	// data elsewhere?) and of keys with data old enough to collect but no
	// listed manifest (committed since the listing?).
	need := func(ks *keyState) bool {
		if ks.manifest != nil {
			return len(ks.data) > 1 || (len(ks.data) == 0 && ks.manifest.modified.Before(cutoff))
		}
		return slices.ContainsFunc(ks.data, func(d dataObj) bool { return d.modified.Before(cutoff) })
	}
	if err := s.readManifests(ctx, keys, need, nil); err != nil {
		return 0, err
	}

	var items []policy.Item
	for stem, ks := range keys {
		if ks.manifest == nil || ks.gone() {
			continue
		}
		last := ks.manifest.modified
		if ks.marker != nil && ks.marker.modified.After(last) {
			last = ks.marker.modified
		}
		items = append(items, policy.Item{Key: stem, Size: ks.treeBytes(), LastAccess: last})
	}
	// The server's clock, as the access times are its own.
	victims, err := policy.Victims(items, l, now)
	if err != nil {
		return 0, err
	}
	isVictim := make(map[string]bool, len(victims))
	for _, v := range victims {
		isVictim[v.Key] = true
	}
	if l.OnEvict != nil {
		// A fallback stem does not tell its key: the manifest does.
		unknown := func(ks *keyState) bool {
			return isVictim[ks.n.stem] && ks.state == manifestUnread && ks.key() == ""
		}
		// Naming them must not stop the prune: one still unread after
		// a failure is reported with Key "".
		if err := s.readManifests(ctx, keys, unknown, nil); err != nil && ctx.Err() != nil {
			return 0, err
		}
	}

	// Round one: the manifests of the victims (in LRU order) and of
	// entries whose data is gone. Round two: data and markers, of a
	// victim only once its manifest is gone.
	var round1, round2 []string
	listed := make(map[string]string)                      // manifest name -> its ETag as judged
	victimObjs := make(map[string][]string, len(victims))  // manifest name -> data and marker names
	reported := make(map[string]policy.Item, len(victims)) // manifest name -> the victim by key
	for _, v := range victims {
		n := s.namesOf(v.Key)
		ks := keys[v.Key]
		round1 = append(round1, n.manifest)
		listed[n.manifest] = ks.manifest.etag
		reported[n.manifest] = policy.Item{Key: ks.key(), Size: v.Size, LastAccess: v.LastAccess}
		var objs []string
		for _, d := range ks.data {
			// The referenced object goes; others only when old, since
			// a young one may belong to a Put about to commit.
			if ks.names(d.id) || d.modified.Before(cutoff) {
				objs = append(objs, n.data(d.id))
			}
		}
		if ks.marker != nil {
			objs = append(objs, n.marker)
		}
		victimObjs[n.manifest] = objs
	}
	for stem, ks := range keys {
		if isVictim[stem] {
			continue
		}
		n := s.namesOf(stem)
		live := ks.manifest != nil && !ks.gone()
		if live && ks.state != manifestCorrupt && ks.state != manifestNewer && len(ks.data) == 0 && ks.manifest.modified.Before(cutoff) {
			// Committed long ago and no data left: unreadable.
			round1 = append(round1, n.manifest)
			listed[n.manifest] = ks.manifest.etag
			live = false
		}
		for _, d := range ks.data {
			if d.modified.Before(cutoff) && ks.orphan(d.id) && !ks.inGrace(d.id, cutoff) {
				round2 = append(round2, n.data(d.id))
			}
		}
		if !live && ks.marker != nil && ks.marker.modified.Before(cutoff) && ks.state != manifestOK {
			round2 = append(round2, n.marker)
		}
	}

	evicted := 0
	// A manifest re-put since the listing (changed) stays, and so do
	// its data and marker.
	failed, changed, err := s.deleteIfUnchanged(ctx, round1, listed)
	for _, name := range round1 {
		if objs, ok := victimObjs[name]; ok && !failed[name] && !changed[name] {
			evicted++
			round2 = append(round2, objs...)
			l.Report(reported[name])
		}
	}
	if err != nil {
		return evicted, err
	}
	failed2, err := s.deleteObjects(ctx, round2)
	if err != nil {
		return evicted, err
	}
	// Last, as the entries must not depend on it: credentials without
	// the permissions to list or abort uploads prune all the same.
	if err := s.abortStaleUploads(ctx, cutoff); err != nil {
		if ctx.Err() != nil {
			return evicted, err
		}
		l.Warn(fmt.Errorf("stale multipart uploads left in place (the bucket's lifecycle rule, or prune with credentials that may list and abort uploads, removes them): %w", err))
	}
	if len(failed)+len(failed2) > 0 {
		return evicted, fmt.Errorf("s3: prune: the server refused to delete %d objects", len(failed)+len(failed2))
	}
	return evicted, nil
}

// treeBytes is the size counted against the byte limit: the tree size
// recorded in the name of the data object the manifest names (0 if that
// object is missing: the entry is unreadable, and its size should not
// push healthy entries out), or of all the key's data when which one it
// names is unknown (only for a corrupt or newer manifest; an unread
// manifest has one data object).
func (ks *keyState) treeBytes() int64 {
	var sum int64
	for _, d := range ks.data {
		if ks.state == manifestOK && d.id == ks.m.Data {
			return d.treeSize
		}
		sum += d.treeSize
	}
	if ks.state == manifestOK {
		return 0 // the named object is missing
	}
	return sum
}

// gone reports whether the manifest was listed but deleted when read.
func (ks *keyState) gone() bool { return ks.manifest != nil && ks.state == manifestMissing }

// names reports whether the manifest (as far as Prune knows) names id:
// Prune reads it only when it must, and a manifest with one data object
// is taken to name it.
func (ks *keyState) names(id string) bool {
	if ks.state == manifestOK {
		return id == ks.m.Data
	}
	return ks.manifest != nil && !ks.gone() && len(ks.data) == 1
}

// orphan reports whether data object id is garbage once old enough:
// no manifest names it. When the manifest was not read (one data object)
// or could not be, or is of a newer format, nothing is an orphan.
func (ks *keyState) orphan(id string) bool {
	switch {
	case ks.state == manifestOK:
		return id != ks.m.Data
	case ks.state == manifestCorrupt, ks.state == manifestNewer:
		return false
	default:
		return ks.manifest == nil || ks.gone()
	}
}

// inGrace reports whether the manifest's history says data object id was
// replaced at or after cutoff: readers that started on it may still be
// reading it. Its upload time says nothing of that.
func (ks *keyState) inGrace(id string, cutoff time.Time) bool {
	at, ok := ks.m.replacedAt(id)
	return ok && !at.Before(cutoff)
}

// key returns the stem's key, or "" when only a fallback stem is known.
func (ks *keyState) key() string {
	if ks.state == manifestOK {
		return ks.m.Meta.Key
	}
	return ks.n.key
}

// survey lists data objects first, then manifests and markers, and groups
// them by stem, for Prune and Check. The order matters: a Put completes
// its data object before it writes the manifest, so data listed is either
// committed by the time manifests are listed or belongs to a Put still
// running (young) or dead (an orphan). It also returns the server's clock
// at the first listing.
func (s *Store) survey(ctx context.Context) (map[string]*keyState, time.Time, error) {
	data, now, err := s.listAll(ctx, s.prefix+dataDir, "data objects")
	if err != nil {
		return nil, time.Time{}, err
	}
	var manifests, markers []object
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		manifests, _, err = s.listAll(gctx, s.prefix+manifestsDir, "manifests")
		return err
	})
	g.Go(func() (err error) {
		markers, _, err = s.listAll(gctx, s.prefix+accessDir, "access markers")
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, time.Time{}, err
	}
	keys := make(map[string]*keyState)
	state := func(stem string) *keyState {
		ks := keys[stem]
		if ks == nil {
			n, _ := s.namesForStem(stem) // callers pass parsed stems only
			ks = &keyState{n: n}
			keys[stem] = ks
		}
		return ks
	}
	for _, o := range data {
		if stem, id, treeSize, ok := s.dataStemOf(o.name); ok {
			ks := state(stem)
			ks.data = append(ks.data, dataObj{id: id, treeSize: treeSize, size: o.size, modified: o.modified})
		}
	}
	for i := range manifests {
		if stem, ok := stemOf(manifests[i].name, s.prefix+manifestsDir, manifestSuffix); ok {
			state(stem).manifest = &manifests[i]
		}
	}
	for i := range markers {
		// Markers are empty; anything else under access/ is not ours.
		if stem, ok := stemOf(markers[i].name, s.prefix+accessDir, ""); ok && markers[i].size == 0 {
			state(stem).marker = &markers[i]
		}
	}
	return keys, now, nil
}

// readManifests reads, up to listConcurrency at once, the manifest of
// every stem need picks and records its state, then hands the stem to
// then, if set. Only a failure to read a manifest is an error: a missing,
// corrupt or newer one is a state.
func (s *Store) readManifests(ctx context.Context, keys map[string]*keyState, need func(*keyState) bool, then func(context.Context, *keyState) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	for _, ks := range keys {
		if !need(ks) {
			continue
		}
		g.Go(func() error {
			m, err := s.readManifest(gctx, ks.n)
			switch {
			case err == nil:
				ks.state, ks.m = manifestOK, m
			case errors.Is(err, tiercache.ErrNotFound):
				ks.state = manifestMissing
			case isNewerManifest(err):
				ks.state, ks.corrupt = manifestNewer, err
			case errors.Is(err, tiercache.ErrIntegrity):
				ks.state, ks.corrupt = manifestCorrupt, err
			default:
				return err
			}
			if then == nil {
				return nil
			}
			return then(gctx, ks)
		})
	}
	return g.Wait()
}

// staleUpload is a multipart upload of a data object of stem.
type staleUpload struct {
	name, id, stem string
	initiated      time.Time
	// unchecked is why its parts could not be listed: it may still be
	// receiving them, so it is reported but never aborted.
	unchecked error
}

// staleUploads lists the multipart uploads of the store's data objects
// started before cutoff and with no part uploaded since: a Put that died
// (or whose abort failed) left them. A Put of a large tree over a slow
// link can outlast the grace, and its recent parts tell it from a dead
// one. Prune and Check judge uploads by it alone.
//
// The listing covers the whole bucket and is filtered here: MinIO takes
// a Prefix as an exact object name, so listing by prefix would find
// nothing there. A bucket has few uploads in flight, so this costs
// little. A page marked truncated without next markers, or with markers
// given before, is an error: the SDK's paginator would list forever.
//
// An upload whose parts cannot be listed (credentials without
// s3:ListMultipartUploadParts) is returned with unchecked set, never to
// be aborted: aborting a push still running fails it, while a dead one
// left costs only storage until a later prune or the bucket's lifecycle
// rule aborts it.
func (s *Store) staleUploads(ctx context.Context, cutoff time.Time) ([]staleUpload, error) {
	var (
		old                 []staleUpload
		keyMarker, idMarker *string
		seen                = map[[2]string]bool{}
	)
	for {
		page, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.bucket, KeyMarker: keyMarker, UploadIdMarker: idMarker})
		if err != nil {
			return nil, mapError(err, s.bucket, "list multipart uploads under", s.prefix+dataDir)
		}
		for _, u := range page.Uploads {
			name := aws.ToString(u.Key)
			stem, _, _, ok := s.dataStemOf(name)
			if !ok || u.Initiated == nil || !u.Initiated.Before(cutoff) {
				continue
			}
			old = append(old, staleUpload{name: name, id: aws.ToString(u.UploadId), stem: stem, initiated: *u.Initiated})
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		next := [2]string{aws.ToString(page.NextKeyMarker), aws.ToString(page.NextUploadIdMarker)}
		switch {
		case next[0] == "":
			err = errors.New("the server marked a page truncated but gave no next key marker")
		case seen[next]:
			err = fmt.Errorf("the server repeated the markers %q", next)
		}
		if err != nil {
			return nil, mapError(fmt.Errorf("incomplete listing of multipart uploads: %w", err), s.bucket, "list multipart uploads under", s.prefix+dataDir)
		}
		seen[next] = true
		keyMarker, idMarker = &next[0], &next[1]
	}
	var out []staleUpload
	for _, u := range old {
		stale, err := s.idleSince(ctx, u, cutoff)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, err
		case err != nil:
			u.unchecked = err
			out = append(out, u)
		case stale:
			out = append(out, u)
		}
	}
	return out, nil
}

// idleSince reports whether no part of u was uploaded at or after cutoff.
// It reads the parts page by page until it finds a recent one: they are
// listed by part number, so the newest is usually on the last page, but a
// part retried late may be on any. An upload gone since the listing
// (completed or aborted) is not stale, and a part without a time is
// taken as recent.
func (s *Store) idleSince(ctx context.Context, u staleUpload, cutoff time.Time) (bool, error) {
	var (
		marker *string
		seen   = map[string]bool{}
	)
	for {
		page, err := s.client.ListParts(ctx, &s3.ListPartsInput{Bucket: &s.bucket, Key: &u.name, UploadId: &u.id, MaxParts: &s.pageSize, PartNumberMarker: marker})
		if code, _ := errorCode(err); code == "NoSuchUpload" {
			return false, nil
		}
		if err != nil {
			return false, mapError(err, s.bucket, "list the parts of upload "+u.id+" of", u.name)
		}
		for _, p := range page.Parts {
			if p.LastModified == nil || !p.LastModified.Before(cutoff) {
				return false, nil
			}
		}
		if !aws.ToBool(page.IsTruncated) {
			return true, nil
		}
		next := aws.ToString(page.NextPartNumberMarker)
		switch {
		case next == "":
			err = errors.New("the server marked a page truncated but gave no next part number marker")
		case seen[next]:
			err = fmt.Errorf("the server repeated the part number marker %q", next)
		}
		if err != nil {
			return false, mapError(fmt.Errorf("incomplete listing of parts: %w", err), s.bucket, "list the parts of upload "+u.id+" of", u.name)
		}
		seen[next] = true
		marker = &next
	}
}

// abortStale aborts u. An upload already gone (completed or aborted
// since the listing) is no error.
func (s *Store) abortStale(ctx context.Context, u staleUpload) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &s.bucket, Key: &u.name, UploadId: &u.id,
	})
	if code, _ := errorCode(err); err == nil || code == "NoSuchUpload" {
		return nil
	}
	return mapError(err, s.bucket, "abort upload "+u.id+" of", u.name)
}

// abortStaleUploads aborts every upload staleUploads proves stale, even
// when it could not judge others, and returns the failures.
func (s *Store) abortStaleUploads(ctx context.Context, cutoff time.Time) error {
	ups, err := s.staleUploads(ctx, cutoff)
	errs := []error{err}
	for _, u := range ups {
		if u.unchecked != nil {
			errs = append(errs, u.unchecked)
			continue
		}
		errs = append(errs, s.abortStale(ctx, u))
	}
	return errors.Join(errs...)
}

// deleteObjects deletes names in batches of up to 1000, in order,
// whatever they hold. It returns the names the server refused and the
// first request error.
func (s *Store) deleteObjects(ctx context.Context, names []string) (map[string]bool, error) {
	failed, _, err := s.deleteIfUnchanged(ctx, names, nil)
	return failed, err
}

// deleteIfUnchanged is deleteObjects, but deletes an object etags gives
// an ETag (as listed) only if it still has it: the version judged, not
// one a Put committed since. Those the server keeps as changed (412
// PreconditionFailed, or 409 ConditionalRequestConflict, a write racing
// the delete) are returned apart, neither deleted nor failed.
//
// A server that refuses the ETags (see conditionRefused), for the batch
// or for some of its objects, or fails one that still holds (see
// stillHas), is asked again without them, and no more for the Store's
// life: prune must work there too. One that ignores them
// (MinIO) deletes what the objects hold, as an unconditional delete.
func (s *Store) deleteIfUnchanged(ctx context.Context, names []string, etags map[string]string) (failed, changed map[string]bool, err error) {
	failed, changed = make(map[string]bool), make(map[string]bool)
	for len(names) > 0 {
		batch := names[:min(len(names), s.deleteBatch)]
		names = names[len(batch):]
		again, err := s.deleteOnce(ctx, batch, etags, failed, changed)
		if err == nil && len(again) > 0 {
			_, err = s.deleteOnce(ctx, again, nil, failed, changed)
		}
		if err != nil {
			for _, name := range names {
				failed[name] = true
			}
			return failed, changed, err
		}
	}
	return failed, changed, nil
}

// deleteOnce sends one DeleteObjects for batch, with the ETags etags
// gives unless the server is known to refuse them, and records the names
// it refused in failed and those it kept as changed in changed. It
// returns the names whose ETags it refused, to be sent again without.
func (s *Store) deleteOnce(ctx context.Context, batch []string, etags map[string]string, failed, changed map[string]bool) ([]string, error) {
	conditional := etags != nil && !s.noBatchETags.Load()
	sent := func(name string) bool { return conditional && etags[name] != "" }
	ids := make([]types.ObjectIdentifier, len(batch))
	for i, name := range batch {
		ids[i] = types.ObjectIdentifier{Key: &batch[i]}
		if sent(name) {
			ids[i].ETag = aws.String(etags[name])
		}
	}
	quiet := true
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &s.bucket,
		Delete: &types.Delete{Objects: ids, Quiet: &quiet},
	})
	if err != nil {
		code, status := errorCode(err)
		if conditional && conditionRefused(code, status) {
			s.noBatchETags.Store(true)
			return batch, nil
		}
		if conditional && changedMeanwhile(code, status) {
			// S3 answers a failed condition per object, not for the
			// batch: this server's answer says nothing of which
			// changed, so each is asked, and the batch's conditions
			// are not sent again.
			s.noBatchETags.Store(true)
			var again []string
			for _, name := range batch {
				if sent(name) && !s.stillHas(ctx, name, etags[name]) {
					changed[name] = true
				} else {
					again = append(again, name)
				}
			}
			return again, nil
		}
		for _, name := range batch {
			failed[name] = true
		}
		return nil, mapError(err, s.bucket, "delete objects, first", batch[0])
	}
	var again []string
	for _, e := range out.Errors {
		name, code := aws.ToString(e.Key), aws.ToString(e.Code)
		switch {
		case e.Key == nil, code == "NoSuchKey":
		case sent(name) && changedMeanwhile(code, 0) && !s.stillHas(ctx, name, etags[name]):
			changed[name] = true
		case sent(name) && changedMeanwhile(code, 0):
			// A condition failed that holds: the server cannot be
			// trusted with them, and would keep every entry forever.
			s.noBatchETags.Store(true)
			again = append(again, name)
		case sent(name) && conditionRefused(code, 0):
			s.noBatchETags.Store(true)
			again = append(again, name)
		default:
			// An error without a code is a refusal all the same.
			failed[name] = true
		}
	}
	return again, nil
}

// deleteIfMatch deletes object name if it still has ETag etag (whatever
// it holds if etag is ""): the version judged, not one a Put committed
// since. It reports whether the object was kept as changed (see
// changedMeanwhile). An object already gone is no error: S3 answers
// If-Match on a missing object with 404 NoSuchKey. A server that
// refuses If-Match (see conditionRefused), or fails it though the object
// still has etag, gets the delete again without it, and no If-Match for
// the Store's life; one that ignores it (MinIO) deletes what the object
// holds.
func (s *Store) deleteIfMatch(ctx context.Context, name, etag string) (changed bool, err error) {
	in := &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &name}
	if etag != "" && !s.noIfMatch.Load() {
		in.IfMatch = &etag
	}
	_, err = s.client.DeleteObject(ctx, in)
	if err == nil || in.IfMatch == nil {
		return false, err
	}
	switch code, status := errorCode(err); {
	case code == "NoSuchKey":
		return false, nil
	case changedMeanwhile(code, status) && !s.stillHas(ctx, name, etag):
		return true, nil
	case changedMeanwhile(code, status), conditionRefused(code, status):
		// Refused, or failed though it holds (a server comparing ETags
		// wrongly would otherwise keep every entry forever).
		s.noIfMatch.Store(true)
		in.IfMatch = nil
		_, err = s.client.DeleteObject(ctx, in)
	}
	return false, err
}

// stillHas reports whether object name still has ETag etag (quotes
// aside), checked when a server says a conditional delete failed. A
// failed HEAD counts as changed: keeping an entry is the safe side.
func (s *Store) stillHas(ctx context.Context, name, etag string) bool {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &name})
	return err == nil && strings.Trim(aws.ToString(out.ETag), `"`) == strings.Trim(etag, `"`)
}

// changedMeanwhile reports whether S3's answer to a conditional delete
// (code and status of the request, or code of one object of a
// DeleteObjects, with status 0) says the object changed since it was
// judged: its ETag is another (412), or a write raced the delete (409).
func changedMeanwhile(code string, status int) bool {
	return code == "PreconditionFailed" || code == "ConditionalRequestConflict" || status == http.StatusPreconditionFailed
}

// conditionRefused reports whether an answer to a conditional delete
// says the server does not do conditional deletes, rather than that the
// condition failed: 501, or a code servers give for a header or element
// they do not know (MalformedXML: a strict parser's for an ETag in
// DeleteObjects).
func conditionRefused(code string, status int) bool {
	switch code {
	case "NotImplemented", "InvalidArgument", "InvalidRequest", "MalformedXML":
		return true
	}
	return status == http.StatusNotImplemented
}
