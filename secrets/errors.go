package secrets

import (
	"crypto/subtle"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/rotorhq/rotor/internal/keyquote"
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

// Error names the operation, the key and the cause; never a value. An Error
// without a cause says "failed", one without an operation says "operation",
// and a nil *Error says so rather than panic.
func (e *Error) Error() string {
	if e == nil {
		return "secrets: <nil *Error>"
	}
	op := e.Op
	if op == "" {
		op = "operation"
	}
	cause := "failed"
	if e.Err != nil {
		cause = e.Err.Error()
	}
	return "secrets: " + op + " " + quote(e.Key) + ": " + cause
}

// Unwrap returns the cause, or nil for a nil *Error.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// A ReloadError reports the keys that stopped a reload. Nothing was applied.
// errors.Is and errors.As look through every key's error.
type ReloadError struct {
	// Errors holds one *Error per key that failed to fetch or validate,
	// sorted by key.
	Errors []*Error
}

// Error names the keys that failed and gives the first failure. Nil
// elements of Errors are skipped, and a nil *ReloadError says so rather than
// panic.
func (e *ReloadError) Error() string {
	if e == nil {
		return "secrets: <nil *ReloadError>"
	}
	var keys []string
	var first *Error
	for _, ke := range e.Errors {
		if ke == nil {
			continue
		}
		if first == nil {
			first = ke
		}
		keys = append(keys, quote(ke.Key))
	}
	if first == nil {
		return "secrets: reload applied nothing"
	}
	return "secrets: reload applied nothing: " + strconv.Itoa(len(keys)) + " key(s) failed: " +
		strings.Join(keys, ", ") + " (first: " + first.Error() + ")"
}

// Unwrap returns the per-key errors, leaving out nil elements.
func (e *ReloadError) Unwrap() []error {
	if e == nil {
		return nil
	}
	out := make([]error, 0, len(e.Errors))
	for _, ke := range e.Errors {
		if ke != nil {
			out = append(out, ke)
		}
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

// quote quotes a key for a message. Keys are names, not values, but may be
// of any length and hold any bytes: the quoted form is cut to a bounded
// length and stays on one line (see keyquote.Quote), the same form the
// sources of this module use.
func quote(s string) string { return keyquote.Quote(s) }

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
