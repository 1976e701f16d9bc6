package s3

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

var _ remote.Checker = (*Store)(nil)

// deepConcurrency bounds the archives a deep Check downloads at once.
// Each download already fetches Concurrency ranges in parallel and holds
// PartSize × (Concurrency+1) bytes of buffers, so two keep the link busy
// without multiplying that memory.
const deepConcurrency = 2

// Check implements remote.Checker. It works from Prune's survey plus a
// listing of the multipart uploads in flight, and reads every manifest
// (up to 16 at once); Deep then downloads every sound entry's archive,
// two at a time. An entry is reported only after a second look confirms
// it: a manifest naming a data object missing from the listing is
// rechecked with a HEAD and a fresh read of the manifest, so a Put or
// Delete running meanwhile is not mistaken for damage.
//
// Repair deletes the manifests of broken entries first, then their data
// objects and access markers, orphaned data objects and stray markers
// (in batches), and aborts stale uploads. Like Prune, it deletes a
// manifest only if it still has the ETag judged: an entry re-put since
// stays, and is dropped from the report (a concurrent write, not a
// problem). On a server that ignores the
// ETags of DeleteObjects (MinIO) such an entry may turn into a miss,
// never into a torn entry. An entry whose manifest is of a newer format
// (see newerManifestError) is reported as remote.ProblemNewerManifest
// and, with everything under its key, left alone.
func (s *Store) Check(ctx context.Context, opts remote.CheckOptions) (tiercache.CheckReport, error) {
	if opts.Grace < 0 {
		return tiercache.CheckReport{}, fmt.Errorf("%w: s3: check grace %v is negative", tiercache.ErrInvalidArgument, opts.Grace)
	}
	stems, now, err := s.survey(ctx)
	if err != nil {
		return tiercache.CheckReport{}, err
	}
	ck := &checker{s: s, opts: opts, now: now, cutoff: now.Add(-cmp.Or(opts.Grace, s.cfg.OrphanGrace))}
	// Every listed entry, and every stem with leftovers old enough to
	// report (a manifest may have been committed since the listing).
	need := func(ks *keyState) bool {
		return ks.manifest != nil || (ks.marker != nil && ck.old(ks.marker.modified)) ||
			slices.ContainsFunc(ks.data, func(d dataObj) bool { return ck.old(d.modified) })
	}
	if err := s.readManifests(ctx, stems, need, ck.checkEntry); err != nil {
		return tiercache.CheckReport{}, err
	}
	ck.leftovers(stems)
	if opts.Deep {
		if err := ck.deep(ctx, stems); err != nil {
			return tiercache.CheckReport{}, err
		}
	}
	// Last, as the entries must not depend on it: credentials without
	// the permission to list uploads (as prune's may lack) check the
	// rest all the same.
	var unchecked []string
	if err := ck.uploads(ctx); err != nil {
		if ctx.Err() != nil {
			return tiercache.CheckReport{}, err
		}
		unchecked = append(unchecked, fmt.Sprintf("stale multipart uploads were not looked for: %v", err))
	}
	var rerr error
	if opts.Repair {
		rerr = ck.repair(ctx)
	}
	report := tiercache.CheckReport{Entries: ck.entries, Verified: ck.verified, Problems: []tiercache.Problem{}, Unchecked: unchecked}
	for _, f := range ck.findings {
		if !f.dropped {
			report.Problems = append(report.Problems, f.p)
		}
	}
	return report, rerr
}

// finding is a problem with what repairing it takes.
type finding struct {
	p tiercache.Problem
	// first is deleted before then: the manifest of a broken entry, so
	// readers never find a manifest whose data is gone. It is deleted
	// only if it still has ETag etag, that of the read that confirmed
	// the problem (see deleteIfUnchanged): a manifest re-put since
	// stays, with then, and the finding is dropped.
	first string
	etag  string
	then  []string
	// upload, if set, is aborted.
	upload *staleUpload
	// keep: reported only, never repaired.
	keep bool
	// dropped: the entry was re-put since it was judged; not reported.
	dropped bool
}

// checker is the state of one Check.
type checker struct {
	s      *Store
	opts   remote.CheckOptions
	now    time.Time // the server's clock at the first listing
	cutoff time.Time // leftovers modified before it are reported

	mu       sync.Mutex
	entries  int
	verified int
	findings []finding
}

func (ck *checker) add(f finding) {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ck.findings = append(ck.findings, f)
}

// old reports whether t is before the cutoff.
func (ck *checker) old(t time.Time) bool { return t.Before(ck.cutoff) }

// age describes how long before the first listing t was.
func (ck *checker) age(t time.Time) string {
	return ck.now.Sub(t).Round(time.Second).String()
}

// checkEntry checks, once st's manifest is read, that the data object it
// names exists with the recorded size.
func (ck *checker) checkEntry(ctx context.Context, st *keyState) error {
	s := ck.s
	switch st.state {
	case manifestMissing:
		return nil
	case manifestCorrupt, manifestNewer:
		ck.countEntry()
		return ck.corruptManifest(ctx, st)
	}
	m := st.m
	ck.countEntry()
	dataName := st.n.data(m.Data)
	size := int64(-1) // missing
	for _, d := range st.data {
		if d.id == m.Data {
			size = d.size
		}
	}
	if size == m.Meta.ArchiveSize {
		return nil
	}
	// The listing may predate the Put that committed this manifest:
	// look at the object itself.
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &dataName})
	switch err := mapError(err, s.bucket, "check data of", st.n.label); {
	case err == nil:
		size = aws.ToInt64(out.ContentLength)
	case errors.Is(err, tiercache.ErrNotFound):
		size = -1
	default:
		return err
	}
	if size == m.Meta.ArchiveSize {
		return nil
	}
	etag, settled, err := ck.stillNames(ctx, st, m.Data)
	if err != nil || !settled {
		return err
	}
	f := finding{
		p:     tiercache.Problem{Key: m.Meta.Key, Object: st.n.manifest},
		first: st.n.manifest,
		etag:  etag,
		then:  []string{st.n.marker},
	}
	if size < 0 {
		f.p.Kind = remote.ProblemMissingData
		f.p.Detail = fmt.Sprintf("its archive %s does not exist", dataName)
	} else {
		f.p.Kind = remote.ProblemSizeMismatch
		f.p.Detail = fmt.Sprintf("its archive %s is %d bytes, the manifest records %d", dataName, size, m.Meta.ArchiveSize)
		f.then = append(f.then, dataName)
	}
	st.broken = true
	ck.add(f)
	return nil
}

func (ck *checker) countEntry() {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ck.entries++
}

// stillNames rereads st's manifest and reports whether it still names
// data object id, with the ETag of the manifest read, marking st
// unsettled if not (replaced or deleted since it was first read).
func (ck *checker) stillNames(ctx context.Context, st *keyState, id string) (etag string, ok bool, err error) {
	m, etag, err := ck.s.readManifestETag(ctx, st.n)
	switch {
	case err == nil && m.Data == id:
		return etag, true, nil
	case err == nil, errors.Is(err, tiercache.ErrNotFound), errors.Is(err, tiercache.ErrIntegrity):
		st.unsettled = true
		return "", false, nil
	default:
		return "", false, err
	}
}

// corruptManifest reports a manifest that does not parse, or is of a
// newer format, once a second read confirms it.
func (ck *checker) corruptManifest(ctx context.Context, st *keyState) error {
	_, etag, err := ck.s.readManifestETag(ctx, st.n)
	switch {
	case err == nil, errors.Is(err, tiercache.ErrNotFound):
		st.unsettled = true // replaced or deleted meanwhile
		return nil
	case !errors.Is(err, tiercache.ErrIntegrity):
		return err
	case isNewerManifest(err) != (st.state == manifestNewer):
		st.unsettled = true // replaced meanwhile
		return nil
	}
	var ne *newerManifestError
	if errors.As(err, &ne) {
		// Its format may name objects this one does not know of, and
		// the newer tiercache judges them: nothing of the key is touched.
		ck.add(finding{
			p: tiercache.Problem{
				Kind: remote.ProblemNewerManifest, Key: st.n.key, Object: st.n.manifest,
				Detail: fmt.Sprintf("its manifest has %v; left alone", ne),
			},
			keep: true,
		})
		return nil
	}
	st.broken = true
	ck.add(finding{
		p:     tiercache.Problem{Kind: remote.ProblemCorruptManifest, Key: st.n.key, Object: st.n.manifest, Detail: st.corrupt.Error()},
		first: st.n.manifest,
		etag:  etag,
		then:  []string{st.n.marker},
	})
	return nil
}

// leftovers reports the data objects no valid manifest names and the
// access markers of keys without an entry, when older than the grace. A
// data object the manifest's history says was replaced counts from its
// replacement, not its upload: until then readers may still be on it.
func (ck *checker) leftovers(stems map[string]*keyState) {
	for _, st := range stems {
		if st.unsettled || st.state == manifestUnread || st.state == manifestNewer {
			continue // nothing old enough, changing under us, or not ours to judge
		}
		for _, d := range st.data {
			if !ck.old(d.modified) || (st.state == manifestOK && d.id == st.m.Data) {
				continue
			}
			detail := fmt.Sprintf("no manifest names it; uploaded %s ago", ck.age(d.modified))
			if st.state == manifestOK {
				if at, ok := st.m.replacedAt(d.id); ok {
					if !ck.old(at) {
						continue
					}
					detail = fmt.Sprintf("no manifest names it; replaced %s ago", ck.age(at))
				}
			}
			name := st.n.data(d.id)
			ck.add(finding{
				p: tiercache.Problem{
					Kind: remote.ProblemOrphanData, Key: st.key(), Object: name,
					Detail: detail,
				},
				then: []string{name},
			})
		}
		if st.state == manifestMissing && st.marker != nil && ck.old(st.marker.modified) {
			ck.add(finding{
				p: tiercache.Problem{
					Kind: remote.ProblemStrayMarker, Key: st.key(), Object: st.n.marker,
					Detail: fmt.Sprintf("access record of a key with no entry, written %s ago", ck.age(st.marker.modified)),
				},
				then: []string{st.n.marker},
			})
		}
	}
}

// deep downloads the archive of every entry found sound so far and
// verifies its size and SHA-256.
func (ck *checker) deep(ctx context.Context, stems map[string]*keyState) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deepConcurrency)
	for _, st := range stems {
		if st.state != manifestOK || st.broken || st.unsettled {
			continue
		}
		g.Go(func() error { return ck.verifyArchive(gctx, st) })
	}
	return g.Wait()
}

// verifyArchive reads st's archive through Open (so ranged, resumed,
// parallel reads are exercised as a pull would) and compares it with the
// Meta Open returned, which is that of the manifest naming what it read,
// then lets CheckOptions.Inspect judge its content.
func (ck *checker) verifyArchive(ctx context.Context, st *keyState) error {
	key := st.m.Meta.Key
	dg, err := ck.readArchive(ctx, key)
	meta := dg.meta
	switch {
	case errors.Is(err, tiercache.ErrNotFound):
		return nil // replaced or deleted meanwhile
	case errors.Is(err, tiercache.ErrIntegrity):
		meta = st.m.Meta // Open's checks failed: the object is not as recorded
	case err != nil:
		return err
	case dg.size == meta.ArchiveSize && dg.sha256 == meta.SHA256 && dg.inspect == nil:
		ck.mu.Lock()
		ck.verified++
		ck.mu.Unlock()
		return nil
	case dg.size == meta.ArchiveSize && dg.sha256 == meta.SHA256 && !errors.Is(dg.inspect, tiercache.ErrIntegrity):
		return dg.inspect
	}
	// Which data object was that? The manifest read now tells, if it
	// is still the version Open read.
	m, etag, rerr := ck.s.readManifestETag(ctx, st.n)
	switch {
	case rerr == nil && m.Meta.SHA256 == meta.SHA256 && m.Meta.Created.Equal(meta.Created):
	case rerr == nil, errors.Is(rerr, tiercache.ErrNotFound), errors.Is(rerr, tiercache.ErrIntegrity):
		st.unsettled = true
		return nil
	default:
		return rerr
	}
	dataName := st.n.data(m.Data)
	p := tiercache.Problem{Kind: remote.ProblemChecksumMismatch, Key: key, Object: st.n.manifest}
	switch {
	case err != nil:
		p.Detail = fmt.Sprintf("its archive %s cannot be read as recorded: %v", dataName, err)
	case dg.size != meta.ArchiveSize || dg.sha256 != meta.SHA256:
		p.Detail = fmt.Sprintf("its archive %s is %d bytes with SHA-256 %s, the manifest records %d bytes with SHA-256 %s",
			dataName, dg.size, dg.sha256, meta.ArchiveSize, meta.SHA256)
	default:
		p.Kind = remote.ProblemContentMismatch
		p.Detail = fmt.Sprintf("its archive %s is intact but does not match the manifest: %v", dataName, dg.inspect)
	}
	st.broken = true
	ck.add(finding{p: p, first: st.n.manifest, etag: etag, then: []string{dataName, st.n.marker}})
	return nil
}

// digest is what readArchive found: the archive's size and SHA-256, the
// Meta of the manifest Open read, and what Inspect said.
type digest struct {
	size    int64
	sha256  string
	meta    remote.Meta
	inspect error
}

// readArchive streams key's archive through CheckOptions.Inspect, if set,
// and a SHA-256. A failure of the stream itself is the error; Inspect's
// verdict is in the digest.
func (ck *checker) readArchive(ctx context.Context, key string) (digest, error) {
	rc, meta, err := ck.s.Open(ctx, key)
	if err != nil {
		return digest{}, err
	}
	defer rc.Close()
	h := &countingHash{Hash: sha256.New()}
	dg := digest{meta: meta}
	if ck.opts.Inspect != nil {
		dg.inspect = ck.opts.Inspect(ctx, meta, io.TeeReader(rc, h))
	}
	// The rest, if Inspect stopped early. The stream's errors are
	// sticky, so one that Inspect saw shows here too.
	if _, err := io.Copy(h, rc); err != nil {
		return digest{}, err
	}
	dg.size, dg.sha256 = h.n, hex.EncodeToString(h.Sum(nil))
	return dg, nil
}

// countingHash is a hash that counts the bytes written to it.
type countingHash struct {
	hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.Hash.Write(p)
}

// uploads reports the stale multipart uploads (see staleUploads).
func (ck *checker) uploads(ctx context.Context) error {
	ups, err := ck.s.staleUploads(ctx, ck.cutoff)
	if err != nil {
		return err
	}
	for _, u := range ups {
		n, _ := ck.s.namesForStem(u.stem)
		f := finding{
			p: tiercache.Problem{
				Kind: remote.ProblemStaleUpload, Key: n.key, Object: u.name + " (upload " + u.id + ")",
				Detail: fmt.Sprintf("multipart upload started %s ago and never completed", ck.age(u.initiated)),
			},
			upload: &u,
		}
		if u.unchecked != nil {
			// Perhaps a slow push still sending parts: never aborted.
			f.p.Detail += fmt.Sprintf("; left alone, as whether it still receives parts could not be checked: %v", u.unchecked)
			f.keep = true
		}
		ck.add(f)
	}
	return nil
}

// repair removes what the findings name: the manifests of broken entries
// first, if unchanged since judged, then data objects and markers, then
// aborts stale uploads. A finding is marked repaired when all of its
// removals succeeded.
func (ck *checker) repair(ctx context.Context) error {
	s := ck.s
	var round1, round2 []string
	judged := make(map[string]string) // manifest name -> its ETag as judged
	for _, f := range ck.findings {
		if f.first != "" {
			round1 = append(round1, f.first)
			judged[f.first] = f.etag
		}
	}
	failed1, changed, err1 := s.deleteIfUnchanged(ctx, round1, judged)
	for _, f := range ck.findings {
		if f.first == "" || (!failed1[f.first] && !changed[f.first]) {
			round2 = append(round2, f.then...)
		}
	}
	var failed2 map[string]bool
	var err2 error
	if err1 == nil {
		failed2, err2 = s.deleteObjects(ctx, round2)
	}
	var errs []error
	for i := range ck.findings {
		f := &ck.findings[i]
		if f.keep {
			continue
		}
		if f.upload != nil {
			if err := s.abortStale(ctx, *f.upload); err != nil {
				errs = append(errs, err)
			} else {
				f.p.Repaired = true
			}
			continue
		}
		if changed[f.first] {
			f.dropped = true
			continue
		}
		ok := err1 == nil && err2 == nil && !failed1[f.first]
		for _, name := range f.then {
			ok = ok && !failed2[name]
		}
		f.p.Repaired = ok
	}
	switch {
	case err1 != nil || err2 != nil:
		errs = append(errs, err1, err2)
	case len(failed1)+len(failed2) > 0:
		errs = append(errs, fmt.Errorf("s3: fsck: the server refused to delete %d objects", len(failed1)+len(failed2)))
	}
	return errors.Join(errs...)
}
