package jwtkeys

// KeyDesc describes one parsed key, for the tests of the parser.
type KeyDesc struct {
	Kind     string // "HMAC", "RSA", "EC", "Ed25519"
	Algs     []string
	KID      string // the JWK's own kid
	Thumb    string
	Private  bool
	Previous bool
	Secret   []byte // HMAC only
}

// ParseForTest runs the key-material parser on value.
func ParseForTest(value []byte, opts ...Option) (cur, prev []KeyDesc, combined bool, prevErr, err error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, nil, false, nil, err
	}
	m, err := parseMaterial(value, parseOpts{format: cfg.format, algs: cfg.algs})
	if err != nil {
		return nil, nil, false, nil, err
	}
	if m.prevErr != nil {
		prevErr = m.prevErr
	}
	return describe(m.current), describe(m.previous), m.combined, prevErr, nil
}

func describe(keys []*key) []KeyDesc {
	var out []KeyDesc
	for _, k := range keys {
		d := KeyDesc{Algs: k.algs, KID: k.jwkKID, Thumb: k.thumb, Private: k.canSign, Previous: k.previous}
		switch k.kind {
		case kindHMAC:
			d.Kind, d.Secret = "HMAC", k.pub.([]byte)
		case kindRSA:
			d.Kind = "RSA"
		case kindEC:
			d.Kind = "EC"
		case kindEd25519:
			d.Kind = "Ed25519"
		}
		out = append(out, d)
	}
	return out
}

// CachedKeys returns the parsed current keys a Verifier holds, to check that
// they are not parsed again.
func (v *Verifier) CachedKeys() []any {
	ks := v.ring.set.Load()
	if ks == nil {
		return nil
	}
	out := make([]any, len(ks.all))
	for i, k := range ks.all {
		out[i] = k
	}
	return out
}

// SetAfterReadHook makes every use of the keys call f after it has read the
// Store's versions and before it compares them with the cached key set. Set
// it before the Verifier is used concurrently.
func (v *Verifier) SetAfterReadHook(f func()) { v.ring.afterRead = f }

// SetLockedHook makes every rebuild of the key set call f once it holds the
// rebuild lock. Set it before the Verifier is used concurrently.
func (v *Verifier) SetLockedHook(f func()) { v.ring.locked = f }

// SetAfterReadHook is Verifier.SetAfterReadHook for a Signer.
func (s *Signer) SetAfterReadHook(f func()) { s.ring.afterRead = f }

// CachedVersion returns the version id of the current key set a Signer
// holds, "" when it holds none.
func (s *Signer) CachedVersion() string {
	if ks := s.ring.set.Load(); ks != nil {
		return ks.cur.Version()
	}
	return ""
}

// MemberNames returns the member names of the JSON object b as the claims
// check reads them, and whether it could scan b.
func MemberNames(b []byte) ([]string, bool) {
	var out []string
	sc := nameScanner{b: b}
	for {
		name, more, ok := sc.next()
		if !more {
			return out, ok
		}
		out = append(out, string(name))
	}
}

// FoldName is the key under which the claims check finds case-variant
// names among many.
func FoldName(s string) string { return foldName([]byte(s)) }
