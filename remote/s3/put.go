package s3

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/remote"
)

// Put uploads the archive read from r to a new data object, then commits
// it by writing the key's manifest, whose history keeps the replaced
// version readable for the grace (see the package doc and replacedData);
// it then deletes the versions the history drops (see collect).
//
// Archives smaller than one part go up in a single PutObject; larger ones
// as a multipart upload with up to Concurrency parts in flight while r is
// read. On any failure the upload is aborted on a detached, time-bounded
// context and nothing is committed.
//
// In the rare case where the manifest write fails ambiguously (the
// request may have reached the server), Put checks which data object the
// manifest names and deletes its own only if it is not committed, so a
// reader never finds a manifest without its data because of this Put.
func (s *Store) Put(ctx context.Context, meta remote.Meta, r io.Reader) (remote.Meta, error) {
	n, err := s.namesFor(meta.Key)
	if err != nil {
		return remote.Meta{}, err
	}
	if r == nil || meta.Size < 0 || meta.Files < 0 {
		return remote.Meta{}, fmt.Errorf("%w: s3: put key %q: nil reader or negative size or file count", tiercache.ErrInvalidArgument, meta.Key)
	}
	if err := tiercache.ValidatePaths(meta.Paths); err != nil {
		return remote.Meta{}, fmt.Errorf("s3: put key %q: %w", meta.Key, err)
	}
	// Before any upload: a manifest too large to read back would commit
	// an entry nobody can read. The room left is for the fields only
	// known later (history, index, signature).
	if b, err := json.Marshal(manifest{Meta: remote.Meta{Description: meta.Description, Paths: meta.Paths}}); err != nil || len(b) > maxManifestSize-manifestRoom {
		return remote.Meta{}, fmt.Errorf("%w: s3: put key %q: its description and paths take %d bytes encoded, over the %d a manifest holds", tiercache.ErrInvalidArgument, meta.Key, len(b), maxManifestSize-manifestRoom)
	}
	id := newDataID(meta.Size)
	dataName := n.data(id)
	size, sum, index, err := s.upload(ctx, n, dataName, r)
	if err != nil {
		return remote.Meta{}, err
	}

	// Learn which data object the current version uses, as late as
	// possible so that a concurrent writer's commit is rarely missed:
	// the new manifest's history starts with it.
	old, oldErr := s.readManifest(ctx, n)
	if ctx.Err() != nil {
		s.deleteUncommitted(ctx, n, id)
		return remote.Meta{}, mapError(ctx.Err(), s.bucket, "commit", meta.Key)
	}
	if oldErr != nil && !errors.Is(oldErr, tiercache.ErrNotFound) && !errors.Is(oldErr, tiercache.ErrIntegrity) {
		// Replacing a version not known would leave its data to
		// Prune's judgement by upload time, which may delete it under
		// a reader at once.
		s.deleteUncommitted(ctx, n, id)
		return remote.Meta{}, fmt.Errorf("s3: put key %q: the version it would replace cannot be read, so nothing was replaced: %w", meta.Key, oldErr)
	}

	now := time.Now().UTC()
	var history []replacedData
	var expired []string
	if oldErr == nil {
		history, expired = nextHistory(old, id, now, now.Add(-s.cfg.OrphanGrace))
	}
	// Otherwise there is no version to keep, or one whose manifest is
	// corrupt: its data, if any, is left to Prune's judgement by upload
	// time.
	m := manifest{
		Version: versionFor(meta),
		Meta: remote.Meta{
			Key:         meta.Key,
			Description: meta.Description,
			Paths:       slices.Clone(meta.Paths),
			Size:        meta.Size,
			Files:       meta.Files,
			ArchiveSize: size,
			SHA256:      sum,
			Index:       index,
			Signature:   remote.ReaderSignature(r),
			Created:     now,
			LastAccess:  now,
		},
		Data:     id,
		Replaced: history,
	}
	body, err := json.Marshal(m)
	if err == nil && len(body) > maxManifestSize {
		err = fmt.Errorf("%w: it takes %d bytes, over the %d a reader reads", tiercache.ErrInvalidArgument, len(body), maxManifestSize)
	}
	if err != nil {
		s.deleteUncommitted(ctx, n, id)
		return remote.Meta{}, fmt.Errorf("s3: encoding manifest of key %q: %w", meta.Key, err)
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &n.manifest,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
	})
	if err != nil {
		s.deleteUncommitted(ctx, n, id)
		return remote.Meta{}, mapError(err, s.bucket, "commit manifest of", meta.Key)
	}
	s.collect(ctx, n, expired)
	return m.Meta, nil
}

// replacedData is an entry of a manifest's history: a data object of the
// key that a Put replaced, and when. Readers that read the manifest
// naming it before the replacement may still be downloading it, so it
// is kept until At is older than OrphanGrace.
//
// The time of a replacement must be recorded because nothing else tells
// it: a data object's name and LastModified give its upload, and an old
// version's object is old the moment it is replaced. The current
// manifest's time bounds every replacement from above, but on a key
// pushed more often than the grace it is always recent, so nothing would
// ever be collected. At is the replacing writer's clock, like
// Meta.Created; the grace covers clock differences.
type replacedData struct {
	Data string    `json:"data"`
	At   time.Time `json:"at"`
}

// maxReplaced bounds a manifest's history (about 100 bytes an entry): a
// key replaced more often than that within the grace deletes its oldest
// versions early.
const maxReplaced = 64

// replacedAt returns when m's history says data object id was replaced.
func (m *manifest) replacedAt(id string) (time.Time, bool) {
	for _, r := range m.Replaced {
		if r.Data == id {
			return r.At, true
		}
	}
	return time.Time{}, false
}

// nextHistory returns the history of the manifest that replaces old with
// data object id at now: old's data object, replaced now, and old's
// history still within the grace (At not before cutoff), newest first,
// at most maxReplaced entries. It also returns the ids of old's history
// that it leaves out (past the grace, or beyond maxReplaced), which the
// Put deletes once it has committed. Entries that do not name a data
// object are dropped.
func nextHistory(old manifest, id string, now, cutoff time.Time) (keep []replacedData, expired []string) {
	keep = []replacedData{{Data: old.Data, At: now}}
	seen := map[string]bool{old.Data: true, id: true}
	for _, r := range old.Replaced {
		if _, ok := parseDataID(r.Data); !ok || seen[r.Data] {
			continue
		}
		seen[r.Data] = true
		if r.At.Before(cutoff) {
			expired = append(expired, r.Data)
		} else {
			keep = append(keep, r)
		}
	}
	slices.SortStableFunc(keep[1:], func(a, b replacedData) int { return b.At.Compare(a.At) })
	if len(keep) > maxReplaced {
		// Replaced more than maxReplaced versions ago, within the
		// grace: a reader that old is all but impossible, and an
		// untracked object would outlive the grace.
		for _, r := range keep[maxReplaced:] {
			expired = append(expired, r.Data)
		}
		keep = keep[:maxReplaced]
	}
	return keep, expired
}

// collect deletes, after a commit, the data objects the old manifest's
// history held that the new one no longer does: replaced before the
// grace, or the oldest beyond maxReplaced. So a key pushed often keeps
// the versions of one grace even in a bucket that is never pruned, with
// no request but the delete. Best effort: what fails to go is no longer
// tracked, and Prune collects it by its upload time.
//
// Put touches nothing else. Objects no history tracks (killed uploads,
// the commits of racing writers) are Prune's, as before: a young one may
// be another writer's upload about to commit, and telling which takes
// the listings and second looks Prune does.
func (s *Store) collect(ctx context.Context, n names, expired []string) {
	if len(expired) == 0 || ctx.Err() != nil {
		return
	}
	doomed := make([]string, len(expired))
	for i, id := range expired {
		doomed[i] = n.data(id)
	}
	_, _ = s.deleteObjects(ctx, doomed)
}

// deleteUncommitted removes the data object id of a Put that failed after
// uploading it, unless the key's manifest names it (an ambiguous failure
// that committed after all). It runs detached from ctx, which may be done.
func (s *Store) deleteUncommitted(ctx context.Context, n names, id string) {
	dctx, cancel := detached(ctx)
	defer cancel()
	m, err := s.readManifest(dctx, n)
	if err == nil && m.Data == id {
		return
	}
	if err != nil && !errors.Is(err, tiercache.ErrNotFound) && !errors.Is(err, tiercache.ErrIntegrity) {
		// Unknown state: keep the object; if it is an orphan, Prune
		// collects it.
		return
	}
	name := n.data(id)
	_, _ = s.client.DeleteObject(dctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &name})
}

// upload streams r into the object dataName and returns its size,
// lowercase hex SHA-256 and the index r claims (see remote.Indexer). A
// remote.Reuser goes through uploadReusing, which copies what it can.
func (s *Store) upload(ctx context.Context, n names, dataName string, r io.Reader) (int64, string, remote.IndexInfo, error) {
	var h hash.Hash = sha256.New()
	if _, ok := r.(remote.Digester); ok {
		h = discardHash{h} // r hashes the bytes itself
	}
	if ru, ok := r.(remote.Reuser); ok {
		return s.uploadReusing(ctx, n, dataName, ru, h)
	}
	first := s.getBuf()
	nr, err := io.ReadFull(r, *first)
	h.Write((*first)[:nr])
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// The whole archive fits in one part: one request, no
		// multipart bookkeeping.
		defer s.putBuf(first)
		return s.uploadWhole(ctx, n, dataName, r, h, (*first)[:nr])
	case err != nil:
		s.putBuf(first)
		return 0, "", remote.IndexInfo{}, fmt.Errorf("s3: put key %q: reading the archive: %w", n.key, err)
	}
	size, err := s.uploadMultipart(ctx, n, dataName, first, r, h)
	if err != nil {
		return 0, "", remote.IndexInfo{}, err
	}
	return s.uploaded(ctx, n, dataName, r, h, size)
}

// uploadWhole uploads data, all that r yielded (h has hashed it), in one
// PutObject.
func (s *Store) uploadWhole(ctx context.Context, n names, dataName string, r io.Reader, h hash.Hash, data []byte) (int64, string, remote.IndexInfo, error) {
	// At its end already: a reader that claims no digest or a bad index
	// costs no request.
	_, _, err := remote.ReaderDigest(r)
	if err == nil {
		_, err = remote.ReaderIndex(r, int64(len(data)))
	}
	if err != nil {
		return 0, "", remote.IndexInfo{}, fmt.Errorf("s3: put key %q: %w", n.key, err)
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &dataName,
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String("application/zstd"),
	})
	if err != nil {
		return 0, "", remote.IndexInfo{}, mapError(err, s.bucket, "upload archive of", n.key)
	}
	sum, idx, err := endOf(r, h, int64(len(data)))
	return int64(len(data)), sum, idx, err
}

// uploaded returns what r claims at its end about the size bytes it
// yielded, now stored as the multipart object dataName; if the claim
// fails its checks, it deletes the object.
func (s *Store) uploaded(ctx context.Context, n names, dataName string, r io.Reader, h hash.Hash, size int64) (int64, string, remote.IndexInfo, error) {
	sum, idx, err := endOf(r, h, size)
	if err != nil {
		// Uploaded, but not to be committed: no orphan left for Prune.
		dctx, cancel := detached(ctx)
		defer cancel()
		_, _ = s.client.DeleteObject(dctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &dataName})
		return 0, "", remote.IndexInfo{}, fmt.Errorf("s3: put key %q: %w", n.key, err)
	}
	return size, sum, idx, nil
}

// endOf is what r claims at its end, checked: the SHA-256 of what was
// read from r (r's own if it is a Digester, else h's) and r's index if it
// is an Indexer, for an archive of size bytes.
func endOf(r io.Reader, h hash.Hash, size int64) (string, remote.IndexInfo, error) {
	sum, claimed, err := remote.ReaderDigest(r)
	if err != nil {
		return "", remote.IndexInfo{}, err
	}
	if !claimed {
		sum = hex.EncodeToString(h.Sum(nil))
	}
	idx, err := remote.ReaderIndex(r, size)
	if err != nil {
		return "", remote.IndexInfo{}, err
	}
	return sum, idx, nil
}

// discardHash stands in for a hash nobody will read.
type discardHash struct{ hash.Hash }

func (discardHash) Write(p []byte) (int, error) { return len(p), nil }

// uploadMultipart uploads first (a full part) and the rest of r as a
// multipart upload. At most Concurrency parts are in flight and one more
// is being filled from r, so memory stays at PartSize × (Concurrency+1).
// On any failure the upload is aborted.
func (s *Store) uploadMultipart(ctx context.Context, n names, dataName string, first *[]byte, r io.Reader, h hash.Hash) (size int64, err error) {
	uploadID, err := s.startUpload(ctx, n, dataName)
	if err != nil {
		s.putBuf(first)
		return 0, err
	}
	defer func() {
		if err != nil {
			s.abortUpload(ctx, dataName, uploadID)
		}
	}()

	pctx, cancelParts := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(pctx)
	g.SetLimit(s.cfg.Concurrency)
	// free holds buffers returned by finished parts. Buffers are
	// allocated lazily up to Concurrency+1: with SetLimit, once g.Go
	// returns at most Concurrency parts hold one, so one is always free
	// or allocatable for reading the next part.
	free := make(chan *[]byte, s.cfg.Concurrency+1)
	allocated := 1
	var (
		mu    sync.Mutex
		parts []types.CompletedPart
	)
	defer func() {
		_ = g.Wait() // on an early return, let every part stop first
		close(free)
		for b := range free {
			s.putBuf(b)
		}
	}()
	defer cancelParts() // runs first: parts of a failed upload stop early

	buf, filled := first, len(*first)
	size = int64(filled)
	for partNum := int32(1); ; partNum++ {
		last := filled < len(*buf)
		num, data, b := partNum, (*buf)[:filled], buf
		g.Go(func() error {
			defer func() { free <- b }()
			p, err := s.uploadPart(gctx, n, dataName, uploadID, num, data)
			if err != nil {
				return err
			}
			mu.Lock()
			parts = append(parts, p)
			mu.Unlock()
			return nil
		})
		if last {
			break
		}
		var next *[]byte
		if allocated < s.cfg.Concurrency+1 {
			next = s.getBuf()
			allocated++
		} else {
			select {
			case next = <-free:
			case <-gctx.Done():
			}
		}
		if gctx.Err() != nil {
			if next != nil {
				free <- next
			}
			break // a part failed or ctx ended: reported below
		}
		nr, rerr := io.ReadFull(r, *next)
		h.Write((*next)[:nr])
		size += int64(nr)
		if rerr == io.EOF {
			free <- next // the archive ended at a part boundary
			break
		}
		if rerr != nil && rerr != io.ErrUnexpectedEOF {
			free <- next
			return 0, fmt.Errorf("s3: put key %q: reading the archive: %w", n.key, rerr)
		}
		if partNum >= maxParts {
			free <- next
			return 0, fmt.Errorf("%w: s3: put key %q: the archive needs more than %d parts of %d bytes; raise the part size",
				tiercache.ErrLimitExceeded, n.key, maxParts, s.cfg.PartSize)
		}
		buf, filled = next, nr
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, mapError(err, s.bucket, "upload archive of", n.key)
	}
	if err := s.completeUpload(ctx, n, dataName, uploadID, parts, size); err != nil {
		return 0, err
	}
	return size, nil
}

// startUpload creates a multipart upload of dataName and returns its id.
func (s *Store) startUpload(ctx context.Context, n names, dataName string) (*string, error) {
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:      &s.bucket,
		Key:         &dataName,
		ContentType: aws.String("application/zstd"),
	})
	if err != nil {
		// An attempt may have created an upload whose answer was lost.
		s.abortStrays(ctx, dataName, "")
		return nil, mapError(err, s.bucket, "start upload of", n.key)
	}
	if a, ok := retry.GetAttemptResults(created.ResultMetadata); ok && len(a.Results) > 1 {
		s.abortStrays(ctx, dataName, aws.ToString(created.UploadId))
	}
	return created.UploadId, nil
}

// abortUpload aborts a failed multipart upload. Parts left behind cost
// storage forever (unless a bucket lifecycle rule exists), so it runs
// detached: even when ctx is what failed.
func (s *Store) abortUpload(ctx context.Context, dataName string, uploadID *string) {
	actx, cancel := detached(ctx)
	defer cancel()
	_, _ = s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket: &s.bucket, Key: &dataName, UploadId: uploadID,
	})
}

// uploadPart uploads data as part num of the upload.
func (s *Store) uploadPart(ctx context.Context, n names, dataName string, uploadID *string, num int32, data []byte) (types.CompletedPart, error) {
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:        &s.bucket,
		Key:           &dataName,
		UploadId:      uploadID,
		PartNumber:    aws.Int32(num),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return types.CompletedPart{}, mapError(err, s.bucket, fmt.Sprintf("upload part %d of", num), n.key)
	}
	return types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)}, nil
}

// completeUpload completes the upload of an object of size bytes from
// parts, in any order.
func (s *Store) completeUpload(ctx context.Context, n names, dataName string, uploadID *string, parts []types.CompletedPart, size int64) error {
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return cmp.Compare(*a.PartNumber, *b.PartNumber) })
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &s.bucket,
		Key:             &dataName,
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err == nil && out.ETag == nil {
		// S3 answers 200 at once and the outcome later, in the body
		// (the SDK takes an <Error> there for a failure): a body with
		// no result, cut short or blank, tells nothing. The object
		// tells.
		if s.completedAnyway(ctx, dataName, size) {
			return nil
		}
		return fmt.Errorf("s3: complete upload of key %q: the server answered 200 with no result, and the object is not there", n.key)
	}
	if err != nil {
		if code, _ := errorCode(err); code == "NoSuchUpload" && s.completedAnyway(ctx, dataName, size) {
			return nil
		}
		return mapError(err, s.bucket, "complete upload of", n.key)
	}
	return nil
}

// completedAnyway reports whether the object dataName exists with size
// bytes after CompleteMultipartUpload reported NoSuchUpload (an attempt
// whose answer was lost completed the upload, and the SDK's retry then
// found it gone) or answered with no result. dataName is unique to one
// Put, so the object is ours.
func (s *Store) completedAnyway(ctx context.Context, dataName string, size int64) bool {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &dataName})
	return err == nil && aws.ToInt64(out.ContentLength) == size
}

// abortStrays aborts the multipart uploads of dataName other than keep.
// A CreateMultipartUpload retried after its answer was lost leaves an
// upload nobody knows the id of, whose parts would be billed forever
// (unless a lifecycle rule expires them). dataName is unique to one Put,
// so every upload under it is this Put's. Best effort, on a detached
// context: a failure leaves the strays to a lifecycle rule.
func (s *Store) abortStrays(ctx context.Context, dataName, keep string) {
	dctx, cancel := detached(ctx)
	defer cancel()
	out, err := s.client.ListMultipartUploads(dctx, &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &dataName})
	if err != nil {
		return
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) != dataName || aws.ToString(u.UploadId) == keep {
			continue
		}
		_, _ = s.client.AbortMultipartUpload(dctx, &s3.AbortMultipartUploadInput{
			Bucket: &s.bucket, Key: &dataName, UploadId: u.UploadId,
		})
	}
}
