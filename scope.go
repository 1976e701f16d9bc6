package tiercache

import (
	"fmt"
	"strings"
)

// Scopes.
//
// A scope is a namespace of entries: a job writes its entries under its
// own scope and may read other scopes' after its own (as a pull request
// reads its base branch's), so that a job that can write the cache cannot
// replace what another scope's jobs restore (see the README's "Cache
// poisoning"). The default scope is "", where every entry lived before
// scopes existed.
//
// Tiers store an entry of scope s and key k under one string, its stored
// key (ScopedKey): k itself in the default scope, else s, a NUL byte and
// k. A valid key holds no NUL byte, so stored keys of different scopes
// never collide, and a key's stored keys in a scope share the scope's
// leading bytes, so a restore-key lookup in one scope stays one prefix
// listing. Stored keys are what remote stores take (see package remote);
// a Backend takes plain keys and keeps its scope itself.

// MaxScopeLen is the longest scope accepted, in bytes.
const MaxScopeLen = 256

// scopeSep separates a stored key's scope from its key.
const scopeSep = "\x00"

// ValidateScope checks the scope rules: "" (the default scope), or up to
// MaxScopeLen bytes that would make a valid key (see ValidateKey), such as
// a branch name "refs/heads/main" or "pr-123". The error wraps
// ErrInvalidArgument and says why.
func ValidateScope(scope string) error {
	if scope == "" {
		return nil
	}
	if len(scope) > MaxScopeLen {
		return fmt.Errorf("%w: scope is %d bytes, the limit is %d", ErrInvalidArgument, len(scope), MaxScopeLen)
	}
	if why := textProblem(scope); why != "" {
		return fmt.Errorf("%w: scope %s", ErrInvalidArgument, why)
	}
	return nil
}

// ScopedKey returns the stored key of key in scope: key itself in the
// default scope "", else scope + NUL + key. It does not validate; see
// ValidateStoredKey.
func ScopedKey(scope, key string) string {
	if scope == "" {
		return key
	}
	return scope + scopeSep + key
}

// SplitStoredKey returns the scope and key of a stored key (see
// ScopedKey): ("", stored) for a key of the default scope.
func SplitStoredKey(stored string) (scope, key string) {
	if s, k, ok := strings.Cut(stored, scopeSep); ok {
		return s, k
	}
	return "", stored
}

// ValidateStoredKey checks a stored key: a valid key, or a non-empty valid
// scope, a NUL byte and a valid key. The error wraps ErrInvalidKey.
func ValidateStoredKey(stored string) error {
	scope, key := SplitStoredKey(stored)
	if scope == "" && strings.Contains(stored, scopeSep) {
		return fmt.Errorf("%w: stored key %q has an empty scope", ErrInvalidKey, stored)
	}
	if err := ValidateScope(scope); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return ValidateKey(key)
}
