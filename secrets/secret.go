package secrets

import (
	"fmt"
	"log/slog"
	"time"
)

// redacted is what every textual form of a Secret prints in place of the value.
const redacted = "[REDACTED]"

// A Secret is an immutable secret value with its metadata: the key it was read
// under, the version id the backend gave it, when it was fetched and from which
// source.
//
// Every textual form of a Secret is redacted: String, GoString, Format (all
// verbs), MarshalJSON, MarshalText and LogValue. The value comes out only
// through Reveal and Bytes, so that a Secret can be logged, printed or put in an
// error without leaking it.
//
// The redaction holds where fmt cannot call Format: a Secret in an unexported
// struct field (fmt then prints the field's contents, following its pointer
// for a verb that does not fit) and printers built on reflection, such as
// go-spew and the diffs of testify, which walk through pointers and
// unexported fields. The value is held in a closure, which reflection cannot
// look into: such printers find the key, the version, the source and the
// fetch time, and an address in place of the value. For the same reason
// reflect.DeepEqual holds only between copies of one Secret; compare values
// with Equal.
//
// The zero Secret holds nothing; IsZero reports it. A Secret is a small value
// that is safe to copy and to share between goroutines.
type Secret struct {
	d *secretData
}

// secretData is what a Secret points to. It never changes once built.
type secretData struct {
	key       string
	version   string
	source    string
	fetchedAt time.Time
	// value returns the value. It is a closure so that reflection, which
	// cannot look into one, cannot reach the value.
	value func() string
}

// NewSecret returns a Secret for key at version, holding a copy of value.
// Sources use it to build the Versions they return. The Store stamps the time
// of the fetch and the source's name, so a source need not.
func NewSecret(key, version string, value []byte) Secret {
	return NewSecretString(key, version, string(value))
}

// NewSecretString is NewSecret for a value held as a string.
func NewSecretString(key, version, value string) Secret {
	return Secret{&secretData{key: key, version: version, value: hold(value)}}
}

// hold returns a closure that returns value.
func hold(value string) func() string {
	return func() string { return value }
}

// IsZero reports whether s holds no secret, as the Previous of a key that has
// never been rotated does.
func (s Secret) IsZero() bool { return s.d == nil }

// Reveal returns the plain value. Call it at the point of use (building a
// connection string, setting a header) and do not keep the result longer than
// that use needs.
func (s Secret) Reveal() string {
	if s.d == nil {
		return ""
	}
	return s.d.value()
}

// Bytes returns the plain value in a new slice that the caller owns: changing
// it changes no other copy.
func (s Secret) Bytes() []byte {
	if s.d == nil {
		return nil
	}
	return []byte(s.d.value())
}

// Len returns the length of the value in bytes.
func (s Secret) Len() int {
	if s.d == nil {
		return 0
	}
	return len(s.d.value())
}

// Equal reports whether s and t hold the same value, comparing in time that
// does not depend on where the values first differ.
func (s Secret) Equal(t Secret) bool {
	return constantTimeEqual(s.Reveal(), t.Reveal())
}

// Key returns the key the secret was read under. For a secret served by a
// Store it is the key passed to Get, field selector included.
func (s Secret) Key() string {
	if s.d == nil {
		return ""
	}
	return s.d.key
}

// Version returns the version id the backend gave the value: an AWS VersionId,
// a Vault KV version number, a digest of a file's content.
func (s Secret) Version() string {
	if s.d == nil {
		return ""
	}
	return s.d.version
}

// Source returns the name of the source the value came from, such as "file" or
// "awssm"; it is empty for a secret that no Store has served.
func (s Secret) Source() string {
	if s.d == nil {
		return ""
	}
	return s.d.source
}

// FetchedAt returns when the Store last read this version from its source or
// confirmed that it is still current.
func (s Secret) FetchedAt() time.Time {
	if s.d == nil {
		return time.Time{}
	}
	return s.d.fetchedAt
}

// Field returns one field of a secret whose value is a JSON object (or
// array). name is either a top-level member name ("password") or a JSON
// pointer (RFC 6901) starting with a slash ("/db/password", "/hosts/0"). A
// string field yields its text; any other JSON value yields its compact JSON
// encoding. The returned Secret has the key s.Key()+"#"+name and s's other
// metadata.
//
// An empty name, a value that is not JSON, a field that does not exist or is
// null, and a value that holds invalid UTF-8 or an unpaired UTF-16 surrogate escape
// ("\ud800"), which encoding/json would silently turn into U+FFFD, yield an
// *Error that wraps ErrInvalid; neither the error nor its message holds any
// part of the value.
func (s Secret) Field(name string) (Secret, error) {
	if s.d == nil {
		return Secret{}, &Error{Op: "field", Key: "#" + name, Err: errNoValue}
	}
	v, err := selectField(s.d.value(), name)
	if err != nil {
		return Secret{}, &Error{Op: "field", Key: s.d.key + "#" + name, Err: err}
	}
	d := *s.d
	d.key = s.d.key + "#" + name
	d.value = hold(v)
	return Secret{&d}, nil
}

// with returns a copy of s that carries the given key, source and fetch time.
func (s Secret) with(key, source string, at time.Time) Secret {
	if s.d == nil {
		return s
	}
	d := *s.d
	d.key, d.source, d.fetchedAt = key, source, at
	return Secret{&d}
}

// String returns a redacted form of the secret.
func (s Secret) String() string { return redacted }

// GoString returns a redacted Go-syntax form that shows the key and version,
// each quoted within a bounded length.
func (s Secret) GoString() string {
	if s.d == nil {
		return "secrets.Secret{}"
	}
	return "secrets.Secret{Key:" + quote(s.d.key) + ", Version:" + quote(s.d.version) + ", Value:" + redacted + "}"
}

// Format implements fmt.Formatter so that every verb, %x and %q included,
// prints the redacted form. %#v prints GoString.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// MarshalJSON encodes the secret as the redacted string.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText encodes the secret as the redacted string.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer: a group with the key, the version and a
// redacted value.
func (s Secret) LogValue() slog.Value {
	if s.d == nil {
		return slog.StringValue(redacted)
	}
	return slog.GroupValue(
		slog.String("key", s.d.key),
		slog.String("version", s.d.version),
		slog.String("value", redacted),
	)
}

// Versions holds the current version of a secret, the one before it and, while
// a rotation is in progress, the one staged to follow it. Previous is the
// zero Secret where the backend keeps no earlier version; Pending is zero
// when no rotation is in progress.
//
// Pending is a value staged but not yet made current: AWSPENDING in AWS
// Secrets Manager, a Vault KV version marked pending, a file's pending file
// beside it. A rotation in progress may already have set it downstream (AWS's
// single-user scheme changes the password before it moves AWSCURRENT), so the
// Store treats it as a candidate: it serves it as current only when the
// served value fails with an authentication error and the pending one passes
// the key's validators. Until then it serves Current.
type Versions struct {
	Current  Secret
	Previous Secret
	Pending  Secret

	// RefreshBy, when not zero, is when the source asks to be read again
	// at the latest: the point at which a lease should be renewed or
	// replaced, a static role's next rotation, a secret's next scheduled
	// rotation. The Store then refreshes the key by that time as well as
	// every TTL (never sooner than a minimum backoff after a fetch). It is
	// a hint about the versions, not part of them: a change of RefreshBy
	// alone is not a change of the value. A source may set it on a
	// Result that answers Unchanged.
	RefreshBy time.Time
}

// Field applies Secret.Field to each version, with its rules: an empty name,
// like a field missing from the current version, is an *Error that wraps
// ErrInvalid. A previous or pending version that lacks the field (or is not
// JSON) is dropped rather than failing the whole.
func (v Versions) Field(name string) (Versions, error) {
	if v.Current.IsZero() {
		return Versions{}, &Error{Op: "field", Key: "#" + name, Err: errNoValue}
	}
	cur, err := v.Current.Field(name)
	if err != nil {
		return Versions{}, err
	}
	out := Versions{Current: cur}
	if prev, err := v.Previous.Field(name); err == nil {
		out.Previous = prev
	}
	if pend, err := v.Pending.Field(name); err == nil {
		out.Pending = pend
	}
	return out, nil
}

// sameValues reports whether a and b hold the same versions with the same
// values.
func sameValues(a, b Versions) bool {
	return sameServed(a, b) && a.Pending.sameAs(b.Pending)
}

// sameServed reports whether a and b hold the same current and previous
// versions with the same values, whatever their pending ones.
func sameServed(a, b Versions) bool {
	return a.Current.sameAs(b.Current) && a.Previous.sameAs(b.Previous)
}

// sameAs reports whether s and t are the same version of the same value (both
// zero counts).
func (s Secret) sameAs(t Secret) bool {
	return s.IsZero() == t.IsZero() && s.Version() == t.Version() && s.Equal(t)
}
