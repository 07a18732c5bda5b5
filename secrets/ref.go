package secrets

import (
	"fmt"
	"strings"
)

// DefaultSourceName is what Secret.Source reports for values read through the
// Store's own source (the one passed to New).
const DefaultSourceName = "default"

// A Ref is a parsed key: which source serves it, what that source is asked
// for, and which field of the value is selected.
//
// Keys take two forms. A reference, scheme://rest[#field], is routed to the
// source registered for scheme with WithSource, which receives rest:
//
//	file:///run/secrets/db#password   → file source, "/run/secrets/db", field "password"
//	env://DB_PASSWORD                → env source, "DB_PASSWORD"
//	awssm://mcp/prod?versionStage=X  → awssm source, "mcp/prod?versionStage=X"
//
// Any other key, name[#field], goes to the Store's own source as name. In both
// forms the text after the last '#' selects a field of a JSON value (see
// Secret.Field); the Store fetches the value once and derives every field
// from it.
type Ref struct {
	Scheme string // lower case; "" for the Store's own source
	Path   string // what the source's Fetch receives
	Field  string // "" when the whole value is wanted
}

// ParseRef splits key into its parts. It does not check that a source is
// registered for the scheme. Errors wrap ErrInvalid.
func ParseRef(key string) (Ref, error) {
	var r Ref
	rest := key
	if i := strings.Index(key, "://"); i > 0 && validScheme(strings.ToLower(key[:i])) {
		r.Scheme = strings.ToLower(key[:i])
		rest = key[i+3:]
	}
	if i := strings.LastIndexByte(rest, '#'); i >= 0 {
		r.Field = rest[i+1:]
		rest = rest[:i]
		if r.Field == "" {
			return Ref{}, refError("empty field selector in key", key)
		}
	}
	if rest == "" {
		return Ref{}, refError("empty key", key)
	}
	r.Path = rest
	return r, nil
}

// refError is kept out of line so that the frames of the read path, which
// every first read of a key runs on a goroutine's smallest stack, stay small.
//
//go:noinline
func refError(what, key string) error {
	return fmt.Errorf("%w: %s %s", ErrInvalid, what, quote(key))
}

// IsRef reports whether s has the form of a reference (scheme://...).
func IsRef(s string) bool {
	i := strings.Index(s, "://")
	return i > 0 && validScheme(strings.ToLower(s[:i]))
}

// base returns the key of the whole value: the reference without its field.
func (r Ref) base() string {
	if r.Scheme == "" {
		return r.Path
	}
	return r.Scheme + "://" + r.Path
}

// String returns the reference in its canonical form.
func (r Ref) String() string {
	if r.Field == "" {
		return r.base()
	}
	return r.base() + "#" + r.Field
}
