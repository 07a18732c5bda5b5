package jwtkeys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Limits on key material.
const (
	minHMACKeySize = 32        // bytes; RFC 7518 §3.2 for HS256
	minRSABits     = 2048      // RFC 7518 §3.3
	maxRSABits     = 8192      // bounds the cost of one verification
	maxRSAExponent = 1<<31 - 1 // crypto/rsa refuses larger public exponents
	maxKeysInValue = 64        // keys in one JWK Set or PEM bundle
	base64Prefix   = "base64:"
)

// methods pins each algorithm name to golang-jwt's implementation of it.
// Verification uses this table, never the token's own lookup, so nothing a
// token says (or another package registers) can swap the implementation.
var methods = map[string]jwt.SigningMethod{
	"HS256": jwt.SigningMethodHS256,
	"HS384": jwt.SigningMethodHS384,
	"HS512": jwt.SigningMethodHS512,
	"RS256": jwt.SigningMethodRS256,
	"RS384": jwt.SigningMethodRS384,
	"RS512": jwt.SigningMethodRS512,
	"PS256": jwt.SigningMethodPS256,
	"PS384": jwt.SigningMethodPS384,
	"PS512": jwt.SigningMethodPS512,
	"ES256": jwt.SigningMethodES256,
	"ES384": jwt.SigningMethodES384,
	"ES512": jwt.SigningMethodES512,
	"EdDSA": jwt.SigningMethodEdDSA,
}

type keyKind uint8

const (
	kindHMAC keyKind = iota + 1
	kindRSA
	kindEC
	kindEd25519
)

// A key is one parsed key, immutable once built. For a Verifier, pub is set
// and priv is nil; for a Signer, priv is set when the key can sign.
type key struct {
	kind     keyKind
	pub      any      // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	priv     any      // []byte, *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey or nil
	algs     []string // accepted algorithms, most preferred first for signing
	kid      string   // "" when the key has none
	thumb    string   // RFC 7638 JWK thumbprint
	previous bool     // the key belongs to the previous version
	version  string   // the secret version the key came from

	jwkKID  string // the JWK's own kid, "" when none
	canSign bool   // priv set and not restricted to verification by key_ops
}

// accepts reports whether alg is one of the key's algorithms.
func (k *key) accepts(alg string) bool {
	for _, a := range k.algs {
		if a == alg {
			return true
		}
	}
	return false
}

// A parseOpts carries what the parser needs from the configuration.
type parseOpts struct {
	format Format
	algs   []string // WithAlgorithms, nil for all
}

// material is what one secret value holds.
type material struct {
	current  []*key
	previous []*key
	// combined: the value was a {"current": ..., "previous": ...} pair.
	combined bool
	// prevErr: the pair's previous member was present but unusable, and left
	// out.
	prevErr *keyError
	// rotatedAt: the pair's optional "rotated_at" member; zero when absent.
	rotatedAt time.Time
}

// parseMaterial parses a secret's value. It never panics, and its errors are
// fixed messages that hold no part of the value.
func parseMaterial(b []byte, o parseOpts) (material, error) {
	if len(b) > MaxKeyMaterialSize {
		return material{}, invalidKey("value is larger than the 256 KiB accepted as key material")
	}
	if o.format != FormatHMAC {
		if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
			var obj map[string]json.RawMessage
			if json.Unmarshal(t, &obj) != nil {
				return material{}, invalidKey("value starts like JSON but is not a JSON object")
			}
			if cur, ok := obj["current"]; ok {
				return parsePair(obj, cur, o)
			}
			if o.format != FormatAuto && o.format != FormatJWK {
				return material{}, invalidKey(detail("value is a JSON object, not of the declared format " + o.format.String()))
			}
			keys, err := parseJWKObject(obj, o)
			return material{current: keys}, err
		}
	}
	keys, err := parseSingle(b, o)
	return material{current: keys}, err
}

// parsePair parses the {"current": ..., "previous": ..., "rotated_at": ...}
// form.
func parsePair(obj map[string]json.RawMessage, cur json.RawMessage, o parseOpts) (material, error) {
	m := material{combined: true}
	keys, err := parseMember(cur, o)
	if err != nil {
		c := *err
		c.what = "current"
		return material{}, &c
	}
	if len(keys) == 0 {
		return material{}, &keyError{class: ErrInvalidKey, what: "current", msg: "current key is empty"}
	}
	m.current = keys
	if raw, ok := obj["rotated_at"]; ok && !isNull(raw) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return material{}, invalidKey("rotated_at is not a string")
		}
		t, perr := time.Parse(time.RFC3339, s)
		if perr != nil {
			return material{}, invalidKey("rotated_at is not an RFC 3339 time")
		}
		m.rotatedAt = t
	}
	if raw, ok := obj["previous"]; ok {
		prev, err := parseMember(raw, o)
		if err != nil {
			c := *err
			c.what = "previous"
			m.prevErr = &c
		} else {
			for _, k := range prev {
				k.previous = true
			}
			m.previous = prev
		}
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// parseMember parses one member of a pair: a string in any format, or a JWK
// or JWK Set object. null and "" mean no key.
func parseMember(raw json.RawMessage, o parseOpts) ([]*key, *keyError) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || isNull(raw):
		return nil, nil
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, invalidKey("member is not a valid JSON string")
		}
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		keys, err := parseSingle([]byte(s), o)
		if err != nil {
			return nil, asKeyError(err)
		}
		return keys, nil
	case raw[0] == '{':
		if o.format != FormatAuto && o.format != FormatJWK {
			return nil, invalidKey(detail("member is a JSON object, not of the declared format " + o.format.String()))
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil, invalidKey("member is not a valid JSON object")
		}
		keys, err := parseJWKObject(obj, o)
		if err != nil {
			return nil, asKeyError(err)
		}
		return keys, nil
	}
	return nil, invalidKey("member is neither a string nor a JWK")
}

func asKeyError(err error) *keyError {
	if ke, ok := err.(*keyError); ok {
		return ke
	}
	return invalidKey("unusable key material")
}

// parseSingle parses a value that is not a pair.
func parseSingle(b []byte, o parseOpts) ([]*key, error) {
	switch o.format {
	case FormatHMAC:
		return hmacKey(b, o)
	case FormatHMACBase64:
		return hmacBase64(b, o)
	case FormatPEM:
		return parsePEM(bytes.TrimSpace(b), o)
	case FormatJWK:
		return parseJWKJSON(bytes.TrimSpace(b), o)
	}
	t := bytes.TrimSpace(b)
	switch {
	case len(t) == 0:
		return nil, invalidKey("value is empty")
	case t[0] == '{':
		return parseJWKJSON(t, o)
	case bytes.HasPrefix(t, []byte("-----BEGIN ")):
		return parsePEM(t, o)
	case bytes.HasPrefix(t, []byte(base64Prefix)):
		return hmacBase64(t[len(base64Prefix):], o)
	case utf8.Valid(b):
		return hmacKey(t, o)
	default:
		return hmacKey(b, o)
	}
}

// ---- HMAC ----

func hmacKey(b []byte, o parseOpts) ([]*key, error) {
	if len(b) == 0 {
		return nil, invalidKey("value is empty")
	}
	if len(b) < minHMACKeySize {
		return nil, invalidKey("HMAC key is shorter than 32 bytes")
	}
	secret := bytes.Clone(b)
	k := &key{kind: kindHMAC, pub: secret, priv: secret, canSign: true,
		thumb: thumbprint(`{"k":"` + b64(secret) + `","kty":"oct"}`)}
	if err := k.setAlgs("", o); err != nil {
		return nil, err
	}
	return []*key{k}, nil
}

func hmacBase64(b []byte, o parseOpts) ([]*key, error) {
	s := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, string(b))
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	raw, err := enc.DecodeString(s)
	if err != nil {
		return nil, invalidKey("HMAC key is not valid base64")
	}
	return hmacKey(raw, o)
}

// hmacAlgs returns the HMAC algorithms a key of n bytes may use: RFC 7518
// §3.2 requires a key at least as long as the hash output.
func hmacAlgs(n int) []string {
	switch {
	case n >= 64:
		return []string{"HS256", "HS384", "HS512"}
	case n >= 48:
		return []string{"HS256", "HS384"}
	}
	return []string{"HS256"}
}

// ---- algorithms ----

// setAlgs sets k.algs: the algorithms of the key's type, narrowed to the
// JWK's alg when given and to the configured list, ordered by the configured
// list when there is one.
func (k *key) setAlgs(jwkAlg string, o parseOpts) error {
	var base []string
	switch k.kind {
	case kindHMAC:
		base = hmacAlgs(len(k.pub.([]byte)))
	case kindRSA:
		base = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case kindEC:
		switch k.pub.(*ecdsa.PublicKey).Curve {
		case elliptic.P256():
			base = []string{"ES256"}
		case elliptic.P384():
			base = []string{"ES384"}
		case elliptic.P521():
			base = []string{"ES512"}
		}
	case kindEd25519:
		base = []string{"EdDSA"}
	}
	if jwkAlg != "" {
		if !slices.Contains(base, jwkAlg) {
			return invalidKey("the JWK's alg does not suit its key type or size")
		}
		base = []string{jwkAlg}
	}
	if o.algs != nil {
		var out []string
		for _, a := range o.algs {
			if slices.Contains(base, a) && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		base = out
	}
	if len(base) == 0 {
		return errNoAlgLeft
	}
	k.algs = base
	return nil
}

// errNoAlgLeft: WithAlgorithms excludes every algorithm of the key. In a JWK
// Set such a key is skipped; alone, it is an error.
var errNoAlgLeft = invalidKey("no algorithm allowed by WithAlgorithms suits this key")

// ---- PEM ----

func parsePEM(t []byte, o parseOpts) ([]*key, error) {
	var keys []*key
	rest := t
	for {
		rest = bytes.TrimSpace(rest)
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, invalidKey("PEM data has text outside its blocks")
		}
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, invalidKey("PEM block is malformed")
		}
		if block.Type == "EC PARAMETERS" {
			continue // written by openssl ecparam before the key; the key names its curve
		}
		if _, enc := block.Headers["Proc-Type"]; enc || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, invalidKey("encrypted PEM keys are not supported")
		}
		if len(keys) == maxKeysInValue {
			return nil, invalidKey("more than 64 keys in one value")
		}
		k, err := pemKey(block)
		if err != nil {
			return nil, err
		}
		if err := k.setAlgs("", o); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, invalidKey("PEM data holds no key")
	}
	return keys, nil
}

func pemKey(block *pem.Block) (*key, error) {
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, invalidKey("PUBLIC KEY block is not a valid PKIX public key")
		}
		return fromPublic(pub)
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, invalidKey("RSA PUBLIC KEY block is not a valid PKCS #1 key")
		}
		return fromPublic(pub)
	case "PRIVATE KEY":
		priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, invalidKey("PRIVATE KEY block is not a valid PKCS #8 key")
		}
		return fromPrivate(priv)
	case "RSA PRIVATE KEY":
		priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, invalidKey("RSA PRIVATE KEY block is not a valid PKCS #1 key")
		}
		return fromPrivate(priv)
	case "EC PRIVATE KEY":
		priv, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, invalidKey("EC PRIVATE KEY block is not a valid SEC 1 key")
		}
		return fromPrivate(priv)
	}
	return nil, invalidKey("unsupported PEM block type (want PUBLIC KEY, PRIVATE KEY, RSA PUBLIC KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
}

// fromPublic builds a key from a public key of a supported type.
func fromPublic(pub any) (*key, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if err := checkRSA(p); err != nil {
			return nil, err
		}
		return &key{kind: kindRSA, pub: p, thumb: rsaThumb(p)}, nil
	case *ecdsa.PublicKey:
		crv, ok := curveName(p.Curve)
		if !ok {
			return nil, invalidKey("unsupported elliptic curve (want P-256, P-384 or P-521)")
		}
		raw, err := p.Bytes()
		if err != nil {
			return nil, invalidKey("invalid ECDSA public key")
		}
		n := (len(raw) - 1) / 2
		return &key{kind: kindEC, pub: p,
			thumb: thumbprint(`{"crv":"` + crv + `","kty":"EC","x":"` + b64(raw[1:1+n]) + `","y":"` + b64(raw[1+n:]) + `"}`)}, nil
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return nil, invalidKey("invalid Ed25519 public key")
		}
		return &key{kind: kindEd25519, pub: p, thumb: thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"` + b64(p) + `"}`)}, nil
	}
	return nil, invalidKey("unsupported key type (want RSA, ECDSA or Ed25519)")
}

// fromPrivate builds a key from a private key of a supported type; its public
// half verifies.
func fromPrivate(priv any) (*key, error) {
	var k *key
	var err error
	// The public halves are copied, so that a Verifier, which drops priv,
	// keeps no pointer into the private key.
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		pub := p.PublicKey
		k, err = fromPublic(&pub)
	case *ecdsa.PrivateKey:
		pub := p.PublicKey
		k, err = fromPublic(&pub)
	case ed25519.PrivateKey:
		if len(p) != ed25519.PrivateKeySize {
			return nil, invalidKey("invalid Ed25519 private key")
		}
		k, err = fromPublic(p.Public())
	default:
		return nil, invalidKey("unsupported key type (want RSA, ECDSA or Ed25519)")
	}
	if err != nil {
		return nil, err
	}
	k.priv, k.canSign = priv, true
	return k, nil
}

// checkRSA refuses the RSA public keys that are weak or that crypto/rsa
// refuses to verify with, so that such a key fails when it is loaded (and in
// KeyValidator) rather than on every token. Every RSA key, of every encoding,
// public or private, passes through it.
func checkRSA(p *rsa.PublicKey) error {
	if p.N == nil || p.N.Sign() <= 0 || p.N.Bit(0) == 0 {
		return invalidKey("invalid RSA modulus")
	}
	if bits := p.N.BitLen(); bits < minRSABits {
		return invalidKey("RSA modulus is shorter than 2048 bits")
	} else if bits > maxRSABits {
		return invalidKey("RSA modulus is longer than 8192 bits")
	}
	if p.E < 3 || p.E&1 == 0 {
		return invalidKey("invalid RSA public exponent")
	}
	if p.E > maxRSAExponent {
		return invalidKey("RSA public exponent is larger than 2^31-1, which crypto/rsa refuses")
	}
	return nil
}

func curveName(c elliptic.Curve) (string, bool) {
	switch c {
	case elliptic.P256():
		return "P-256", true
	case elliptic.P384():
		return "P-384", true
	case elliptic.P521():
		return "P-521", true
	}
	return "", false
}

// ---- JWK (RFC 7517, RFC 7518 §6) ----

type jwkJSON struct {
	Kty    string          `json:"kty"`
	Use    string          `json:"use"`
	KeyOps []string        `json:"key_ops"`
	Alg    string          `json:"alg"`
	Kid    string          `json:"kid"`
	Crv    string          `json:"crv"`
	K      string          `json:"k"`
	N      string          `json:"n"`
	E      string          `json:"e"`
	D      string          `json:"d"`
	P      string          `json:"p"`
	Q      string          `json:"q"`
	X      string          `json:"x"`
	Y      string          `json:"y"`
	Oth    json.RawMessage `json:"oth"`
}

func parseJWKJSON(t []byte, o parseOpts) ([]*key, error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(t, &obj) != nil {
		return nil, invalidKey("value is not a valid JSON object")
	}
	return parseJWKObject(obj, o)
}

// parseJWKObject parses a JWK or a JWK Set. In a set, keys that are not for
// signatures or of a type this package does not know are skipped (RFC 7517
// §5), as are keys that WithAlgorithms excludes; a key of a known type that
// is malformed or weak fails the whole set, so that a broken set is noticed.
func parseJWKObject(obj map[string]json.RawMessage, o parseOpts) ([]*key, error) {
	if raw, ok := obj["keys"]; ok {
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return nil, invalidKey("JWK Set's keys member is not an array")
		}
		if len(list) > maxKeysInValue {
			return nil, invalidKey("more than 64 keys in one value")
		}
		var keys []*key
		for _, raw := range list {
			var j jwkJSON
			if json.Unmarshal(raw, &j) != nil {
				return nil, invalidKey("a JWK Set member is not a valid JWK object")
			}
			k, err := jwkKey(&j, o, true)
			if err == errNoAlgLeft || (err == nil && k == nil) {
				continue
			}
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		if len(keys) == 0 {
			return nil, invalidKey("JWK Set holds no usable signature key")
		}
		return keys, nil
	}
	if _, ok := obj["kty"]; !ok {
		return nil, invalidKey("JSON object is not a JWK, a JWK Set or a current/previous pair")
	}
	raw, _ := json.Marshal(obj) // re-encode the object to decode it into the struct
	var j jwkJSON
	if json.Unmarshal(raw, &j) != nil {
		return nil, invalidKey("JWK has members of the wrong JSON type")
	}
	k, err := jwkKey(&j, o, false)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, invalidKey("JWK is not a signature key of a supported type")
	}
	return []*key{k}, nil
}

// jwkKey builds a key from a JWK. In a set, it returns nil, nil for a key to
// skip.
func jwkKey(j *jwkJSON, o parseOpts, inSet bool) (*key, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, nil
	}
	canVerify, canSign := true, true
	if j.KeyOps != nil {
		canVerify = slices.Contains(j.KeyOps, "verify") || slices.Contains(j.KeyOps, "sign")
		canSign = slices.Contains(j.KeyOps, "sign")
		if !canVerify {
			return nil, nil
		}
	}
	var k *key
	var err error
	switch j.Kty {
	case "oct":
		if j.K == "" {
			return nil, invalidKey("oct JWK has no k")
		}
		raw, derr := unb64(j.K)
		if derr != nil {
			return nil, invalidKey("oct JWK's k is not valid base64url")
		}
		if len(raw) < minHMACKeySize {
			return nil, invalidKey("HMAC key is shorter than 32 bytes")
		}
		k = &key{kind: kindHMAC, pub: raw, priv: raw, canSign: true,
			thumb: thumbprint(`{"k":"` + b64(raw) + `","kty":"oct"}`)}
	case "RSA":
		k, err = rsaJWK(j)
	case "EC":
		k, err = ecJWK(j)
	case "OKP":
		if j.Crv != "Ed25519" {
			if inSet {
				return nil, nil
			}
			return nil, invalidKey("unsupported OKP curve (want Ed25519)")
		}
		k, err = edJWK(j)
	default:
		if inSet {
			return nil, nil
		}
		return nil, invalidKey("unsupported JWK key type (want oct, RSA, EC or OKP)")
	}
	if err != nil {
		return nil, err
	}
	k.canSign = k.canSign && canSign
	k.jwkKID = j.Kid
	if err := k.setAlgs(j.Alg, o); err != nil {
		return nil, err
	}
	return k, nil
}

func rsaJWK(j *jwkJSON) (*key, error) {
	n, err1 := unb64(j.N)
	e, err2 := unb64(j.E)
	if j.N == "" || j.E == "" || err1 != nil || err2 != nil {
		return nil, invalidKey("RSA JWK's n or e is missing or not valid base64url")
	}
	e = bytes.TrimLeft(e, "\x00")
	if len(e) == 0 || len(e) > 4 {
		return nil, invalidKey("invalid RSA public exponent")
	}
	var ev int
	for _, c := range e {
		ev = ev<<8 | int(c)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev}
	k, err := fromPublic(pub)
	if err != nil || j.D == "" {
		return k, err
	}
	if len(j.Oth) > 0 {
		return nil, invalidKey("multi-prime RSA keys are not supported")
	}
	d, err1 := unb64(j.D)
	p, err2 := unb64(j.P)
	q, err3 := unb64(j.Q)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, invalidKey("RSA JWK's private members are not valid base64url")
	}
	if len(p) == 0 || len(q) == 0 {
		return nil, invalidKey("RSA private JWK without p and q is not supported")
	}
	priv := &rsa.PrivateKey{
		PublicKey: *pub,
		D:         new(big.Int).SetBytes(d),
		Primes:    []*big.Int{new(big.Int).SetBytes(p), new(big.Int).SetBytes(q)},
	}
	priv.Precompute()
	if priv.Validate() != nil {
		return nil, invalidKey("RSA private JWK is inconsistent")
	}
	k.priv, k.canSign = priv, true
	return k, nil
}

func ecJWK(j *jwkJSON) (*key, error) {
	var curve elliptic.Curve
	var size int
	switch j.Crv {
	case "P-256":
		curve, size = elliptic.P256(), 32
	case "P-384":
		curve, size = elliptic.P384(), 48
	case "P-521":
		curve, size = elliptic.P521(), 66
	default:
		return nil, invalidKey("unsupported EC curve (want P-256, P-384 or P-521)")
	}
	x, err1 := unb64(j.X)
	y, err2 := unb64(j.Y)
	if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
		return nil, invalidKey("EC JWK's x or y is missing, not valid base64url or not the curve's size")
	}
	pt := make([]byte, 0, 1+2*size)
	pt = append(append(append(pt, 4), x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, pt)
	if err != nil {
		return nil, invalidKey("EC JWK's point is not on its curve")
	}
	k, kerr := fromPublic(pub)
	if kerr != nil || j.D == "" {
		return k, kerr
	}
	d, err := unb64(j.D)
	if err != nil || len(d) != size {
		return nil, invalidKey("EC JWK's d is not valid base64url or not the curve's size")
	}
	priv, err := ecdsa.ParseRawPrivateKey(curve, d)
	if err != nil || !priv.PublicKey.Equal(pub) {
		return nil, invalidKey("EC private JWK is inconsistent")
	}
	k.priv, k.canSign = priv, true
	return k, nil
}

func edJWK(j *jwkJSON) (*key, error) {
	x, err := unb64(j.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, invalidKey("OKP JWK's x is missing, not valid base64url or not 32 bytes")
	}
	k, kerr := fromPublic(ed25519.PublicKey(x))
	if kerr != nil || j.D == "" {
		return k, kerr
	}
	d, err := unb64(j.D)
	if err != nil || len(d) != ed25519.SeedSize {
		return nil, invalidKey("OKP JWK's d is not valid base64url or not 32 bytes")
	}
	priv := ed25519.NewKeyFromSeed(d)
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(x)) {
		return nil, invalidKey("OKP private JWK is inconsistent")
	}
	k.priv, k.canSign = priv, true
	return k, nil
}

// ---- encodings ----

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// unb64 decodes base64url, tolerating padding that some writers add.
func unb64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// thumbprint hashes the canonical JSON of a key's required members (RFC 7638).
func thumbprint(canonical string) string {
	h := sha256.Sum256([]byte(canonical))
	return b64(h[:])
}

func rsaThumb(p *rsa.PublicKey) string {
	e := big.NewInt(int64(p.E)).Bytes()
	return thumbprint(`{"e":"` + b64(e) + `","kty":"RSA","n":"` + b64(p.N.Bytes()) + `"}`)
}
