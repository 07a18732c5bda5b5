package jwtkeys_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/jwtkeys"
)

const canary = "CANARY7x"

// noLeak fails if err, any error it wraps, or its formatted forms hold the
// canary, its base64 forms, or any of the extra strings.
func noLeak(t testing.TB, err error, extra ...string) {
	t.Helper()
	if err == nil {
		return
	}
	bad := append([]string{canary,
		base64.RawURLEncoding.EncodeToString([]byte(canary)),
		base64.StdEncoding.EncodeToString([]byte(canary))}, extra...)
	var texts []string
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		texts = append(texts, e.Error())
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, w := range u.Unwrap() {
				walk(w)
			}
		}
	}
	walk(err)
	texts = append(texts, fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%q", err))
	for _, text := range texts {
		for _, b := range bad {
			if b != "" && strings.Contains(text, b) {
				t.Fatalf("error leaks %q: %s", b, text)
			}
		}
	}
}

// TestNoKeyMaterialInErrors loads key material holding a canary in every
// way that fails, and checks every error and status for it.
func TestNoKeyMaterialInErrors(t *testing.T) {
	long := canary + strings.Repeat("k", 40)
	values := []string{
		canary,                       // HMAC too short
		"base64:" + canary + "!!!!!", // bad base64
		"base64:" + base64.StdEncoding.EncodeToString([]byte(canary)),
		"-----BEGIN PUBLIC KEY-----\n" + base64.StdEncoding.EncodeToString([]byte(long)) + "\n-----END PUBLIC KEY-----\n",
		"-----BEGIN PRIVATE KEY-----\n" + base64.StdEncoding.EncodeToString([]byte(long)) + "\n-----END PRIVATE KEY-----\n",
		"-----BEGIN " + canary + "-----\nAAAA\n-----END " + canary + "-----\n",
		"-----BEGIN PUBLIC KEY-----\n" + canary,
		testKey(t, "rsa1.pub.pem") + canary,
		`{"kty":"oct","k":"` + canary + `"}`,
		`{"kty":"oct","k":"` + base64.RawURLEncoding.EncodeToString([]byte(canary)) + `"}`,
		`{"kty":"` + canary + `"}`,
		`{"kty":"RSA","n":"` + canary + `","e":"AQAB"}`,
		`{"kty":"EC","crv":"P-256","x":"` + canary + `","y":"` + canary + `"}`,
		`{"kty":"EC","crv":"` + canary + `"}`,
		`{"kty":"OKP","crv":"Ed25519","x":"` + canary + `"}`,
		`{"keys":[{"kty":"oct","k":"` + canary + `"}]}`,
		`{"keys":"` + canary + `"}`,
		`{"current":"` + canary + `"}`,
		`{"current":"` + long + `","rotated_at":"` + canary + `"}`,
		`{"` + canary + `":1}`,
		`{"kty":` + canary,
		`{"current":` + canary + `}`,
	}
	for i, val := range values {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e := newEnv(t, "jwt", val)
			v := e.verifier(t, "jwt")
			_, err := v.Verify(ctx, signWith(t, jwt.SigningMethodHS256, []byte(long), nil, claimsAt(e.clk.Now())))
			if err == nil {
				t.Fatal("verified with a broken key")
			}
			noLeak(t, err)
			noLeak(t, v.Load(ctx))
			noLeak(t, v.Stats().KeyError)
			_, err = e.signer(t, "jwt").Sign(ctx, claimsAt(e.clk.Now()))
			noLeak(t, err)
			kv := jwtkeys.KeyValidator()
			v2, _ := e.store.Versions(ctx, "jwt")
			noLeak(t, kv(ctx, "jwt", v2))
		})
	}
	// A good current key and a broken previous one.
	e := newEnv(t, "jwt", canary, hmacA)
	v := e.verifier(t, "jwt")
	if err := v.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if v.Stats().PreviousKeyError == nil {
		t.Fatal("no PreviousKeyError")
	}
	noLeak(t, v.Stats().PreviousKeyError)
	noLeak(t, v.Stats().PreviousKeyError, hmacA)
}

// TestNoTokenContentInErrors refuses tokens holding a canary in every part
// and checks that no error holds it or any segment of the token.
func TestNoTokenContentInErrors(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	v := e.verifier(t, "jwt", jwtkeys.WithIssuer("iss"), jwtkeys.WithAudience("aud"))
	key := []byte(hmacA)
	now := e.clk.Now()
	c := func(f func(m jwt.MapClaims)) jwt.MapClaims {
		m := jwt.MapClaims{"sub": canary, "iss": "iss", "aud": "aud", "exp": now.Add(time.Hour).Unix()}
		f(m)
		return m
	}
	hs := func(h map[string]any, m jwt.MapClaims) string {
		return signWith(t, jwt.SigningMethodHS256, key, h, m)
	}
	keep := func(jwt.MapClaims) {}
	tokens := []string{
		hs(map[string]any{"alg": canary}, c(keep)),
		rawToken(t, map[string]any{"alg": canary}, c(keep), nil),
		hs(map[string]any{"kid": canary}, c(keep)),
		hs(map[string]any{"kid": []string{canary}}, c(keep)),
		hs(map[string]any{"crit": []string{canary}}, c(keep)),
		hs(nil, c(func(m jwt.MapClaims) { m["iss"] = canary })),
		hs(nil, c(func(m jwt.MapClaims) { m["aud"] = canary })),
		hs(nil, c(func(m jwt.MapClaims) { m["aud"] = 7 })),
		hs(nil, c(func(m jwt.MapClaims) { m["exp"] = canary })),
		hs(nil, c(func(m jwt.MapClaims) { m["exp"] = now.Add(-time.Hour).Unix() })),
		hs(nil, c(func(m jwt.MapClaims) { m["nbf"] = now.Add(time.Hour).Unix() })),
		signWith(t, jwt.SigningMethodHS256, []byte(canary), nil, c(keep)),
		signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, c(keep)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","x":"`+canary+`"`)) + ".e30.AA",
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+canary+`"`)) + ".AA",
		canary + "." + canary + "." + canary,
		canary + strings.Repeat(".", 10),
		strings.Repeat(canary, 2000),
	}
	for i, tok := range tokens {
		_, err := v.Verify(ctx, tok)
		if err == nil {
			t.Fatalf("token %d verified", i)
		}
		segs := []string{}
		for _, s := range strings.Split(tok, ".") {
			if len(s) >= 8 {
				segs = append(segs, s)
			}
		}
		noLeak(t, err, segs...)
		m := jwt.MapClaims{}
		_, err = v.VerifyClaims(ctx, tok, m)
		noLeak(t, err, segs...)
	}
	// Signing claims that cannot be encoded, with a canary beside.
	s := e.signer(t, "jwt")
	_, err := s.Sign(ctx, jwt.MapClaims{"exp": math.Inf(1), "sub": canary})
	if err == nil {
		t.Fatal("signed unencodable claims")
	}
	noLeak(t, err)
	_, err = s.Sign(ctx, jwt.MapClaims{"exp": now.Add(time.Hour).Unix(), "x": math.NaN(), "sub": canary})
	noLeak(t, err)
	if !errors.Is(err, jwtkeys.ErrClaims) {
		t.Fatalf("err = %v", err)
	}
}
