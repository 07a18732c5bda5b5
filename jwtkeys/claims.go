package jwtkeys

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"unicode"
	"unicode/utf8"
)

// registeredClaims are the claim names of RFC 7519 §4.1.
var registeredClaims = [...][]byte{[]byte("iss"), []byte("sub"), []byte("aud"), []byte("exp"), []byte("nbf"), []byte("iat"), []byte("jti")}

// strictBase64 decodes a segment as golang-jwt does with WithStrictDecoding.
var strictBase64 = base64.RawURLEncoding.Strict()

// maxPairwiseNames is the number of member names up to which duplicates are
// looked for by comparing every pair; above it, with a map of folded names.
const maxPairwiseNames = 16

// checkClaimNames checks that the claims segment of a token (base64url,
// already decoded once by golang-jwt into valid JSON) names its members
// unambiguously: no name twice, also when two spellings differ only in case
// (as encoding/json folds them: Unicode simple folding), and no registered
// claim name in another case. It looks at the top-level object only. It
// returns ErrDuplicateClaim, or a detail for input it cannot scan; neither
// holds any part of the token.
func checkClaimNames(seg string) error {
	// Small segments are copied and decoded on the stack.
	var src [1024]byte
	var dst [768]byte
	in, out := src[:], dst[:]
	if len(seg) > len(in) {
		in, out = make([]byte, len(seg)), make([]byte, strictBase64.DecodedLen(len(seg)))
	}
	in = in[:copy(in, seg)]
	n, err := strictBase64.Decode(out, in)
	if err != nil {
		return detail("the claims segment is not valid base64url")
	}
	var names [maxPairwiseNames][]byte // the first names, while they are few
	var isASCIIName [maxPairwiseNames]bool
	count := 0
	var folded map[string]struct{}
	sc := nameScanner{b: out[:n]}
	for {
		name, more, ok := sc.next()
		if !ok {
			return detail("the claims are not a JSON object")
		}
		if !more {
			return nil
		}
		ascii := isASCII(name)
		// An ASCII variant of a registered name has its length, and a
		// registered name itself is no variant of another.
		if (!ascii || len(name) == 3) && !isRegistered(name) {
			for _, r := range registeredClaims {
				if bytes.EqualFold(name, r) {
					return ErrDuplicateClaim
				}
			}
		}
		if folded == nil && count < len(names) {
			for i, m := range names[:count] {
				if ascii && isASCIIName[i] && (len(m) != len(name) || len(m) > 0 && m[0]|0x20 != name[0]|0x20) {
					continue // ASCII names of other lengths or first letters differ
				}
				if bytes.EqualFold(m, name) {
					return ErrDuplicateClaim
				}
			}
			names[count], isASCIIName[count] = name, ascii
			count++
			continue
		}
		if folded == nil {
			folded = make(map[string]struct{}, 2*len(names))
			for _, m := range names {
				folded[foldName(m)] = struct{}{}
			}
		}
		f := foldName(name)
		if _, dup := folded[f]; dup {
			return ErrDuplicateClaim
		}
		folded[f] = struct{}{}
	}
}

func isRegistered(name []byte) bool {
	for _, r := range registeredClaims {
		if bytes.Equal(name, r) {
			return true
		}
	}
	return false
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldName returns a key under which two names are equal exactly when
// bytes.EqualFold says they are: each rune replaced by the smallest rune of
// its Unicode simple-folding orbit.
func foldName(name []byte) string {
	out := make([]byte, 0, len(name))
	for _, r := range string(name) {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < least {
				least = f
			}
		}
		out = utf8.AppendRune(out, least)
	}
	return string(out)
}

// A nameScanner reads the member names of a JSON object, in order. Names are
// decoded as encoding/json decodes them (escapes resolved, invalid UTF-8
// replaced), so that they compare as the decoder matches them to fields.
// Values are skipped, not checked: the object is known to be valid JSON.
type nameScanner struct {
	b     []byte
	i     int
	state uint8 // 0 before the object, 1 after a member, 2 at its end
}

// next returns the next member's name, with more set; more is false at the
// end of the object, and ok is false when b is not an object it can scan.
func (s *nameScanner) next() (name []byte, more, ok bool) {
	b := s.b
	i := skipSpace(b, s.i)
	switch s.state {
	case 0:
		if i >= len(b) || b[i] != '{' {
			return nil, false, false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			s.state = 2
			return nil, false, true
		}
	case 1:
		if i < len(b) && b[i] == '}' {
			s.state = 2
			return nil, false, true
		}
		if i >= len(b) || b[i] != ',' {
			return nil, false, false
		}
		i = skipSpace(b, i+1)
	default:
		return nil, false, true
	}
	end := stringEnd(b, i)
	if end < 0 {
		return nil, false, false
	}
	if name, ok = memberName(b[i:end]); !ok {
		return nil, false, false
	}
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return nil, false, false
	}
	if i = skipValue(b, skipSpace(b, i+1)); i < 0 {
		return nil, false, false
	}
	s.i, s.state = i, 1
	return name, true, true
}

// memberName decodes the JSON string raw (quotes included). A plain ASCII
// name is used as it is; one with escapes or other bytes goes through
// encoding/json.
func memberName(raw []byte) ([]byte, bool) {
	plain := true
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return raw[1 : len(raw)-1], true
	}
	var s string
	// A copy, so that the caller's buffer does not escape to the heap
	// through encoding/json.
	if json.Unmarshal(bytes.Clone(raw), &s) != nil {
		return nil, false
	}
	return []byte(s), true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string that starts at b[i],
// or -1.
func stringEnd(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index just past the JSON value that starts at b[i],
// or -1. The value is known to be valid JSON; only its extent is found.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			if i = stringEnd(b, i); i < 0 {
				return -1
			}
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	if depth == 0 {
		return i
	}
	return -1
}
