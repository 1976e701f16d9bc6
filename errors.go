package tiercache

import "errors"

// Sentinel errors. Implementations wrap them with context (the key, the
// path, the entry name) so messages name what was wrong; callers test for
// them with errors.Is.
var (
	// ErrInvalidKey reports a key that breaks the key rules (see ValidateKey).
	ErrInvalidKey = errors.New("invalid key")
	// ErrInvalidArgument reports an argument other than a key that is out
	// of range, such as a negative prune limit or a missing source dir.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound reports that a key is not stored. Backend.Get reports a
	// miss as ok == false instead; lower layers (a remote store) use this.
	ErrNotFound = errors.New("not found")
	// ErrIntegrity reports stored data that fails verification: a size or
	// SHA-256 mismatch, a truncated or corrupt archive, or metadata that
	// does not parse. Such data is never presented as an entry.
	ErrIntegrity = errors.New("integrity check failed")
	// ErrUnsafeArchive reports an archive member that extraction refuses:
	// a path escaping the destination, a write through a symlink, a
	// hardlink to outside the tree, a device node, a FIFO, a sparse entry
	// or a duplicate name.
	ErrUnsafeArchive = errors.New("unsafe archive entry")
	// ErrLimitExceeded reports an archive that exceeds a configured
	// ceiling (total bytes, entry count, decoder memory).
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrReadOnly reports a write attempted on a cache opened read-only.
	// No write request leaves the process before it is returned.
	ErrReadOnly = errors.New("cache is read-only")
)
