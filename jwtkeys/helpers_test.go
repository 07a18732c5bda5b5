package jwtkeys_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// t0 is the fake clock's start.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// Two HMAC keys of 32 bytes, and one too short.
const (
	hmacA     = "A-0123456789abcdef0123456789abcd"
	hmacB     = "B-0123456789abcdef0123456789abcd"
	hmacShort = "short-key-0123456789"
)

// testKey returns a PEM file of testdata.
func testKey(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// privateKey parses a PKCS #8 test key.
func privateKey(t testing.TB, name string) any {
	t.Helper()
	blk, _ := pem.Decode([]byte(testKey(t, name)))
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publicKey parses a PKIX test key.
func publicKey(t testing.TB, name string) any {
	t.Helper()
	blk, _ := pem.Decode([]byte(testKey(t, name)))
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// env is a memory source and a Store on a fake clock.
type env struct {
	src   *memory.Source
	store *secrets.Store
	clk   *fakeclock.Clock
}

func newEnv(t testing.TB, key string, values ...string) *env {
	t.Helper()
	e := &env{src: memory.New(), clk: fakeclock.New(t0)}
	for _, v := range values {
		e.src.Set(key, v)
	}
	st, err := secrets.New(e.src, secrets.WithClock(e.clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = st
	return e
}

// rotate sets a new value and makes the Store serve it.
func (e *env) rotate(t testing.TB, key, value string) {
	t.Helper()
	e.src.Set(key, value)
	if err := e.store.Refresh(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}

func (e *env) verifier(t testing.TB, key string, opts ...jwtkeys.Option) *jwtkeys.Verifier {
	t.Helper()
	v, err := jwtkeys.NewVerifier(e.store, key, append([]jwtkeys.Option{jwtkeys.WithClock(e.clk)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) signer(t testing.TB, key string, opts ...jwtkeys.Option) *jwtkeys.Signer {
	t.Helper()
	s, err := jwtkeys.NewSigner(e.store, key, append([]jwtkeys.Option{jwtkeys.WithClock(e.clk)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns registered claims valid at now for an hour.
func claimsAt(now time.Time) *jwt.RegisteredClaims {
	return &jwt.RegisteredClaims{
		Subject:   "user-1",
		Issuer:    "https://issuer.example",
		Audience:  jwt.ClaimStrings{"mcp"},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}
}

func mustSign(t testing.TB, s *jwtkeys.Signer, c jwt.Claims) string {
	t.Helper()
	tok, err := s.Sign(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signWith signs claims with golang-jwt directly, with extra header fields.
func signWith(t testing.TB, m jwt.SigningMethod, key any, header map[string]any, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawToken assembles a token from parts, for shapes golang-jwt would not sign.
func rawToken(t testing.TB, header, claims any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

// headerOf decodes a token's header.
func headerOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(h, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantReason checks that err is an *Error of reason r that errors.Is matches
// with r's sentinel.
func wantReason(t testing.TB, err error, r jwtkeys.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %v", r)
	}
	var je *jwtkeys.Error
	if !errors.As(err, &je) {
		t.Fatalf("err = %v (%T), want *jwtkeys.Error", err, err)
	}
	if je.Reason != r {
		t.Fatalf("reason = %v (%v), want %v", je.Reason, err, r)
	}
	if !errors.Is(err, r.Err()) {
		t.Fatalf("errors.Is(%v, %v) = false", err, r.Err())
	}
	for _, o := range jwtkeys.Reasons() {
		if o != r && errors.Is(err, o.Err()) {
			t.Fatalf("err %v also matches %v", err, o)
		}
	}
}

// newStoreWith returns a Store over e's source and clock with a validator.
func newStoreWith(t testing.TB, e *env, v secrets.Validator, keys ...string) (*secrets.Store, error) {
	t.Helper()
	st, err := secrets.New(e.src, secrets.WithClock(e.clk), secrets.WithValidator(v, keys...))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { st.Close() })
	return st, nil
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// jwkOf encodes a key as a JWK (RFC 7517/7518), with extra members.
func jwkOf(t testing.TB, k any, extra map[string]any) map[string]any {
	t.Helper()
	enc := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	m := map[string]any{}
	switch k := k.(type) {
	case []byte:
		m["kty"], m["k"] = "oct", enc(k)
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", enc(k.N.Bytes()), enc(big.NewInt(int64(k.E)).Bytes())
	case *rsa.PrivateKey:
		m = jwkOf(t, &k.PublicKey, nil)
		m["d"], m["p"], m["q"] = enc(k.D.Bytes()), enc(k.Primes[0].Bytes()), enc(k.Primes[1].Bytes())
	case *ecdsa.PublicKey:
		raw, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		n := (len(raw) - 1) / 2
		m["kty"], m["crv"], m["x"], m["y"] = "EC", k.Curve.Params().Name, enc(raw[1:1+n]), enc(raw[1+n:])
	case *ecdsa.PrivateKey:
		m = jwkOf(t, &k.PublicKey, nil)
		d, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m["d"] = enc(d)
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", enc(k)
	case ed25519.PrivateKey:
		m = jwkOf(t, k.Public(), nil)
		m["d"] = enc(k.Seed())
	default:
		t.Fatalf("jwkOf(%T)", k)
	}
	for key, v := range extra {
		m[key] = v
	}
	return m
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var jwtES256 = jwt.SigningMethodES256
