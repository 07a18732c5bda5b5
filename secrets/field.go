package secrets

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

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
