package local

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercache/tiercache"
	"github.com/tiercache/tiercache/archive"
	"github.com/tiercache/tiercache/internal/treetest"
)

// The tests in this file run the test binary again as child processes that
// share a cache root with the parent. TestMain sends a child to its role
// (childEnv) before any test runs; the roles take their arguments from
// the environment.
const (
	childEnv     = "LOCAL_TEST_CHILD"
	childRoot    = "LOCAL_TEST_ROOT"
	childSrc     = "LOCAL_TEST_SRC"
	childTags    = "LOCAL_TEST_TAGS"
	childSeconds = "LOCAL_TEST_SECONDS"
	// childArchives, set to "1", makes a child store archives (as pushes
	// and downloads do) instead of trees; its Gets then make the trees.
	childArchives = "LOCAL_TEST_ARCHIVES"
)

// childPut stores src under key the way the child was told to.
func childPut(ctx context.Context, c *Cache, key, src string) error {
	if os.Getenv(childArchives) == "1" {
		_, err := c.PutArchive(ctx, key, Info{Description: "child"}, false, func(ctx context.Context, w io.Writer, _ string) (archive.Result, error) {
			return archive.Write(ctx, w, src, archive.WriteOptions{})
		})
		return err
	}
	_, err := c.Put(ctx, key, src, "child")
	return err
}

func TestMain(m *testing.M) {
	switch role := os.Getenv(childEnv); role {
	case "":
		os.Exit(m.Run())
	case "putget":
		exitWith(childPutGet())
	case "crash-in-fill":
		exitWith(childCrashInFill())
	case "put-loop":
		exitWith(childPutLoop())
	default:
		exitWith(fmt.Errorf("unknown child role %q", role))
	}
}

func exitWith(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// childPutGet puts its own tree and gets the shared key for a while,
// checking that every hit is one complete tree of one of the tags.
func childPutGet() error {
	c, err := Open(os.Getenv(childRoot), Options{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	tags := strings.Split(os.Getenv(childTags), ",")
	var secs float64
	fmt.Sscan(os.Getenv(childSeconds), &secs)
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	puts, hits := 0, 0
	for time.Now().Before(deadline) {
		if err := childPut(ctx, c, "shared", os.Getenv(childSrc)); err != nil {
			return err
		}
		puts++
		for range 3 {
			p, ok, err := c.Get(ctx, "shared")
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("miss after a successful put")
			}
			tag, err := treetest.CheckSmall(p)
			if err != nil {
				return err
			}
			if !slices.Contains(tags, tag) {
				return fmt.Errorf("got tag %q, not one of %q", tag, tags)
			}
			hits++
		}
	}
	fmt.Printf("puts=%d hits=%d\n", puts, hits)
	return nil
}

// childCrashInFill starts a PutFunc whose fill writes a little, reports
// "filling" and hangs, waiting to be killed.
func childCrashInFill() error {
	c, err := Open(os.Getenv(childRoot), Options{})
	if err != nil {
		return err
	}
	_, err = c.PutFunc(context.Background(), "crashed", "", func(ctx context.Context, dir string) (tiercache.Shape, error) {
		if err := os.WriteFile(filepath.Join(dir, "partial"), []byte("half"), 0o644); err != nil {
			return tiercache.Shape{}, err
		}
		fmt.Println("filling")
		time.Sleep(time.Minute)
		return tiercache.Shape{Size: 4, Files: 1}, nil
	})
	if err != nil {
		return err
	}
	return fmt.Errorf("not killed")
}

// childPutLoop puts the source tree under the shared key until killed.
func childPutLoop() error {
	c, err := Open(os.Getenv(childRoot), Options{Grace: time.Millisecond})
	if err != nil {
		return err
	}
	fmt.Println("started")
	for {
		if err := childPut(context.Background(), c, "shared", os.Getenv(childSrc)); err != nil {
			return err
		}
	}
}

func child(t *testing.T, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + role}, env...)...)
	return cmd
}

// TestProcessesPutAndGetOneKey has two processes put their own trees under
// one key and get it, over and over, while the parent gets it too: no
// reader ever sees a torn tree, whether entries are stored as trees or as
// archives whose trees the Gets make.
func TestProcessesPutAndGetOneKey(t *testing.T) {
	for _, mode := range []string{"trees", "archives"} {
		t.Run(mode, func(t *testing.T) { processesPutAndGet(t, mode == "archives") })
	}
}

func processesPutAndGet(t *testing.T, archives bool) {
	c := open(t, Options{})
	tags := []string{"proc-a", "proc-b"}
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for _, tag := range tags {
		cmd := child(t, "putget",
			childRoot+"="+c.Root(),
			childSrc+"="+smallSrc(t, tag),
			childTags+"="+strings.Join(tags, ","),
			childSeconds+"=1.5",
			childArchives+"="+boolEnv(archives))
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		outs = append(outs, &out)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	parentHits := 0
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			p, ok, err := c.Get(t.Context(), "shared")
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				continue
			}
			tag, err := treetest.CheckSmall(p)
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.Contains(tags, tag) {
				t.Errorf("parent got tag %q", tag)
				return
			}
			parentHits++
		}
	})
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %s: %v\n%s", tags[i], err, outs[i])
		} else if !strings.Contains(outs[i].String(), "puts=") {
			t.Errorf("child %s did no work: %s", tags[i], outs[i])
		}
	}
	close(done)
	wg.Wait()
	t.Logf("children: %s / %s; parent hits: %d", strings.TrimSpace(outs[0].String()), strings.TrimSpace(outs[1].String()), parentHits)
	if parentHits == 0 {
		t.Error("the parent never saw a hit")
	}
	if n := names(t, c.stagingDir); len(n) != 0 {
		t.Errorf("staging left after the children finished: %q", n)
	}
}

// TestCrashDuringFill kills a process in the middle of a PutFunc: while it
// lives its staging survives other processes' sweeps; once it is dead the
// next Open removes it, and no entry appears.
func TestCrashDuringFill(t *testing.T) {
	c := open(t, Options{})
	cmd := child(t, "crash-in-fill", childRoot+"="+c.Root())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "filling\n" {
		t.Fatalf("child said %q, %v; stderr: %s", line, err, stderr.String())
	}
	if n := names(t, c.stagingDir); len(n) != 2 {
		t.Fatalf("staging = %q, want the child's directory and lock file", n)
	}
	reopen(t, c, Options{})
	if err := c.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := names(t, c.stagingDir); len(n) != 2 {
		t.Fatalf("a sweep removed a live process's staging: %q", n)
	}
	cmd.Process.Kill()
	cmd.Wait()
	killed = true
	reopen(t, c, Options{})
	if n := names(t, c.stagingDir); len(n) != 0 {
		t.Fatalf("staging of a dead process survived Open: %q", n)
	}
	if _, ok, err := c.Get(t.Context(), "crashed"); ok || err != nil {
		t.Fatalf("Get of the crashed key: %v %v, want a miss", ok, err)
	}
}

// TestKillDuringPuts kills processes at random instants of a stream of
// Puts (of trees, or of archives): afterwards the key holds a complete
// entry (or nothing), and a sweep leaves no staging, trash, orphan or
// stale record behind.
func TestKillDuringPuts(t *testing.T) {
	for _, mode := range []string{"trees", "archives"} {
		t.Run(mode, func(t *testing.T) { killDuringPuts(t, mode == "archives") })
	}
}

// boolEnv is an environment value for b.
func boolEnv(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func killDuringPuts(t *testing.T, archives bool) {
	c := open(t, Options{Grace: time.Millisecond})
	tags := []string{"k0", "k1"}
	srcs := []string{smallSrc(t, tags[0]), smallSrc(t, tags[1])}
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 6 {
		cmd := child(t, "put-loop", childRoot+"="+c.Root(), childSrc+"="+srcs[i%2], childArchives+"="+boolEnv(archives))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "started\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q, %v", line, err)
		}
		time.Sleep(time.Duration(5+r.IntN(60)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		p, ok, err := c.Get(t.Context(), "shared")
		if err != nil {
			t.Fatalf("round %d: Get: %v", i, err)
		}
		if ok {
			tag, err := treetest.CheckSmall(p)
			if err != nil || !slices.Contains(tags, tag) {
				t.Fatalf("round %d: torn entry after a kill: tag %q, %v", i, tag, err)
			}
		}
	}
	time.Sleep(5 * time.Millisecond) // let the grace pass
	c2 := reopen(t, c, Options{Grace: time.Millisecond})
	if err := c2.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{c.stagingDir, c.trashDir, c.retiredDir} {
		if n := names(t, d); len(n) != 0 {
			t.Errorf("%s after the sweep: %q", filepath.Base(d), n)
		}
	}
	want := 0
	if v, _ := c.current(nameOf("shared")); v != "" {
		want = 1
	}
	if n := names(t, c.indexDir); len(n) != want {
		t.Errorf("index after the sweep holds %q, want %d pointer(s)", n, want)
	}
	if n := names(t, c.dataDir); len(n) != want {
		t.Errorf("data after the sweep holds %q, want %d current version(s)", n, want)
	}
}
