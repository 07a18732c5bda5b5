package secrets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
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

// Versions holds the current version of a secret and the one before it.
// Previous is the zero Secret where the backend keeps no earlier version.
type Versions struct {
	Current  Secret
	Previous Secret
}

// Field applies Secret.Field to both versions, with its rules: an empty name,
// like a field missing from the current version, is an *Error that wraps
// ErrInvalid. A previous version that lacks the field (or is not JSON) is
// dropped rather than failing the whole pair.
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
	return out, nil
}

// sameValues reports whether a and b hold the same versions with the same
// values.
func sameValues(a, b Versions) bool {
	return a.Current.sameAs(b.Current) && a.Previous.sameAs(b.Previous)
}

// sameAs reports whether s and t are the same version of the same value (both
// zero counts).
func (s Secret) sameAs(t Secret) bool {
	return s.IsZero() == t.IsZero() && s.Version() == t.Version() && s.Equal(t)
}

// Errors of field selection. None quotes the value: encoding/json's syntax
// errors can hold bytes of the input, so they are replaced with these.
var (
	errNoValue       = wrapInvalid("no value")
	errEmptyName     = wrapInvalid("empty field name")
	errNotJSON       = wrapInvalid("value is not valid JSON")
	errNotObject     = wrapInvalid("value is not a JSON object")
	errBadUTF8       = wrapInvalid("value is not valid UTF-8")
	errLoneSurrogate = wrapInvalid("value holds an unpaired UTF-16 surrogate escape")
)

// invalidError is an error of class ErrInvalid with a fixed description.
type invalidError string

func wrapInvalid(msg string) error { return invalidError(msg) }

func (e invalidError) Error() string { return ErrInvalid.Error() + ": " + string(e) }
func (e invalidError) Unwrap() error { return ErrInvalid }

// fieldNotFound reports a field that the value does not hold, naming it
// within a bounded length.
func fieldNotFound(name string) error {
	return invalidError("field " + quote(name) + " not found")
}

// selectField returns the field name of the JSON value raw, parsing raw for
// this one selection.
func selectField(raw, name string) (string, error) {
	if name == "" {
		return "", errEmptyName
	}
	d, err := parseDoc(raw)
	if err != nil {
		return "", err
	}
	return d.field(name)
}

// extractField is selectField for a value held in a byte slice. raw must
// not change while extractField runs.
func extractField(raw []byte, name string) (string, error) {
	if name == "" {
		return "", errEmptyName
	}
	d, err := parseDocBytes(raw)
	if err != nil {
		return "", err
	}
	return d.field(name)
}

// jsonDoc is a JSON value parsed once for the selection of many fields.
// parseDoc parses its top level; a level below is parsed the first time a
// JSON pointer goes through it, and kept for the pointers that follow. A
// jsonDoc is safe for concurrent use.
type jsonDoc struct {
	root jsonNode
}

// jsonNode is one object or array of a jsonDoc.
type jsonNode struct {
	raw []byte // its JSON text, white space around it trimmed

	once sync.Once
	obj  map[string]json.RawMessage // members, when raw is an object
	arr  []json.RawMessage          // elements, when raw is an array
	err  error                      // errNotJSON or errNotObject

	mu   sync.Mutex
	kids map[string]*jsonNode // members and elements a pointer went through
}

// parseDoc parses the JSON value raw for field selection. raw must be an
// object or an array, valid JSON throughout, in valid UTF-8, and without an
// unpaired UTF-16 surrogate escape; otherwise the error wraps ErrInvalid and
// says which rule was broken, in the words extractField uses, without
// quoting any part of raw. Only the top level is decoded here.
func parseDoc(raw string) (*jsonDoc, error) {
	return parseDocBytes([]byte(raw))
}

// parseDocBytes is parseDoc for a value held in a byte slice, which the
// jsonDoc keeps: raw must not change afterwards.
func parseDocBytes(raw []byte) (*jsonDoc, error) {
	d := &jsonDoc{root: jsonNode{raw: bytes.TrimSpace(raw)}}
	// Decoding the top level checks the syntax of the whole value, so the
	// levels below, decoded later, are valid JSON.
	if err := d.root.parse(); err != nil {
		return nil, err
	}
	// encoding/json turns invalid UTF-8 and unpaired surrogate escapes
	// into U+FFFD without a word. A value holding them is refused as a
	// whole: it is not the JSON its writer meant, and a field of it read
	// silently changed could be a credential that never works.
	if !utf8.Valid(d.root.raw) {
		return nil, errBadUTF8
	}
	if hasLoneSurrogate(d.root.raw) {
		return nil, errLoneSurrogate
	}
	return d, nil
}

// field returns the field name of d, with the rules of Secret.Field: name is
// a top-level member name, or a JSON pointer when it starts with a slash; a
// string yields its text, anything else its compact JSON. Errors wrap
// ErrInvalid and never quote the value.
func (d *jsonDoc) field(name string) (string, error) {
	if name == "" {
		return "", errEmptyName
	}
	path := []string{name}
	if name[0] == '/' {
		path = strings.Split(name[1:], "/")
		for i, tok := range path {
			tok = strings.ReplaceAll(tok, "~1", "/")
			path[i] = strings.ReplaceAll(tok, "~0", "~")
		}
	}
	n := &d.root
	for i, tok := range path {
		if err := n.parse(); err != nil {
			if i == 0 {
				return "", err
			}
			return "", fieldNotFound(name) // a pointer through a scalar
		}
		raw, ok := n.child(tok)
		if !ok {
			return "", fieldNotFound(name)
		}
		if i < len(path)-1 {
			n = n.descend(tok, raw)
			continue
		}
		if string(bytes.TrimSpace(raw)) == "null" {
			// JSON's own word for no value: a template's unset variable.
			return "", invalidError("field " + quote(name) + " is null")
		}
		return render(raw)
	}
	return "", fieldNotFound(name) // no path: strings.Split never returns one
}

// parse decodes n's top level, once.
func (n *jsonNode) parse() error {
	n.once.Do(func() {
		switch {
		case len(n.raw) > 0 && n.raw[0] == '{':
			if json.Unmarshal(n.raw, &n.obj) != nil {
				n.obj, n.err = nil, errNotJSON
			}
		case len(n.raw) > 0 && n.raw[0] == '[':
			if json.Unmarshal(n.raw, &n.arr) != nil {
				n.arr, n.err = nil, errNotJSON
			}
		default:
			n.err = errNotObject
		}
	})
	return n.err
}

// child returns the member of n named tok, or its element at the index tok
// (decimal digits without a leading zero, as RFC 6901 writes them). n must
// be parsed.
func (n *jsonNode) child(tok string) (json.RawMessage, bool) {
	if n.obj != nil {
		v, ok := n.obj[tok]
		return v, ok
	}
	if tok == "" || len(tok) > 1 && tok[0] == '0' || strings.TrimLeft(tok, "0123456789") != "" {
		return nil, false
	}
	idx, err := strconv.Atoi(tok)
	if err != nil || idx >= len(n.arr) {
		return nil, false
	}
	return n.arr[idx], true
}

// descend returns the node of n's child tok, whose text is raw, creating it
// the first time.
func (n *jsonNode) descend(tok string, raw json.RawMessage) *jsonNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	if k := n.kids[tok]; k != nil {
		return k
	}
	if n.kids == nil {
		n.kids = map[string]*jsonNode{}
	}
	k := &jsonNode{raw: bytes.TrimSpace(raw)}
	n.kids[tok] = k
	return k
}

// render returns a selected value: a string's text, or compact JSON.
func render(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var str string
		if json.Unmarshal(raw, &str) != nil {
			return "", errNotJSON
		}
		return str, nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return "", errNotJSON
	}
	return buf.String(), nil
}

// hasLoneSurrogate reports whether the valid JSON text b holds a \u escape
// of a UTF-16 surrogate that is not part of a high-low pair. In valid JSON a
// backslash only starts an escape inside a string, so no string tracking is
// needed.
func hasLoneSurrogate(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '\\')
		if i < 0 || i+1 >= len(b) {
			return false
		}
		b = b[i:]
		if b[1] != 'u' {
			b = b[2:] // \\, \", \n, ...
			continue
		}
		r, ok := hex4(b[2:])
		switch {
		case !ok:
			return false // not valid JSON; parse has refused it already
		case r >= 0xd800 && r < 0xdc00:
			if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
				if lo, ok := hex4(b[8:]); ok && lo >= 0xdc00 && lo < 0xe000 {
					b = b[12:]
					continue
				}
			}
			return true
		case r >= 0xdc00 && r < 0xe000:
			return true
		}
		b = b[6:]
	}
}

// hex4 decodes the four hexadecimal digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
