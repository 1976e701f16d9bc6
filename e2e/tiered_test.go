//go:build unix

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/minio/minio-go/v7"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/internal/treetest"
	"github.com/tiercache/tiercache/local"
	"github.com/tiercache/tiercache/policy"
	"github.com/tiercache/tiercache/remote"
	"github.com/tiercache/tiercache/remote/s3"
	"github.com/tiercache/tiercache/tiered"
	"github.com/tiercache/tiercache/tiertest"
)

// transport records the requests the library sends, by method and path,
// so tests can count archive downloads and prove read-only mode.
type transport struct {
	mu   sync.Mutex
	reqs []string
}

func (tr *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	tr.mu.Lock()
	tr.reqs = append(tr.reqs, r.Method+" "+r.URL.Path)
	tr.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// count returns how many recorded requests have the method and a path
// containing sub.
func (tr *transport) count(method, sub string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, r := range tr.reqs {
		m, p, _ := strings.Cut(r, " ")
		if m == method && strings.Contains(p, sub) {
			n++
		}
	}
	return n
}

func (tr *transport) writes() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var w []string
	for _, r := range tr.reqs {
		if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			w = append(w, r)
		}
	}
	return w
}

// machine is one CI machine's view: its own local tier, the shared bucket.
type machine struct {
	cache *tiered.Cache
	tr    *transport
	dir   string
}

type machineOpts struct {
	readOnly bool
	partSize int64
	dir      string // local tier root; default a fresh temp dir
}

func newStore(t testing.TB, bucket string, tr *transport, o machineOpts) *s3.Store {
	t.Helper()
	srv := server(t)
	store, err := s3.New(t.Context(), s3.Config{
		Bucket:      bucket,
		Prefix:      remotePrefix,
		Region:      srv.Region,
		Endpoint:    srv.Endpoint,
		PathStyle:   true,
		PartSize:    o.partSize,
		OrphanGrace: time.Millisecond,
		HTTPClient:  &http.Client{Transport: tr},
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func newMachine(t testing.TB, bucket string, o machineOpts) *machine {
	t.Helper()
	tr := &transport{}
	dir := o.dir
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "cache")
	}
	l, err := local.Open(dir, local.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var store remote.Store = newStore(t, bucket, tr, o)
	if o.readOnly {
		store = remote.ReadOnly(store)
	}
	c, err := tiered.New(l, tiered.Options{Remote: store, ReadOnly: o.readOnly, TouchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &machine{cache: c, tr: tr, dir: dir}
}

func smallSrc(t testing.TB, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Small(t, dir, 30, tag)
	return dir
}

func TestTieredConformance(t *testing.T) {
	tiertest.RunOptions(t, func(t *testing.T) tiercache.Backend {
		return newMachine(t, bucket(t), machineOpts{}).cache
	}, tiertest.Options{AccessStep: 50 * time.Millisecond})
}

func TestTieredFidelityThroughRemote(t *testing.T) {
	b := bucket(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Fidelity(t, src, treetest.FidelityOptions{BigFiles: true, SmallFiles: 2000})
	pusher := newMachine(t, b, machineOpts{partSize: 5 << 20})
	res, err := pusher.cache.PutResult(t.Context(), "fidelity", src, "the fidelity tree")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Uploaded || res.ArchiveSize < 32<<20 {
		t.Fatalf("put %+v: want a multipart upload of the random 32 MiB at least", res)
	}
	puller := newMachine(t, b, machineOpts{partSize: 5 << 20})
	h, ok, err := puller.cache.Restore(t.Context(), "fidelity", nil)
	if err != nil || !ok {
		t.Fatalf("get after dropping the local tier: ok=%v err=%v", ok, err)
	}
	if h.Tier != tiercache.TierRemote || h.Downloaded != res.ArchiveSize {
		t.Fatalf("hit %+v, want a remote hit of %d bytes", h, res.ArchiveSize)
	}
	treetest.AssertEqual(t, src, h.Path)
	if n := puller.tr.count("GET", "/data/"); n < 2 {
		t.Fatalf("%d ranged GETs of the archive, want several in parallel", n)
	}
}

func TestTieredOneDownloadForSixteenGoroutines(t *testing.T) {
	b := bucket(t)
	if _, err := newMachine(t, b, machineOpts{}).cache.Put(t.Context(), "k", smallSrc(t, "v1"), ""); err != nil {
		t.Fatal(err)
	}
	m := newMachine(t, b, machineOpts{})
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 16 {
		wg.Go(func() {
			p, ok, err := m.cache.Get(t.Context(), "k")
			if err != nil || !ok {
				t.Errorf("get: ok=%v err=%v", ok, err)
				bad.Add(1)
				return
			}
			if tag, err := treetest.CheckSmall(p); err != nil || tag != "v1" {
				t.Errorf("tree: tag %q err %v", tag, err)
			}
		})
	}
	wg.Wait()
	if n := m.tr.count("GET", "/data/"); n != 1 {
		t.Fatalf("%d GETs of the archive for 16 goroutines, want 1", n)
	}
}

// childEnv selects the hydrating child mode of the test binary.
const childEnv = "TIERCACHE_E2E_CHILD"

// hydrateChild runs in a child process: it hydrates one key into the
// shared local root and prints how many archive GETs it sent.
func hydrateChild() int {
	var (
		bucketName = os.Getenv("CHILD_BUCKET")
		root       = os.Getenv("CHILD_ROOT")
		start      = os.Getenv("CHILD_START")
	)
	// Wait for the parent's go so the children really race.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(start); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "child: no start signal")
			return 1
		}
	}
	ctx := context.Background()
	tr := &transport{}
	store, err := s3.New(ctx, s3.Config{
		Bucket: bucketName, Prefix: remotePrefix, Region: os.Getenv("CHILD_REGION"),
		Endpoint: os.Getenv("CHILD_ENDPOINT"), PathStyle: true,
		HTTPClient:  &http.Client{Transport: tr},
		Credentials: credentials.NewStaticCredentialsProvider(os.Getenv("CHILD_AK"), os.Getenv("CHILD_SK"), ""),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	l, err := local.Open(root, local.Options{NoSync: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	c, _ := tiered.New(l, tiered.Options{Remote: store})
	p, ok, err := c.Get(ctx, "k")
	if err != nil || !ok {
		fmt.Fprintln(os.Stderr, "child: get:", ok, err)
		return 1
	}
	if tag, err := treetest.CheckSmall(p); err != nil || tag != "v1" {
		fmt.Fprintln(os.Stderr, "child: torn tree:", tag, err)
		return 1
	}
	fmt.Println(tr.count("GET", "/data/"))
	return 0
}

func TestTieredOneDownloadForFourProcesses(t *testing.T) {
	b := bucket(t)
	srv := server(t)
	if _, err := newMachine(t, b, machineOpts{}).cache.Put(t.Context(), "k", smallSrc(t, "v1"), ""); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "shared-cache")
	if _, err := local.Open(root, local.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	startFile := filepath.Join(t.TempDir(), "go")
	type result struct {
		out string
		err error
	}
	results := make(chan result, 4)
	for range 4 {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=hydrate",
			"CHILD_BUCKET="+b, "CHILD_ROOT="+root, "CHILD_START="+startFile,
			"CHILD_ENDPOINT="+srv.Endpoint, "CHILD_REGION="+srv.Region,
			"CHILD_AK="+srv.AccessKey, "CHILD_SK="+srv.SecretKey)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		go func() {
			out, err := cmd.Output()
			if err != nil {
				err = fmt.Errorf("%v: %s", err, stderr.String())
			}
			results <- result{string(out), err}
		}()
	}
	time.Sleep(300 * time.Millisecond) // let the children start
	if err := os.WriteFile(startFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	total := 0
	for range 4 {
		r := <-results
		if r.err != nil {
			t.Fatalf("child: %v", r.err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(r.out))
		if err != nil {
			t.Fatalf("child printed %q", r.out)
		}
		total += n
	}
	if total != 1 {
		t.Fatalf("4 processes sent %d GETs of the archive, want 1", total)
	}
}

// dataObjects returns the archive objects of the bucket.
func dataObjects(t testing.TB, b string) []string {
	return objects(t, b, remotePrefix+"data/")
}

func TestTieredIntegrity(t *testing.T) {
	cases := map[string]func([]byte) []byte{
		"flipped byte": func(d []byte) []byte { d[len(d)/2] ^= 0x01; return d },
		"truncated":    func(d []byte) []byte { return d[:len(d)-100] },
		"cut at a tar block": func(d []byte) []byte {
			return d[:len(d)/2]
		},
		"missing": func([]byte) []byte { return nil }, // deleted by hand
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			b := bucket(t)
			if _, err := newMachine(t, b, machineOpts{}).cache.Put(t.Context(), "k", smallSrc(t, "v1"), ""); err != nil {
				t.Fatal(err)
			}
			objs := dataObjects(t, b)
			if len(objs) != 1 {
				t.Fatalf("data objects %q, want 1", objs)
			}
			mc := minioClient(t)
			o, err := mc.GetObject(t.Context(), b, objs[0], minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(o)
			o.Close()
			if err != nil {
				t.Fatal(err)
			}
			if data = mutate(data); data == nil {
				err = mc.RemoveObject(t.Context(), b, objs[0], minio.RemoveObjectOptions{})
			} else {
				_, err = mc.PutObject(t.Context(), b, objs[0], bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			m := newMachine(t, b, machineOpts{})
			_, ok, err := m.cache.Get(t.Context(), "k")
			if ok || !errors.Is(err, tiercache.ErrIntegrity) {
				t.Fatalf("corrupt archive: ok=%v err=%v, want ErrIntegrity", ok, err)
			}
			if !strings.Contains(err.Error(), `"k"`) {
				t.Errorf("error %q does not name the key", err)
			}
			// Refused once, and removed: the next push stores it again.
			var ce *tiered.CorruptError
			if !errors.As(err, &ce) || !ce.Removed {
				t.Errorf("error %v: want a *tiered.CorruptError, the entry removed", err)
			}
			if got := objects(t, b, remotePrefix+"manifests/"); len(got) != 0 {
				t.Errorf("manifests left: %q", got)
			}
			if es, err := m.cache.Local().List(t.Context()); err != nil || len(es) != 0 {
				t.Fatalf("local entries after a failed hydration: %v %v", es, err)
			}
		})
	}
}

func TestTieredConcurrentPutsOneKey(t *testing.T) {
	b := bucket(t)
	m := newMachine(t, b, machineOpts{})
	var wg sync.WaitGroup
	tags := []string{"w0", "w1", "w2", "w3"}
	srcs := make([]string, len(tags))
	for i, tag := range tags {
		srcs[i] = smallSrc(t, tag)
	}
	for i := range tags {
		wg.Go(func() {
			if _, err := m.cache.Put(t.Context(), "k", srcs[i], tags[i]); err != nil {
				t.Errorf("put %s: %v", tags[i], err)
			}
		})
	}
	wg.Wait()
	p, ok, err := m.cache.Get(t.Context(), "k")
	if err != nil || !ok {
		t.Fatalf("local get: %v %v", ok, err)
	}
	localTag, err := treetest.CheckSmall(p)
	if err != nil {
		t.Fatalf("local entry torn: %v", err)
	}
	fresh := newMachine(t, b, machineOpts{})
	p, ok, err = fresh.cache.Get(t.Context(), "k")
	if err != nil || !ok {
		t.Fatalf("remote get: %v %v", ok, err)
	}
	remoteTag, err := treetest.CheckSmall(p)
	if err != nil {
		t.Fatalf("remote entry torn: %v", err)
	}
	if !strings.HasPrefix(localTag, "w") || !strings.HasPrefix(remoteTag, "w") {
		t.Fatalf("tags %q %q", localTag, remoteTag)
	}
	ls, rs, err := m.cache.ListTiers(t.Context())
	if err != nil || len(ls) != 1 || len(rs) != 1 {
		t.Fatalf("ListTiers: %d local, %d remote, %v; want one each", len(ls), len(rs), err)
	}
	// Losers' archives are garbage: prune collects them (grace is tiny
	// here), leaving the one data object the manifest names. Prune ages
	// objects by the server's clock, whose Date header has whole seconds.
	time.Sleep(1100 * time.Millisecond)
	if _, err := m.cache.PruneTiers(t.Context(), policy.Limits{}, policy.Limits{MaxEntries: 10}); err != nil {
		t.Fatal(err)
	}
	if objs := dataObjects(t, b); len(objs) != 1 {
		t.Fatalf("data objects after prune: %q, want exactly 1", objs)
	}
	p, ok, err = newMachine(t, b, machineOpts{}).cache.Get(t.Context(), "k")
	if err != nil || !ok {
		t.Fatalf("get after prune: %v %v", ok, err)
	}
	if tag, err := treetest.CheckSmall(p); err != nil || tag != remoteTag {
		t.Fatalf("after prune: tag %q err %v, want %q", tag, err, remoteTag)
	}
}

func TestTieredRemotePruneLRU(t *testing.T) {
	b := bucket(t)
	m := newMachine(t, b, machineOpts{})
	for _, k := range []string{"a", "b", "c"} {
		if _, err := m.cache.Put(t.Context(), k, smallSrc(t, k), ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Another machine reads a: the recorded access moves it to the back.
	if _, ok, err := newMachine(t, b, machineOpts{}).cache.Get(t.Context(), "a"); err != nil || !ok {
		t.Fatalf("get a: %v %v", ok, err)
	}
	res, err := m.cache.PruneTiers(t.Context(), policy.Limits{}, policy.Limits{MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Remote != 1 {
		t.Fatalf("remote evictions %d, want 1", res.Remote)
	}
	_, rs, err := m.cache.ListTiers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range rs {
		got[e.Key] = true
	}
	if len(got) != 2 || !got["a"] || !got["c"] {
		t.Fatalf("remote keys after prune %v, want a and c (b was least recently used)", got)
	}
}

func TestTieredReadOnlySendsNoWrites(t *testing.T) {
	b := bucket(t)
	if _, err := newMachine(t, b, machineOpts{}).cache.Put(t.Context(), "k", smallSrc(t, "v1"), ""); err != nil {
		t.Fatal(err)
	}
	ro := newMachine(t, b, machineOpts{readOnly: true})
	if _, ok, err := ro.cache.Get(t.Context(), "k"); err != nil || !ok {
		t.Fatalf("read-only get: %v %v", ok, err)
	}
	if _, ok, err := ro.cache.Restore(t.Context(), "x", []string{"k"}); err != nil || !ok {
		t.Fatalf("read-only restore: %v %v", ok, err)
	}
	if _, err := ro.cache.Put(t.Context(), "k2", smallSrc(t, "v2"), ""); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Fatalf("put: %v", err)
	}
	if err := ro.cache.Invalidate(t.Context(), "k"); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Fatalf("invalidate: %v", err)
	}
	if _, err := ro.cache.PruneTiers(t.Context(), policy.Limits{}, policy.Limits{MaxEntries: 1}); !errors.Is(err, tiercache.ErrReadOnly) {
		t.Fatalf("prune: %v", err)
	}
	if w := ro.tr.writes(); len(w) != 0 {
		t.Fatalf("read-only mode sent writes: %q", w)
	}
	if ro.tr.count("GET", "/data/") == 0 {
		t.Fatal("transport saw no archive download: the recorder is not in the path")
	}
}

func TestTieredFailedUploadLeavesNothing(t *testing.T) {
	b := bucket(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.Fidelity(t, src, treetest.FidelityOptions{BigFiles: true, SmallFiles: 10})
	tr := &transport{}
	l, err := local.Open(filepath.Join(t.TempDir(), "cache"), local.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c, err := tiered.New(l, tiered.Options{
		Remote: newStore(t, b, tr, machineOpts{partSize: 5 << 20}),
		Progress: func(p tiered.Progress) {
			// Cancel once a couple of parts are in flight.
			if p.Op == "upload" && p.Done > 11<<20 {
				cancel()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "k", src, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled put: %v, want context.Canceled", err)
	}
	if tr.count("POST", "/data/") == 0 {
		t.Fatal("no multipart upload was started: the test did not exercise the abort")
	}
	for u := range minioClient(t).ListIncompleteUploads(t.Context(), b, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Errorf("multipart upload left behind: %s (%s)", u.Key, u.UploadID)
	}
	if objs := objects(t, b, ""); len(objs) != 0 {
		t.Fatalf("objects after a failed upload: %q", objs)
	}
}

func BenchmarkTieredPush(b *testing.B) {
	bk := bucket(b)
	src := filepath.Join(b.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	treetest.Fidelity(b, src, treetest.FidelityOptions{BigFiles: true, SmallFiles: 2000})
	var size int64
	for i := 0; b.Loop(); i++ {
		m := newMachine(b, bk, machineOpts{})
		res, err := m.cache.PutResult(b.Context(), fmt.Sprint("k", i), src, "")
		if err != nil {
			b.Fatal(err)
		}
		size = res.Entry.Size
	}
	b.SetBytes(size)
}

func BenchmarkTieredColdHydrate(b *testing.B) {
	bk := bucket(b)
	src := filepath.Join(b.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	treetest.Fidelity(b, src, treetest.FidelityOptions{BigFiles: true, SmallFiles: 2000})
	res, err := newMachine(b, bk, machineOpts{}).cache.PutResult(b.Context(), "k", src, "")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(res.Entry.Size)
	for b.Loop() {
		b.StopTimer()
		m := newMachine(b, bk, machineOpts{})
		b.StartTimer()
		if _, ok, err := m.cache.Get(b.Context(), "k"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
