//go:build unix

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercache/tiercache/internal/treetest"
)

// The reuse pairs (--reuse) measure a push that uploads only what
// changed since a base entry. Before the rounds, a second version of the
// tree is made: a copy of it (cp -a; the tree itself is never modified)
// with one new directory of about 1 MB (several files) in the middle of
// the tree, and one existing file changed. Each round r then runs, every
// push in the default mode, on one local tier for the round (so v1's
// archive is at hand locally, as after a pull of the base, and the pushes
// with a base copy its frames instead of compressing them), and through
// a reverse proxy in front of MinIO that counts the request body bytes
// crossing it:
//
//	v1       push --no-base K1 DIR          a full upload: the base
//	v2       push --base K1 K2 DIR2         pair "push --base (v2)", A
//	v2 full  push --no-base K2F DIR2        pair "push --base (v2)", B
//	renamed  push --base K1 K3 DIR          pair "push --base (renamed)", A
//
// with v1 as the renamed pair's B (the same tree, uploaded whole). Right
// after v1's push, the round's local tier (v1's archive in it) is copied
// twice, untimed, as two machines that pulled v1; after v2's push each
// pulls v2 through the proxy, which counts the response bytes:
//
//	pull v2       pull --restore-key K1 K2 DEST  pair "pull, v1 local (v2)", A
//	pull v2 full  pull --no-base K2 DEST         pair "pull, v1 local (v2)", B
//
// A reads the frames v2 shares with v1 from the local archive and
// downloads the rest; B downloads every byte. Round 1's trees are
// compared with DIR2, untimed, after the round. Every
// round's composed objects must have the SHA-256 of the full push of the
// same tree (v2 against v2 full, renamed against v1, from the
// manifests); after the rounds, round 1's v2 object is restored with
// mc cat | zstd -d | tar -x, its bytes hashed on the way, and the tree
// compared with DIR2. A restored tree that differs, or an object whose
// bytes do not match its manifest, fails the run; a SHA-256 that differs
// from the full push's is a target missed.

// Names of the reuse pairs.
const (
	reuseV2Pair      = "push --base (v2)"
	reuseRenamedPair = "push --base (renamed)"
	reusePullPair    = "pull, v1 local (v2)"
)

// Targets of the reuse pairs.
const (
	reuseSentLimit        = 0.05 // v2: bytes sent / object size
	reuseTimeLimit        = 0.3  // v2's push time / v1's full push time
	reuseRenamedSentLimit = 0.01 // renamed: bytes sent / object size
)

// reuseNewDirBytes is the size of the directory v2 adds, in
// reuseNewDirFiles files.
const (
	reuseNewDirBytes = 1_000_000
	reuseNewDirFiles = 8
)

// reuseResult is what the reuse pairs measured beyond their times.
type reuseResult struct {
	// NewDir is the directory v2 adds, relative to the tree root, with
	// NewDirFiles files of NewDirBytes in all; ChangedFile the file v2
	// changes, ChangedBytes the bytes inserted into it.
	NewDir       string `json:"new_dir"`
	NewDirFiles  int    `json:"new_dir_files"`
	NewDirBytes  int64  `json:"new_dir_bytes"`
	ChangedFile  string `json:"changed_file"`
	ChangedBytes int64  `json:"changed_bytes"`
	// LinkMbit is the proxy's upload rate limit (--reuse-link), 0 for
	// none: the pushes then cross loopback at memory speed.
	LinkMbit float64 `json:"link_mbit,omitempty"`
	// PrepareSeconds is the time the copy and the changes took (untimed).
	PrepareSeconds float64      `json:"prepare_seconds"`
	Rounds         []reuseRound `json:"rounds"`
	// SentShare is the largest share, over the rounds, of v2's object
	// that crossed the proxy in request bodies; RenamedSentShare the same
	// for the renamed key.
	SentShare        float64 `json:"sent_share"`
	RenamedSentShare float64 `json:"renamed_sent_share"`
	// TimeRatio is v2's median push time over v1's (full) median.
	TimeRatio      float64 `json:"time_ratio_to_v1"`
	V1Seconds      float64 `json:"median_seconds_v1"`
	V2Seconds      float64 `json:"median_seconds_v2"`
	RenamedSeconds float64 `json:"median_seconds_renamed"`
	// SameSHA: in every round, v2's object had the SHA-256 of v2 full's,
	// and the renamed key's that of v1's (from the manifests).
	SameSHA bool `json:"same_sha256_as_full_push"`
	// Restored: round 1's v2 object, restored with mc cat | zstd -d |
	// tar -x, equals DIR2, and its bytes have its manifest's SHA-256.
	Restored   bool   `json:"restored_equal"`
	RestoreLog string `json:"restore,omitempty"`
}

// reuseRound is one round's four pushes and two pulls.
type reuseRound struct {
	Round      int       `json:"round"`
	V1         reusePush `json:"v1"`
	V2         reusePush `json:"v2"`
	V2Full     reusePush `json:"v2_full"`
	Renamed    reusePush `json:"renamed"`
	PullV2     reusePull `json:"pull_v2"`
	PullV2Full reusePull `json:"pull_v2_full"`
}

// reusePull is one pull of the reuse pairs: what it said (--json) and
// what the proxy counted.
type reusePull struct {
	Key             string  `json:"key"`
	Base            string  `json:"base,omitempty"`
	DownloadedBytes int64   `json:"downloaded_bytes"`
	FromBaseBytes   int64   `json:"from_base_bytes"`
	ReceivedBytes   int64   `json:"received_bytes"`
	Requests        int64   `json:"requests"`
	Seconds         float64 `json:"seconds"`
}

// reusePush is one push of the reuse pairs: what it said (--json), what
// the proxy counted, and its manifest's digest.
type reusePush struct {
	Key           string `json:"key"`
	Base          string `json:"base,omitempty"`
	ArchiveBytes  int64  `json:"archive_bytes"`
	FramesReused  int    `json:"frames_reused"`
	FramesKept    int    `json:"frames_kept"`
	CopiedBytes   int64  `json:"copied_bytes"`
	UploadedBytes int64  `json:"uploaded_bytes"`
	// SentBytes and ReceivedBytes are the request and response body
	// bytes the proxy forwarded during the push; Requests its requests.
	SentBytes     int64   `json:"sent_bytes"`
	ReceivedBytes int64   `json:"received_bytes"`
	Requests      int64   `json:"requests"`
	SHA256        string  `json:"sha256"`
	Seconds       float64 `json:"seconds"`
}

// sentShare is the share of the object that crossed the proxy.
func (p reusePush) sentShare() float64 {
	if p.ArchiveBytes == 0 {
		return 0
	}
	return float64(p.SentBytes) / float64(p.ArchiveBytes)
}

// reuseDiskNeed is what the reuse pairs add to a run's disk use, for a
// tree of n bytes: the changed copy, the restored tree, and a round's 4
// objects, 2 copies of the local tier and 2 pulled trees (each about as
// large as the tree, at worst).
func reuseDiskNeed(n int64, rounds int) int64 {
	return (2 + 10*int64(rounds)) * n
}

// reusePairs runs the reuse pairs on the current tree.
func (b *bench) reusePairs(ctx context.Context) error {
	res := &reuseResult{NewDirFiles: reuseNewDirFiles, LinkMbit: b.cfg.reuseLink}
	v2 := b.path("reuse-v2")
	start := time.Now()
	if err := b.makeV2(ctx, v2, res); err != nil {
		return fmt.Errorf("reuse: making the tree's second version: %w", err)
	}
	res.PrepareSeconds = time.Since(start).Seconds()
	logf("reuse: v2 is the tree plus %s (%d files, %s) and %s changed (+%d bytes), made in %s",
		res.NewDir, res.NewDirFiles, formatBytes(res.NewDirBytes), res.ChangedFile, res.ChangedBytes, time.Since(start).Round(time.Millisecond))

	proxy, err := startCountingProxy(b.srv.Endpoint, b.cfg.reuseLink*1e6/8)
	if err != nil {
		return err
	}
	defer proxy.close()

	pv2 := &pair{
		Name:     reuseV2Pair,
		CommandA: "tiercache push --base K1 K2 DIR2 (DIR2: DIR plus a new 1 MB directory and one changed file; K1: DIR pushed whole, its archive in the local tier)",
		CommandB: "tiercache push --no-base K2F DIR2 (the same tree uploaded whole)",
	}
	pren := &pair{
		Name:     reuseRenamedPair,
		CommandA: "tiercache push --base K1 K3 DIR (the tree of K1 under a new key)",
		CommandB: "tiercache push --no-base K1 DIR (K1 itself, uploaded whole; run first in each round)",
	}
	ppull := &pair{
		Name:     reusePullPair,
		CommandA: "tiercache pull --restore-key K1 K2 DEST (K2: DIR2 pushed with K1 as base; the local tier holds K1's archive, so only the frames K1 lacks are downloaded)",
		CommandB: "tiercache pull --no-base K2 DEST (the same local tier; every byte downloaded)",
	}
	b.inputs = []string{b.src, v2}
	// push runs one timed push of dir under key through the proxy.
	push := func(r int, what, key, dir string, flags ...string) (sample, reusePush, error) {
		tier := b.path("reuse-tier-%d", r)
		args := append(append([]string{"push"}, flags...), key, dir)
		cmd := b.tiercacheCmd(ctx, tier, args...)
		cmd.Env = append(cmd.Env, "TIERCACHE_S3_ENDPOINT="+proxy.URL) // the last one counts
		before := proxy.counts()
		s, out, err := b.timed(ctx, cmd, r)
		if err != nil {
			return s, reusePush{}, err
		}
		after := proxy.counts()
		var pj struct {
			Uploaded      bool   `json:"uploaded"`
			ArchiveBytes  int64  `json:"archive_bytes"`
			Base          string `json:"base"`
			FramesReused  int    `json:"frames_reused"`
			FramesKept    int    `json:"frames_kept"`
			CopiedBytes   int64  `json:"copied_bytes"`
			UploadedBytes int64  `json:"uploaded_bytes"`
			Error         string `json:"error"`
		}
		if err := parseJSON(out, &pj, "tiercache push"); err != nil {
			return s, reusePush{}, err
		}
		if !pj.Uploaded {
			return s, reusePush{}, fmt.Errorf("reuse: %s push %s did not upload: %s", what, key, out)
		}
		rp := reusePush{
			Key: key, Base: pj.Base, ArchiveBytes: pj.ArchiveBytes, FramesReused: pj.FramesReused, FramesKept: pj.FramesKept,
			CopiedBytes: pj.CopiedBytes, UploadedBytes: pj.UploadedBytes,
			SentBytes: after.sent - before.sent, ReceivedBytes: after.received - before.received,
			Requests: after.requests - before.requests, Seconds: s.Seconds,
		}
		if rp.SHA256, _, _, err = b.manifest(ctx, key); err != nil {
			return s, rp, err
		}
		logf("%-7s %d/%d: %s; sent %s of %s (%.2f%%), %d frames reused (%d kept from the local copy), base %q",
			what, r, b.cfg.rounds, s, formatBytes(rp.SentBytes), formatBytes(rp.ArchiveBytes), 100*rp.sentShare(), rp.FramesReused, rp.FramesKept, rp.Base)
		return s, rp, nil
	}
	// pull runs one timed pull of key through the proxy, on the copy of
	// round r's local tier for side.
	pull := func(r int, what, side, key string, flags ...string) (sample, reusePull, error) {
		args := append(append([]string{"pull"}, flags...), key, b.path("reuse-pull-%d-%s", r, side))
		cmd := b.tiercacheCmd(ctx, b.path("reuse-pull-tier-%d-%s", r, side), args...)
		cmd.Env = append(cmd.Env, "TIERCACHE_S3_ENDPOINT="+proxy.URL)
		before := proxy.counts()
		s, out, err := b.timed(ctx, cmd, r)
		if err != nil {
			return s, reusePull{}, err
		}
		after := proxy.counts()
		var pj struct {
			Hit             bool   `json:"hit"`
			Tier            string `json:"tier"`
			Base            string `json:"base"`
			DownloadedBytes int64  `json:"downloaded_bytes"`
			FromBaseBytes   int64  `json:"from_base_bytes"`
		}
		if err := parseJSON(out, &pj, "tiercache pull"); err != nil {
			return s, reusePull{}, err
		}
		if !pj.Hit || pj.Tier != "remote" {
			return s, reusePull{}, fmt.Errorf("reuse: %s %s was no download: %s", what, key, out)
		}
		rp := reusePull{Key: key, Base: pj.Base, DownloadedBytes: pj.DownloadedBytes, FromBaseBytes: pj.FromBaseBytes,
			ReceivedBytes: after.received - before.received, Requests: after.requests - before.requests, Seconds: s.Seconds}
		logf("%-12s %d/%d: %s; received %s, %s read from the local copy of %q",
			what, r, b.cfg.rounds, s, formatBytes(rp.ReceivedBytes), formatBytes(rp.FromBaseBytes), rp.Base)
		return s, rp, nil
	}
	res.SameSHA = true
	ppull.Verified = true
	for r := 1; r <= b.cfg.rounds; r++ {
		k1 := fmt.Sprintf("reuse-v1-r%d", r)
		k2 := fmt.Sprintf("reuse-v2-r%d", r)
		round := reuseRound{Round: r}
		var s sample
		var err error
		if s, round.V1, err = push(r, "v1", k1, b.src, "--no-base"); err != nil {
			return err
		}
		pren.B = append(pren.B, s)
		for _, side := range []string{"a", "b"} {
			if _, err := b.exec(ctx, b.plainCmd(ctx, "cp", "-a", b.path("reuse-tier-%d", r), b.path("reuse-pull-tier-%d-%s", r, side))); err != nil {
				return err
			}
		}
		if s, round.V2, err = push(r, "v2", k2, v2, "--base", k1); err != nil {
			return err
		}
		pv2.A = append(pv2.A, s)
		if s, round.PullV2, err = pull(r, "pull v2", "a", k2, "--restore-key", k1); err != nil {
			return err
		}
		if round.PullV2.Base != k1 {
			return fmt.Errorf("reuse: pull v2 %d/%d took no frames from the local copy of %s (base %q)", r, b.cfg.rounds, k1, round.PullV2.Base)
		}
		ppull.A = append(ppull.A, s)
		if s, round.PullV2Full, err = pull(r, "pull v2 full", "b", k2, "--no-base"); err != nil {
			return err
		}
		ppull.B = append(ppull.B, s)
		if s, round.V2Full, err = push(r, "v2 full", fmt.Sprintf("reuse-v2full-r%d", r), v2, "--no-base"); err != nil {
			return err
		}
		pv2.B = append(pv2.B, s)
		if s, round.Renamed, err = push(r, "renamed", fmt.Sprintf("reuse-renamed-r%d", r), b.src, "--base", k1); err != nil {
			return err
		}
		pren.A = append(pren.A, s)
		if r == 1 {
			// Untimed, after the round's timed commands.
			for _, side := range []string{"a", "b"} {
				diff, err := treetest.Diff(v2, b.path("reuse-pull-%d-%s", r, side))
				if err != nil || len(diff) > 0 {
					ppull.Verified = false
					logf("reuse: pull %s of round 1 differs from DIR2: %v %v", side, err, diff[:min(len(diff), 5)])
				}
			}
		}
		for _, p := range []string{"reuse-tier-%d", "reuse-pull-tier-%d-a", "reuse-pull-tier-%d-b", "reuse-pull-%d-a", "reuse-pull-%d-b"} {
			if err := b.trash(b.path(p, r)); err != nil {
				return err
			}
		}
		for _, c := range []struct {
			what      string
			got, full reusePush
		}{{"v2", round.V2, round.V2Full}, {"renamed", round.Renamed, round.V1}} {
			if c.got.SHA256 != c.full.SHA256 || c.got.ArchiveBytes != c.full.ArchiveBytes {
				res.SameSHA = false
				logf("reuse: round %d: %s's object is %s (%d bytes), the full push's %s (%d bytes)", r, c.what, c.got.SHA256, c.got.ArchiveBytes, c.full.SHA256, c.full.ArchiveBytes)
			}
		}
		res.SentShare = max(res.SentShare, round.V2.sentShare())
		res.RenamedSentShare = max(res.RenamedSentShare, round.Renamed.sentShare())
		res.Rounds = append(res.Rounds, round)
	}
	// Once, untimed, after the rounds: extracting the tree between timed
	// commands would leave them its writeback and page cache.
	if err := b.reuseRestore(ctx, "reuse-v2-r1", v2, res); err != nil {
		return err
	}
	pv2.Verified = true
	pv2.VerifyLog = "round 1's v2 object, restored with mc cat | zstd -d | tar -x, equals DIR2 (treetest.Diff); every round's object is compared with the full push's by SHA-256"
	pren.Verified = true
	pren.VerifyLog = "every round's object is compared with K1's by SHA-256"
	ppull.VerifyLog = "round 1's two pulled trees equal DIR2 (treetest.Diff); every pull's archive is verified against its manifest by tiercache"
	pv2.summarize()
	pren.summarize()
	ppull.summarize()
	res.V1Seconds, res.V2Seconds, res.RenamedSeconds = pren.MedianB, pv2.MedianA, pren.MedianA
	if res.V1Seconds > 0 {
		res.TimeRatio = res.V2Seconds / res.V1Seconds
	}
	b.res.Pairs = append(b.res.Pairs, pv2, pren, ppull)
	b.res.Reuse = res
	if err := b.trash(v2); err != nil {
		return err
	}
	return b.emptyTrash(ctx)
}

// makeV2 copies the tree to dir and changes the copy: a new directory of
// reuseNewDirBytes beside the middle file of the tree (in walk order, as
// the archive holds them), and one existing file, a quarter of the way
// in, gets a line inserted in its middle. Every choice derives from the
// tree and the seed, so a tree always gets the same second version.
func (b *bench) makeV2(ctx context.Context, dir string, res *reuseResult) error {
	if _, err := b.exec(ctx, b.plainCmd(ctx, "cp", "-a", b.src, dir)); err != nil {
		return err
	}
	type file struct {
		rel  string
		size int64
	}
	var files []file
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, file{rel, fi.Size()})
		return nil
	})
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return errors.New("the tree has no regular file")
	}

	// The new directory, in the directory of the middle file.
	parent := filepath.Join(dir, filepath.Dir(files[len(files)/2].rel))
	newDir := filepath.Join(parent, "reuse-bench-new")
	err = withWritable(parent, func() error {
		if err := os.Mkdir(newDir, 0o755); err != nil {
			return err
		}
		v := newVocabulary(b.cfg.seed)
		kinds := []fileKind{kindGo, kindGo, kindText, kindBinary, kindGo, kindText, kindGo, kindAsm}
		var buf []byte
		left := int64(reuseNewDirBytes)
		for i := range reuseNewDirFiles {
			// Halving sizes, the last file taking what is left.
			n := left / 2
			if i == reuseNewDirFiles-1 {
				n = left
			}
			left -= n
			f := fileSpec{size: n, kind: kinds[i%len(kinds)], random: 0.5, seed: b.cfg.seed<<8 | uint64(i), pkg: "reusebench"}
			buf = f.content(v, buf[:0])
			if err := os.WriteFile(filepath.Join(newDir, fmt.Sprintf("new_%d%s", i, reuseExt(f.kind))), buf, 0o644); err != nil {
				return err
			}
			res.NewDirBytes += n
		}
		return nil
	})
	if err != nil {
		return err
	}
	if res.NewDir, err = filepath.Rel(dir, newDir); err != nil {
		return err
	}

	// The changed file: from a quarter of the way in, the first of 4 KiB
	// to 1 MiB (else any non-empty one), outside the new directory.
	pick := -1
	for i := len(files) / 4; i < len(files) && pick < 0; i++ {
		if files[i].size >= 4<<10 && files[i].size <= 1<<20 {
			pick = i
		}
	}
	for i := 0; i < len(files) && pick < 0; i++ {
		if files[i].size > 0 {
			pick = i
		}
	}
	if pick < 0 {
		pick = 0
	}
	res.ChangedFile = files[pick].rel
	name := filepath.Join(dir, res.ChangedFile)
	fi, err := os.Lstat(name)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	line := []byte("\n// changed for the reuse benchmark: the second version of this file\n")
	mid := len(data) / 2
	data = slices.Concat(data[:mid], line, data[mid:])
	res.ChangedBytes = int64(len(line))
	if err := os.Chmod(name, fi.Mode().Perm()|0o200); err != nil {
		return err
	}
	if err := os.WriteFile(name, data, 0); err != nil {
		return err
	}
	return os.Chmod(name, fi.Mode().Perm())
}

// reuseExt is a file name extension for content of kind k.
func reuseExt(k fileKind) string {
	switch k {
	case kindGo:
		return ".go"
	case kindAsm:
		return ".s"
	case kindBinary:
		return ".bin"
	}
	return ".txt"
}

// withWritable runs fn with dir writable by its owner, then gives dir
// back its mode (its mtime is fn's to change: the directory did change).
func withWritable(dir string, fn func() error) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if err := os.Chmod(dir, fi.Mode().Perm()|0o700); err != nil {
		return err
	}
	return errors.Join(fn(), os.Chmod(dir, fi.Mode().Perm()))
}

// manifest reads key's manifest from the benchmark's bucket: the
// archive's SHA-256 and size, and the name of its data object.
func (b *bench) manifest(ctx context.Context, key string) (sum string, size int64, data string, err error) {
	out, err := b.exec(ctx, b.plainCmd(ctx, b.mc, "cat", fmt.Sprintf("%s/%s/%s/manifests/%s.json", mcAlias, b.bucket, tcPrefix, key)))
	if err != nil {
		return "", 0, "", err
	}
	var m struct {
		Meta struct {
			SHA256      string `json:"sha256"`
			ArchiveSize int64  `json:"archive_size"`
		} `json:"meta"`
		Data string `json:"data"`
	}
	if err := parseJSON(out, &m, "the manifest of "+key); err != nil {
		return "", 0, "", err
	}
	if m.Meta.SHA256 == "" || m.Data == "" {
		return "", 0, "", fmt.Errorf("the manifest of %s names no digest or data object: %s", key, out)
	}
	return m.Meta.SHA256, m.Meta.ArchiveSize, m.Data, nil
}

// reuseRestore restores key's object with mc cat | zstd -d | tar -x,
// hashing its bytes on the way, and checks the tree against want and the
// bytes against the manifest.
func (b *bench) reuseRestore(ctx context.Context, key, want string, res *reuseResult) error {
	sum, size, data, err := b.manifest(ctx, key)
	if err != nil {
		return err
	}
	dest := b.path("reuse-restored")
	if err := os.Mkdir(dest, 0o755); err != nil {
		return err
	}
	start := time.Now()
	cat := b.plainCmd(ctx, b.mc, "cat", fmt.Sprintf("%s/%s/%s/data/%s/%s", mcAlias, b.bucket, tcPrefix, key, data))
	catErr := &tailBuffer{max: 4096}
	cat.Stderr = catErr
	pipe, err := cat.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cat.Start(); err != nil {
		return err
	}
	h := sha256.New()
	n := &countWriter{}
	in := io.TeeReader(pipe, io.MultiWriter(h, n))
	x := b.shellCmd(ctx, "zstd -d -q | tar -xf - -C "+quote(dest))
	x.Stdin = in
	xOut, xErr := x.CombinedOutput()
	// Whatever zstd left unread still counts for the digest.
	_, drainErr := io.Copy(io.Discard, in)
	catWait := cat.Wait()
	switch {
	case xErr != nil:
		return fmt.Errorf("reuse: zstd -d | tar -x of %s's object: %w\n%s", key, xErr, strings.TrimSpace(string(xOut)))
	case drainErr != nil || catWait != nil:
		return fmt.Errorf("reuse: mc cat of %s's object: %w\n%s", key, errors.Join(drainErr, catWait), strings.TrimSpace(catErr.String()))
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != sum || n.n != size {
		return fmt.Errorf("reuse: %s's object is %d bytes of SHA-256 %s, its manifest says %d bytes of %s", key, n.n, got, size, sum)
	}
	diffs, err := treetest.Diff(want, dest)
	if err != nil {
		return fmt.Errorf("reuse: verify %s: %w", key, err)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("reuse: %s restored with zstd -d | tar -x differs from its tree in %d ways, first: %s", key, len(diffs), strings.Join(diffs[:min(len(diffs), 10)], "; "))
	}
	res.Restored = true
	res.RestoreLog = fmt.Sprintf("%s's object (%s, SHA-256 %s…, as its manifest says) restored with mc cat | zstd -d | tar -x: 0 differences from its tree", key, formatBytes(size), sum[:12])
	logf("reuse: %s (%s)", res.RestoreLog, time.Since(start).Round(time.Millisecond))
	return b.trash(dest)
}

// countWriter counts what is written to it.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// countingProxy is a reverse proxy on loopback in front of MinIO that
// counts the request and response body bytes it forwards: what a push
// sends to the server, and reads from it, at the transport. Requests keep
// their Host header, so signatures made for the proxy's address verify at
// MinIO.
type countingProxy struct {
	URL string
	srv *http.Server
	tr  *http.Transport

	sent, received, requests atomic.Int64

	// up and down pace request and response bodies, all connections
	// together, like the two directions of a link.
	up, down pacer
}

// pacer holds a direction of the link to rate bytes per second, if
// positive; next is when it is free again.
type pacer struct {
	rate float64
	mu   sync.Mutex
	next time.Time
}

// proxyCounts is a snapshot of a countingProxy's counters.
type proxyCounts struct{ sent, received, requests int64 }

// startCountingProxy starts a countingProxy in front of endpoint that
// forwards request and response bodies at up to rate bytes per second
// each way (unlimited if rate is 0).
func startCountingProxy(endpoint string, rate float64) (*countingProxy, error) {
	target, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{URL: "http://" + ln.Addr().String(), tr: http.DefaultTransport.(*http.Transport).Clone()}
	p.up.rate, p.down.rate = rate, rate
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = target.Scheme, target.Host
			r.Out.Host = r.In.Host
			if r.Out.Body != nil {
				r.Out.Body = countingBody{r.Out.Body, &p.sent, &p.up}
			}
			p.requests.Add(1)
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Body = countingBody{resp.Body, &p.received, &p.down}
			return nil
		},
		Transport: p.tr,
	}
	p.srv = &http.Server{Handler: rp, ReadHeaderTimeout: time.Minute}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *countingProxy) counts() proxyCounts {
	return proxyCounts{p.sent.Load(), p.received.Load(), p.requests.Load()}
}

func (p *countingProxy) close() {
	_ = p.srv.Close()
	p.tr.CloseIdleConnections()
}

// countingBody adds what is read of a body to n, at paced's pace.
type countingBody struct {
	io.ReadCloser
	n     *atomic.Int64
	paced *pacer
}

func (b countingBody) Read(q []byte) (int, error) {
	if b.paced.rate > 0 {
		q = q[:min(len(q), 64<<10)] // small steps keep the pace smooth
	}
	k, err := b.ReadCloser.Read(q)
	b.n.Add(int64(k))
	b.paced.wait(k)
	return k, err
}

// wait holds the caller until the link has carried k more bytes after
// those already reserved by every connection.
func (p *pacer) wait(k int) {
	if p.rate <= 0 || k == 0 {
		return
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(float64(k) / p.rate * float64(time.Second)))
	until := p.next
	p.mu.Unlock()
	time.Sleep(time.Until(until))
}

// reuseTargets are the reuse pairs' targets, skipped when they did not
// run.
func (r *results) reuseTargets() []target {
	goals := []string{
		fmt.Sprintf("push --base after a small change: bytes sent ≤ %.0f%% of the object", reuseSentLimit*100),
		fmt.Sprintf("push --base after a small change ≤ %.1f× the full push of its base", reuseTimeLimit),
		fmt.Sprintf("push --base under a renamed key: bytes sent ≤ %.0f%% of the object", reuseRenamedSentLimit*100),
		"push --base: the object restores exactly (with zstd -d and tar -x) and has a full push's SHA-256",
	}
	u := r.Reuse
	if u == nil || len(u.Rounds) == 0 {
		ts := make([]target, len(goals))
		for i, g := range goals {
			ts[i] = target{Goal: g, Skipped: true}
		}
		return ts
	}
	v2, ren := u.Rounds[0].V2, u.Rounds[0].Renamed
	check := "no"
	switch {
	case u.Restored && u.SameSHA:
		check = "restored with 0 differences; SHA-256 equal to the --no-base push's in every round"
	case u.Restored:
		check = "restored with 0 differences; SHA-256 DIFFERS from the --no-base push's (see the log)"
	}
	return []target{
		{Goal: goals[0], Measured: fmt.Sprintf("%.2f%% (%s of %s, worst round; %s copied server-side)",
			100*u.SentShare, formatBytes(v2.SentBytes), formatBytes(v2.ArchiveBytes), formatBytes(v2.CopiedBytes)), Met: u.SentShare <= reuseSentLimit},
		{Goal: goals[1], Measured: fmt.Sprintf("%.2f× (%.2f s vs %.2f s)", u.TimeRatio, u.V2Seconds, u.V1Seconds), Met: u.TimeRatio <= reuseTimeLimit},
		{Goal: goals[2], Measured: fmt.Sprintf("%.3f%% (%s of %s, worst round)",
			100*u.RenamedSentShare, formatBytes(ren.SentBytes), formatBytes(ren.ArchiveBytes)), Met: u.RenamedSentShare <= reuseRenamedSentLimit},
		{Goal: goals[3], Measured: check, Met: u.Restored && u.SameSHA},
	}
}

// reuseMarkdown renders the bytes the reuse pairs sent, round by round.
func (r *results) reuseMarkdown(w io.Writer) {
	u := r.Reuse
	if u == nil {
		return
	}
	link := "no rate limit: loopback"
	if u.LinkMbit > 0 {
		link = fmt.Sprintf("limited to %g Mbit/s each way at the proxy (--reuse-link)", u.LinkMbit)
	}
	fmt.Fprintf(w, "Reuse (`--reuse`, %s): DIR2 is the tree plus `%s` (%d files, %s) and `%s` changed (%d bytes inserted). Bytes sent are request bodies counted by a proxy in front of MinIO (its CPU is the harness's, not the command's); %% of the object pushed.\n\n", link,
		u.NewDir, u.NewDirFiles, formatBytes(u.NewDirBytes), u.ChangedFile, u.ChangedBytes)
	fmt.Fprintln(w, "| round | push | time | sent | of the object | received | requests | frames reused | copied server-side | base |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, rd := range u.Rounds {
		for _, c := range []struct {
			what string
			p    reusePush
		}{{"v1 (--no-base)", rd.V1}, {"v2 (--base v1)", rd.V2}, {"v2 (--no-base)", rd.V2Full}, {"renamed (--base v1)", rd.Renamed}} {
			base := c.p.Base
			if base == "" {
				base = "—"
			}
			fmt.Fprintf(w, "| %d | %s | %.2f s | %s | %.2f%% | %s | %d | %d | %s | %s |\n",
				rd.Round, c.what, c.p.Seconds, formatBytes(c.p.SentBytes), 100*c.p.sentShare(), formatBytes(c.p.ReceivedBytes),
				c.p.Requests, c.p.FramesReused, formatBytes(c.p.CopiedBytes), base)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Pulls of v2 on a machine whose local tier holds v1's archive (received: response bodies at the proxy):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| round | pull | time | received | downloaded | read from the local copy | requests | base |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---|")
	for _, rd := range u.Rounds {
		for _, c := range []struct {
			what string
			p    reusePull
		}{{"v2 (--restore-key v1)", rd.PullV2}, {"v2 (--no-base)", rd.PullV2Full}} {
			base := c.p.Base
			if base == "" {
				base = "—"
			}
			fmt.Fprintf(w, "| %d | %s | %.2f s | %s | %s | %s | %d | %s |\n",
				rd.Round, c.what, c.p.Seconds, formatBytes(c.p.ReceivedBytes), formatBytes(c.p.DownloadedBytes), formatBytes(c.p.FromBaseBytes), c.p.Requests, base)
		}
	}
	fmt.Fprintln(w)
	if u.RestoreLog != "" {
		fmt.Fprintf(w, "- %s.\n\n", u.RestoreLog)
	}
}
