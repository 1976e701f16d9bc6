package archive

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unicode"

	"github.com/tiercache/tiercache"
)

// hostileText is what an archive's author puts in a name or a symlink
// target to forge a line of a CI job's log (a runner takes a line that
// starts with "::" for a workflow command) and to drive the terminal.
const hostileText = "x\n::error title=pwned::forged\x1b]0;pwned\x07"

// checkNoControl fails t if err's message holds a control character.
func checkNoControl(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if msg := err.Error(); strings.ContainsFunc(msg, unicode.IsControl) {
		t.Errorf("the error holds control characters of the archive: %q", msg)
	}
}

// TestSecuritySymlinkTargetTheSystemRefuses: a symlink target as long
// as MaxNameLength passes the length check, but the system refuses it
// (Linux takes 4095 bytes at most). That is the archive's fault: a
// refusal of the archive (so that a pull takes it for a miss, as it
// takes every refused archive), not a failure of the disk that fails
// the job, and its message does not quote the target raw.
func TestSecuritySymlinkTargetTheSystemRefuses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the limit tested is Linux's")
	}
	target := hostileText + strings.Repeat("t", MaxNameLength-len(hostileText))
	s := newSandbox(t)
	_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, symlinkM("s", target))), s.dest, ExtractOptions{})
	var ee *EntryError
	if !errors.Is(err, tiercache.ErrLimitExceeded) || !errors.As(err, &ee) || ee.Name != "s" {
		t.Errorf("extract of a symlink target of %d bytes: %.300v; want a limit error naming the member", len(target), err)
	}
	checkNoControl(t, err)
}

// TestSecurityFileSystemErrorsEscaped: when the system fails to create a
// member, the error it gives quotes the name and, for a symlink, the
// target, as the call was given them; the archive's author chose both.
// Extract's error keeps the system's error (errors.Is still finds it)
// but escapes their control characters, as EntryError does.
func TestSecurityFileSystemErrorsEscaped(t *testing.T) {
	old := symlinkAt
	symlinkAt = func(_ *os.Root, target, name string, _ bool) error {
		return &os.LinkError{Op: "symlinkat", Old: target, New: name, Err: syscall.EIO}
	}
	t.Cleanup(func() { symlinkAt = old })
	if runtime.GOOS == "windows" {
		t.Skip("Windows names hold no control characters")
	}
	s := newSandbox(t)
	_, err := Extract(t.Context(), bytes.NewReader(archiveOf(t, symlinkM("s"+hostileText, hostileText))), s.dest, ExtractOptions{})
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("extract with a failing symlink call: %v; want its error", err)
	}
	checkNoControl(t, err)
}
