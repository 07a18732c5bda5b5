package jwtkeys_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/jwtkeys"
)

// signRaw signs claims given as raw JSON, which golang-jwt would not write:
// duplicate or case-variant member names.
func signRaw(t testing.TB, key []byte, claims string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	signing := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims))
	sig, err := jwt.SigningMethodHS256.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc(sig)
}

// TestGolangJWTClaimNames pins what golang-jwt v5 does with duplicate and
// case-variant claim names, which is why the Verifier refuses them: decoding
// into a struct (jwt.RegisteredClaims, or the caller's own type) goes
// through encoding/json, which matches member names to fields without
// regard to case (Unicode case folding: "ſub" is "sub") and keeps the last
// match; jwt.MapClaims keeps each spelling apart and the last of exact
// duplicates. A claims set signed as {"exp": <past>, "Exp": <future>} is
// expired to every library that reads "exp" (RFC 7519 names are
// case-sensitive) and to jwt.MapClaims, but not to jwt.RegisteredClaims.
// If this test fails, golang-jwt or encoding/json changed, and the
// package's documentation of claim names must be revisited.
func TestGolangJWTClaimNames(t *testing.T) {
	key := []byte(hmacA)
	keyFunc := func(*jwt.Token) (any, error) { return key, nil }
	parse := func(claims string) (jwt.RegisteredClaims, jwt.MapClaims) {
		t.Helper()
		tok := signRaw(t, key, claims)
		var rc jwt.RegisteredClaims
		if _, err := jwt.ParseWithClaims(tok, &rc, keyFunc, jwt.WithoutClaimsValidation()); err != nil {
			t.Fatalf("%s into RegisteredClaims: %v", claims, err)
		}
		mc := jwt.MapClaims{}
		if _, err := jwt.ParseWithClaims(tok, mc, keyFunc, jwt.WithoutClaimsValidation()); err != nil {
			t.Fatalf("%s into MapClaims: %v", claims, err)
		}
		return rc, mc
	}

	rc, mc := parse(`{"iss":"a","ISS":"b"}`)
	if rc.Issuer != "b" || mc["iss"] != "a" || mc["ISS"] != "b" {
		t.Errorf(`{"iss":"a","ISS":"b"}: struct %q, map %v; want b, and a and b apart`, rc.Issuer, mc)
	}
	rc, mc = parse(`{"ISS":"b","iss":"a"}`)
	if rc.Issuer != "a" || mc["iss"] != "a" {
		t.Errorf(`{"ISS":"b","iss":"a"}: struct %q, map %v; want a (the last)`, rc.Issuer, mc)
	}
	rc, mc = parse(`{"iss":"a","iss":"b"}`)
	if rc.Issuer != "b" || mc["iss"] != "b" {
		t.Errorf(`{"iss":"a","iss":"b"}: struct %q, map %v; want b for both`, rc.Issuer, mc)
	}
	rc, mc = parse(`{"ISS":"b"}`)
	if rc.Issuer != "b" || mc["iss"] != nil {
		t.Errorf(`{"ISS":"b"}: struct %q, map %v; want b, and no iss in the map`, rc.Issuer, mc)
	}
	rc, _ = parse(`{"ſub":"x"}`)
	if rc.Subject != "x" {
		t.Errorf(`{"ſub":"x"}: struct subject %q, want x`, rc.Subject)
	}
	rc, mc = parse(`{"exp":1,"Exp":4102444800}`)
	if rc.ExpiresAt == nil || rc.ExpiresAt.Unix() != 4102444800 || mc["exp"] != float64(1) {
		t.Errorf(`{"exp":1,"Exp":4102444800}: struct %v, map %v; want 4102444800 and 1`, rc.ExpiresAt, mc["exp"])
	}
}

// TestAmbiguousClaimNamesRefused: a token whose claims name a member twice
// (exactly, or in spellings that differ only in case), or name a registered
// claim in another case, is refused with ErrClaims and ErrDuplicateClaim,
// whatever the claims type; other tokens are not affected.
func TestAmbiguousClaimNamesRefused(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	v := e.verifier(t, "jwt")
	key := []byte(hmacA)
	now := e.clk.Now().Unix()
	exp := fmt.Sprint(now + 3600)
	past := fmt.Sprint(now - 3600)

	refused := map[string]string{
		"case-variant duplicate":       `{"iss":"a","ISS":"b","exp":` + exp + `}`,
		"case-variant duplicate, last": `{"ISS":"b","iss":"a","exp":` + exp + `}`,
		"exact duplicate":              `{"iss":"a","iss":"b","exp":` + exp + `}`,
		"expiry stretched":             `{"exp":` + past + `,"Exp":` + exp + `}`,
		"lone case variant":            `{"ISS":"b","exp":` + exp + `}`,
		"lone mixed case":              `{"Aud":"mcp","exp":` + exp + `}`,
		"Unicode fold":                 `{"ſub":"x","exp":` + exp + `}`,
		"escaped duplicate":            `{"\u0069ss":"a","iss":"b","exp":` + exp + `}`,
		"escaped exp duplicate":        `{"exp":` + exp + `,"\u0065xp":` + past + `}`,
		"custom case-variant":          `{"role":"user","ROLE":"admin","exp":` + exp + `}`,
		"custom exact duplicate":       `{"role":"user","role":"admin","exp":` + exp + `}`,
		"non-ASCII case-variant":       `{"rôle":"user","RÔLE":"admin","exp":` + exp + `}`,
	}
	// Many members: the duplicate is found however many there are.
	var b strings.Builder
	b.WriteString(`{"exp":` + exp)
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, `,"c%d":%d`, i, i)
	}
	refused["many members"] = b.String() + `,"C150":0}`
	for name, claims := range refused {
		t.Run(name, func(t *testing.T) {
			tok := signRaw(t, key, claims)
			for _, c := range []jwt.Claims{&jwt.RegisteredClaims{}, jwt.MapClaims{}} {
				_, err := v.VerifyClaims(ctx, tok, c)
				wantReason(t, err, jwtkeys.ReasonClaims)
				if !errors.Is(err, jwtkeys.ErrDuplicateClaim) {
					t.Fatalf("%T: err = %v, want ErrDuplicateClaim", c, err)
				}
				if strings.Contains(err.Error(), "role") || strings.Contains(err.Error(), "ISS") {
					t.Fatalf("the error quotes the token: %v", err)
				}
			}
		})
	}

	accepted := map[string]string{
		"plain":                `{"iss":"a","sub":"s","aud":["mcp"],"exp":` + exp + `,"jti":"j"}`,
		"private claims":       `{"exp":` + exp + `,"role":"user","roles":["a"],"Role2":"x","scope":"a b"}`,
		"nested duplicates":    `{"exp":` + exp + `,"ctx":{"a":1,"A":2,"a":3},"list":[{"x":1,"x":2}]}`,
		"names in values":      `{"exp":` + exp + `,"note":"\"iss\":\"ISS\"","iss":"a"}`,
		"escapes and spaces":   " {\n \"exp\" : " + exp + " , \"s\\\"q\" : \"\\\\\" , \"\\u00e9\" : null } ",
		"empty name":           `{"exp":` + exp + `,"":1}`,
		"registered-like name": `{"exp":` + exp + `,"issuer":"a","sub_id":"b","EXPIRES":1}`,
	}
	for name, claims := range accepted {
		t.Run(name, func(t *testing.T) {
			tok := signRaw(t, key, claims)
			for _, c := range []jwt.Claims{&jwt.RegisteredClaims{}, jwt.MapClaims{}} {
				if _, err := v.VerifyClaims(ctx, tok, c); err != nil {
					t.Fatalf("%T: %v", c, err)
				}
			}
		})
	}

	// The check comes after the signature: a forged token with duplicate
	// names is refused for its signature, and counts as such.
	_, err := v.Verify(ctx, signRaw(t, []byte(hmacB), refused["exact duplicate"]))
	wantReason(t, err, jwtkeys.ReasonSignature)
}

// TestClaimsNotAnObject: claims that are valid JSON but not an object, which
// golang-jwt decodes into a struct without complaint, are malformed.
func TestClaimsNotAnObject(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	v := e.verifier(t, "jwt", jwtkeys.WithExpirationOptional())
	for _, claims := range []string{`null`, ` null `} {
		_, err := v.Verify(ctx, signRaw(t, []byte(hmacA), claims))
		wantReason(t, err, jwtkeys.ReasonMalformed)
	}
	if _, err := v.Verify(ctx, signRaw(t, []byte(hmacA), `{}`)); err != nil {
		t.Fatalf("empty claims with exp optional: %v", err)
	}
}

// FuzzMemberNames checks the claims check's scanner against encoding/json:
// for every JSON object, it reads the same top-level member names, in order;
// on any input it does not panic. It also checks that the folded names used
// for many members agree with bytes.EqualFold.
func FuzzMemberNames(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, ` { "a" : [1, {"b":2}] , "c" : "x\"y" } `,
		`{"\u0069ss":"a","iss":"b"}`, `{"ſub":1,"K":2,"k":3}`, `{"a":{"b":{"c":[[]]}},"d":null,"e":true,"f":-1.5e3}`,
		"{\"\xff\":1}", `{"a":"\\"}`, `[1]`, `null`, `{"a"`, `{"a":}`, `{"a":1,}`,
	} {
		f.Add([]byte(s), "iss", "ISS")
	}
	f.Fuzz(func(t *testing.T, b []byte, x, y string) {
		got, ok := jwtkeys.MemberNames(b)
		if (jwtkeys.FoldName(x) == jwtkeys.FoldName(y)) != strings.EqualFold(x, y) && utf8.ValidString(x) && utf8.ValidString(y) {
			t.Fatalf("FoldName(%q) vs FoldName(%q) disagrees with EqualFold", x, y)
		}
		if !json.Valid(b) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		tok, err := dec.Token()
		if d, isDelim := tok.(json.Delim); err != nil || !isDelim || d != '{' {
			if ok {
				t.Fatalf("%q: scanned as an object", b)
			}
			return
		}
		var want []string
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, k.(string))
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatal(err)
			}
		}
		if !ok || !slices.Equal(got, want) {
			t.Fatalf("%q: names %q (ok %v), encoding/json reads %q", b, got, ok, want)
		}
	})
}
