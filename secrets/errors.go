package secrets

import (
	"crypto/subtle"
	"errors"
	"sort"
	"strconv"
	"strings"
)

// The classes of failure. Sources wrap their errors so that errors.Is finds one
// of these; the Store passes them on and adds its own.
var (
	// ErrNotFound: the secret, or the version asked for, does not exist.
	ErrNotFound = errors.New("secret not found")
	// ErrPermission: the backend refused access (denied, cannot decrypt).
	ErrPermission = errors.New("permission denied")
	// ErrTransient: the backend throttled, was unavailable or timed out; the
	// same call may succeed later.
	ErrTransient = errors.New("backend temporarily unavailable")
	// ErrInvalid: the value is malformed, a field is missing, or a reference
	// cannot be parsed or routed.
	ErrInvalid = errors.New("invalid secret")
	// ErrRejected: a validator refused a candidate value, which was therefore
	// not applied.
	ErrRejected = errors.New("candidate rejected by validator")
	// ErrStale: the last good value is older than the Store's maximum
	// staleness, so the Store fails closed rather than serve it.
	ErrStale = errors.New("secret is stale")
	// ErrClosed: the Store has been closed.
	ErrClosed = errors.New("store closed")
)

// An Error records a failed operation on one key. Its message names the
// operation and the key, never a value. Unwrap returns the cause, so errors.Is
// finds the class sentinel (ErrNotFound, ErrTransient, ...).
type Error struct {
	Op  string // what failed: fetch, validate, field, get, refresh, reload, health, getenv
	Key string // the key as the caller named it
	Err error
}

// Error names the operation, the key and the cause; never a value.
func (e *Error) Error() string {
	return "secrets: " + e.Op + " " + quote(e.Key) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// A ReloadError reports the keys that stopped a reload. Nothing was applied.
// errors.Is and errors.As look through every key's error.
type ReloadError struct {
	// Errors holds one *Error per key that failed to fetch or validate,
	// sorted by key.
	Errors []*Error
}

// Error names the keys that failed and gives the first failure.
func (e *ReloadError) Error() string {
	keys := make([]string, len(e.Errors))
	for i, ke := range e.Errors {
		keys[i] = quote(ke.Key)
	}
	msg := "secrets: reload applied nothing: " + strconv.Itoa(len(e.Errors)) + " key(s) failed: " + strings.Join(keys, ", ")
	if len(e.Errors) > 0 {
		msg += " (first: " + e.Errors[0].Error() + ")"
	}
	return msg
}

// Unwrap returns the per-key errors.
func (e *ReloadError) Unwrap() []error {
	out := make([]error, len(e.Errors))
	for i, ke := range e.Errors {
		out[i] = ke
	}
	return out
}

func newReloadError(errs map[string]*Error) *ReloadError {
	re := &ReloadError{}
	for _, e := range errs {
		re.Errors = append(re.Errors, e)
	}
	sort.Slice(re.Errors, func(i, j int) bool { return re.Errors[i].Key < re.Errors[j].Key })
	return re
}

// quote quotes a key for a message. Keys are names, not values, but may hold
// odd bytes; quoting keeps the message on one line.
func quote(s string) string {
	const max = 256
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
