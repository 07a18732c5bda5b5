package jwtkeys_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/jwtkeys"
)

// FuzzParseKey feeds arbitrary values to the key-material parser under every
// format: it must never panic; an error must wrap ErrInvalidKey and hold no
// part of the value; a key it accepts must be usable.
func FuzzParseKey(f *testing.F) {
	rsaPriv := privateKey(f, "rsa1.key.pem").(*rsa.PrivateKey)
	ecPriv := privateKey(f, "ec256a.key.pem").(*ecdsa.PrivateKey)
	edPriv := privateKey(f, "ed1.key.pem").(ed25519.PrivateKey)
	for _, s := range []string{
		hmacA, hmacA + "\n", hmacShort, "", "base64:" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
		testKey(f, "rsa1.key.pem"), testKey(f, "rsa1.pub.pem"), testKey(f, "ec256a.key.pem"),
		testKey(f, "ec384.pub.pem"), testKey(f, "ed1.key.pem"), testKey(f, "ed1.pub.pem"),
		testKey(f, "rsa1024.pub.pem"),
		mustJSON(f, jwkOf(f, rsaPriv, map[string]any{"kid": "r", "alg": "PS256"})),
		mustJSON(f, jwkOf(f, &ecPriv.PublicKey, nil)),
		mustJSON(f, jwkOf(f, edPriv, nil)),
		mustJSON(f, jwkOf(f, []byte(hmacB), nil)),
		mustJSON(f, map[string]any{"keys": []any{jwkOf(f, &rsaPriv.PublicKey, map[string]any{"use": "enc"}), jwkOf(f, edPriv.Public(), nil)}}),
		mustJSON(f, map[string]any{"current": hmacB, "previous": hmacA, "rotated_at": "2025-01-01T00:00:00Z"}),
		mustJSON(f, map[string]any{"current": jwkOf(f, ecPriv, nil), "previous": testKey(f, "ec256b.pub.pem")}),
		`{"current":null}`, `{"keys":[{}]}`, `{"kty":"RSA","n":"AQAB","e":"AQAB"}`, "-----BEGIN PUBLIC KEY-----\n",
	} {
		f.Add([]byte(s))
	}
	formats := []jwtkeys.Format{jwtkeys.FormatAuto, jwtkeys.FormatHMAC, jwtkeys.FormatHMACBase64, jwtkeys.FormatPEM, jwtkeys.FormatJWK}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range formats {
			cur, prev, _, prevErr, err := jwtkeys.ParseForTest(data, jwtkeys.WithKeyFormat(format))
			if err != nil {
				if !errors.Is(err, jwtkeys.ErrInvalidKey) {
					t.Fatalf("%v: err = %v, not ErrInvalidKey", format, err)
				}
				checkNoEcho(t, err.Error(), data)
				continue
			}
			if prevErr != nil {
				checkNoEcho(t, prevErr.Error(), data)
			}
			if len(cur) == 0 {
				t.Fatalf("%v: no error and no key", format)
			}
			for _, k := range append(cur, prev...) {
				if len(k.Algs) == 0 || len(k.Thumb) != 43 {
					t.Fatalf("%v: unusable key %+v", format, k)
				}
				if k.Kind == "HMAC" && len(k.Secret) < 32 {
					t.Fatalf("%v: HMAC key of %d bytes accepted", format, len(k.Secret))
				}
			}
		}
	})
}

// checkNoEcho fails if msg holds a long enough stretch of the input.
func checkNoEcho(t *testing.T, msg string, data []byte) {
	t.Helper()
	const window = 16
	d := bytes.TrimSpace(data)
	for i := 0; i+window <= len(d); i += window / 2 {
		if strings.Contains(msg, string(d[i:i+window])) {
			t.Fatalf("error %q echoes the input", msg)
		}
	}
}

// FuzzVerify feeds arbitrary tokens to Verifiers of every key type: Verify
// must never panic; a refusal must be an *Error with a known reason that
// holds no part of the token; and a token it accepts must also verify with
// golang-jwt alone, given the expected key and algorithm.
func FuzzVerify(f *testing.F) {
	e := newEnv(f, "hmac", hmacA, hmacB)
	e.src.Set("rsa", testKey(f, "rsa1.pub.pem"))
	e.src.Set("ec", testKey(f, "ec256a.pub.pem"))
	e.src.Set("ed", testKey(f, "ed1.pub.pem"))
	type target struct {
		v    *jwtkeys.Verifier
		keys []any
		algs []string
	}
	targets := []target{
		{e.verifier(f, "hmac", jwtkeys.WithIssuer("iss")), []any{[]byte(hmacB), []byte(hmacA)}, []string{"HS256"}},
		{e.verifier(f, "rsa"), []any{publicKey(f, "rsa1.pub.pem")}, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
		{e.verifier(f, "ec"), []any{publicKey(f, "ec256a.pub.pem")}, []string{"ES256"}},
		{e.verifier(f, "ed"), []any{publicKey(f, "ed1.pub.pem")}, []string{"EdDSA"}},
	}
	now := e.clk.Now()
	c := claimsAt(now)
	c.Issuer = "iss"
	for _, s := range []string{
		signWith(f, jwt.SigningMethodHS256, []byte(hmacB), map[string]any{"kid": "2"}, c),
		signWith(f, jwt.SigningMethodHS256, []byte(hmacA), nil, c),
		signWith(f, jwt.SigningMethodRS256, privateKey(f, "rsa1.key.pem"), nil, c),
		signWith(f, jwt.SigningMethodPS512, privateKey(f, "rsa1.key.pem"), map[string]any{"kid": "3"}, c),
		signWith(f, jwt.SigningMethodES256, privateKey(f, "ec256a.key.pem"), nil, c),
		signWith(f, jwt.SigningMethodEdDSA, privateKey(f, "ed1.key.pem"), map[string]any{"kid": "5"}, c),
		signWith(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, c),
		signWith(f, jwt.SigningMethodHS256, []byte(testKey(f, "rsa1.pub.pem")), nil, c),
		signWith(f, jwt.SigningMethodHS256, []byte{}, nil, c),
		"", ".", "..", "...", "a.b.c", strings.Repeat(".", 100), "eyJhbGciOiJIUzI1NiJ9.e30.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		for _, tg := range targets {
			got, err := tg.v.Verify(ctx, tok)
			if err != nil {
				var je *jwtkeys.Error
				if !errors.As(err, &je) || je.Reason.Err() == nil || !errors.Is(err, je.Reason.Err()) || got != nil {
					t.Fatalf("err = %v (%T), token %v", err, err, got)
				}
				checkNoEcho(t, err.Error(), []byte(tok))
				continue
			}
			ok := false
			for _, k := range tg.keys {
				_, berr := jwt.ParseWithClaims(tok, &jwt.RegisteredClaims{}, func(*jwt.Token) (any, error) { return k, nil },
					jwt.WithValidMethods(tg.algs), jwt.WithTimeFunc(e.clk.Now), jwt.WithLeeway(time.Minute), jwt.WithExpirationRequired())
				ok = ok || berr == nil
			}
			if !ok {
				t.Fatalf("Verify accepted a token that golang-jwt alone refuses")
			}
		}
	})
}
