package jwtkeys_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
)

// TestThumbprintRFC7638 checks the thumbprint against RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	cur, _, _, _, err := jwtkeys.ParseForTest([]byte(`{"kty":"RSA","n":"` + n + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`))
	if err != nil {
		t.Fatal(err)
	}
	k := cur[0]
	if k.Thumb != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" || k.KID != "2011-04-29" || !slices.Equal(k.Algs, []string{"RS256"}) || k.Private {
		t.Fatalf("key = %+v", k)
	}
}

// TestThumbprintRFC8037 checks an OKP thumbprint against RFC 8037 §A.3.
func TestThumbprintRFC8037(t *testing.T) {
	cur, _, _, _, err := jwtkeys.ParseForTest([]byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cur[0].Thumb; got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Fatalf("thumbprint = %s", got)
	}
}

// TestDetect covers the detection rules and the declared formats.
func TestDetect(t *testing.T) {
	raw32 := bytes.Repeat([]byte{0xff, 0x00, 0x0a, 0x20}, 8) // binary, ends in a space
	b64 := base64.StdEncoding.EncodeToString(raw32)
	b64url := base64.RawURLEncoding.EncodeToString(raw32)
	hex64 := strings.Repeat("0123456789abcdef", 4)

	rsaPriv := privateKey(t, "rsa1.key.pem").(*rsa.PrivateKey)
	ecPriv := privateKey(t, "ec256a.key.pem").(*ecdsa.PrivateKey)
	edPriv := privateKey(t, "ed1.key.pem").(ed25519.PrivateKey)
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	pkcs1 := pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaPriv))
	pkcs1pub := pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaPriv.PublicKey))
	sec1der, err := x509.MarshalECPrivateKey(ecPriv)
	if err != nil {
		t.Fatal(err)
	}
	sec1 := "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + pemOf("EC PRIVATE KEY", sec1der)
	encrypted := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1, 2, 3}}))

	type want struct {
		kinds    []string // kinds of the current keys
		prev     []string // kinds of the previous keys
		algs     []string // algorithms of the first key
		priv     bool     // first key can sign
		secret   []byte   // HMAC: the key bytes
		kid      string   // first key's JWK kid
		combined bool
		prevErr  bool
		err      string // a fragment of the error; "" for none
	}
	hmac := func(secret []byte, algs ...string) want {
		if algs == nil {
			algs = []string{"HS256"}
		}
		return want{kinds: []string{"HMAC"}, algs: algs, priv: true, secret: secret}
	}
	cases := []struct {
		name   string
		value  string
		format jwtkeys.Format
		opts   []jwtkeys.Option
		want   want
	}{
		// HMAC, raw.
		{"raw text", hmacA, 0, nil, hmac([]byte(hmacA))},
		{"raw text, newline trimmed", hmacA + "\n", 0, nil, hmac([]byte(hmacA))},
		{"raw text, spaces trimmed", " \t" + hmacA + " \r\n", 0, nil, hmac([]byte(hmacA))},
		{"raw binary, kept byte for byte", string(raw32), 0, nil, hmac(raw32)},
		{"hex text is raw, not decoded", hex64, 0, nil, hmac([]byte(hex64), "HS256", "HS384", "HS512")},
		{"base64-looking text is raw", b64, 0, nil, hmac([]byte(b64))},
		{"48 bytes", strings.Repeat("x", 48), 0, nil, hmac([]byte(strings.Repeat("x", 48)), "HS256", "HS384")},
		{"too short", hmacShort, 0, nil, want{err: "shorter than 32 bytes"}},
		{"31 bytes", hmacA[:31], 0, nil, want{err: "shorter than 32 bytes"}},
		{"empty", "", 0, nil, want{err: "empty"}},
		{"blank", " \n\t ", 0, nil, want{err: "empty"}},
		// HMAC, base64.
		{"base64: prefix", "base64:" + b64, 0, nil, hmac(raw32)},
		{"base64: prefix, URL alphabet", "base64:" + b64url, 0, nil, hmac(raw32)},
		{"base64: prefix, short", "base64:" + base64.StdEncoding.EncodeToString([]byte("short")), 0, nil, want{err: "shorter than 32 bytes"}},
		{"base64: prefix, invalid", "base64:!!!!", 0, nil, want{err: "not valid base64"}},
		{"declared base64, wrapped lines", b64[:20] + "\n" + b64[20:] + "\n", jwtkeys.FormatHMACBase64, nil, hmac(raw32)},
		{"declared base64, not base64", "not base64 at all, no no no no no", jwtkeys.FormatHMACBase64, nil, want{err: "not valid base64"}},
		{"declared raw keeps the newline", hmacA + "\n", jwtkeys.FormatHMAC, nil, hmac([]byte(hmacA + "\n"))},
		{"declared raw keeps a prefix", "base64:" + b64, jwtkeys.FormatHMAC, nil, hmac([]byte("base64:"+b64), "HS256", "HS384")},
		{"declared raw takes JSON as bytes", `{"current":"` + hmacA + `"}`, jwtkeys.FormatHMAC, nil, hmac([]byte(`{"current":"` + hmacA + `"}`))},
		// PEM.
		{"PKCS #8 RSA", testKey(t, "rsa1.key.pem"), 0, nil, want{kinds: []string{"RSA"}, algs: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, priv: true}},
		{"PKIX RSA", testKey(t, "rsa1.pub.pem"), 0, nil, want{kinds: []string{"RSA"}, algs: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}}},
		{"PKCS #1 RSA private", pkcs1, 0, nil, want{kinds: []string{"RSA"}, algs: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, priv: true}},
		{"PKCS #1 RSA public", pkcs1pub, jwtkeys.FormatPEM, nil, want{kinds: []string{"RSA"}, algs: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}}},
		{"SEC 1 EC with parameters", sec1, 0, nil, want{kinds: []string{"EC"}, algs: []string{"ES256"}, priv: true}},
		{"PKCS #8 P-384", testKey(t, "ec384.key.pem"), 0, nil, want{kinds: []string{"EC"}, algs: []string{"ES384"}, priv: true}},
		{"PKIX P-521", testKey(t, "ec521.pub.pem"), 0, nil, want{kinds: []string{"EC"}, algs: []string{"ES512"}}},
		{"PKCS #8 Ed25519", testKey(t, "ed1.key.pem"), 0, nil, want{kinds: []string{"Ed25519"}, algs: []string{"EdDSA"}, priv: true}},
		{"PKIX Ed25519", testKey(t, "ed1.pub.pem"), 0, nil, want{kinds: []string{"Ed25519"}, algs: []string{"EdDSA"}}},
		{"PEM bundle", testKey(t, "rsa1.pub.pem") + testKey(t, "ec256a.pub.pem"), 0, nil, want{kinds: []string{"RSA", "EC"}, algs: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}}},
		{"PEM, text after", testKey(t, "rsa1.pub.pem") + "trailing", 0, nil, want{err: "outside its blocks"}},
		{"PEM, malformed", "-----BEGIN PUBLIC KEY-----\nAAAA\n", 0, nil, want{err: "malformed"}},
		{"PEM, bad DER", pemOf("PUBLIC KEY", []byte{1, 2, 3}), 0, nil, want{err: "not a valid PKIX"}},
		{"PEM, encrypted", encrypted, 0, nil, want{err: "encrypted"}},
		{"PEM, certificate", pemOf("CERTIFICATE", []byte{1, 2, 3}), 0, nil, want{err: "unsupported PEM block"}},
		{"PEM, RSA 1024", testKey(t, "rsa1024.pub.pem"), 0, nil, want{err: "shorter than 2048 bits"}},
		{"declared PEM, HMAC text", hmacA, jwtkeys.FormatPEM, nil, want{err: "outside its blocks"}},
		{"declared PEM, JSON", mustJSON(t, jwkOf(t, []byte(hmacA), nil)), jwtkeys.FormatPEM, nil, want{err: "not of the declared format pem"}},
		// JWK.
		{"JWK oct", mustJSON(t, jwkOf(t, []byte(hmacA), map[string]any{"kid": "k1"})), 0, nil, want{kinds: []string{"HMAC"}, algs: []string{"HS256"}, priv: true, secret: []byte(hmacA), kid: "k1"}},
		{"JWK oct, short", mustJSON(t, jwkOf(t, []byte(hmacShort), nil)), 0, nil, want{err: "shorter than 32 bytes"}},
		{"JWK RSA public", mustJSON(t, jwkOf(t, &rsaPriv.PublicKey, map[string]any{"kid": "r"})), 0, nil, want{kinds: []string{"RSA"}, algs: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, kid: "r"}},
		{"JWK RSA private", mustJSON(t, jwkOf(t, rsaPriv, nil)), 0, nil, want{kinds: []string{"RSA"}, algs: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, priv: true}},
		{"JWK RSA private, alg PS256", mustJSON(t, jwkOf(t, rsaPriv, map[string]any{"alg": "PS256"})), 0, nil, want{kinds: []string{"RSA"}, algs: []string{"PS256"}, priv: true}},
		{"JWK RSA with alg HS256", mustJSON(t, jwkOf(t, &rsaPriv.PublicKey, map[string]any{"alg": "HS256"})), 0, nil, want{err: "alg does not suit"}},
		{"JWK RSA private without primes", mustJSON(t, jwkOf(t, rsaPriv, map[string]any{"p": "", "q": ""})), 0, nil, want{err: "without p and q"}},
		{"JWK RSA private, wrong d", mustJSON(t, jwkOf(t, rsaPriv, map[string]any{"d": "AQAB"})), 0, nil, want{err: "inconsistent"}},
		{"JWK RSA, even exponent", mustJSON(t, jwkOf(t, &rsaPriv.PublicKey, map[string]any{"e": "AAI"})), 0, nil, want{err: "exponent"}},
		{"JWK EC private", mustJSON(t, jwkOf(t, ecPriv, nil)), 0, nil, want{kinds: []string{"EC"}, algs: []string{"ES256"}, priv: true}},
		{"JWK EC, point off the curve", mustJSON(t, jwkOf(t, &ecPriv.PublicKey, map[string]any{"y": jwkOf(t, &ecPriv.PublicKey, nil)["x"]})), 0, nil, want{err: "not on its curve"}},
		{"JWK EC, d of another key", mustJSON(t, jwkOf(t, ecPriv, map[string]any{"d": jwkOf(t, privateKey(t, "ec256b.key.pem"), nil)["d"]})), 0, nil, want{err: "inconsistent"}},
		{"JWK EC, unknown curve", mustJSON(t, jwkOf(t, &ecPriv.PublicKey, map[string]any{"crv": "P-224"})), 0, nil, want{err: "unsupported EC curve"}},
		{"JWK OKP private", mustJSON(t, jwkOf(t, edPriv, map[string]any{"kid": "ed"})), 0, nil, want{kinds: []string{"Ed25519"}, algs: []string{"EdDSA"}, priv: true, kid: "ed"}},
		{"JWK OKP X25519", mustJSON(t, jwkOf(t, edPriv.Public(), map[string]any{"crv": "X25519"})), 0, nil, want{err: "unsupported OKP curve"}},
		{"JWK for encryption", mustJSON(t, jwkOf(t, &rsaPriv.PublicKey, map[string]any{"use": "enc"})), 0, nil, want{err: "not a signature key"}},
		{"JWK for encryption by key_ops", mustJSON(t, jwkOf(t, &rsaPriv.PublicKey, map[string]any{"key_ops": []string{"encrypt"}})), 0, nil, want{err: "not a signature key"}},
		{"JWK verify-only private key", mustJSON(t, jwkOf(t, ecPriv, map[string]any{"key_ops": []string{"verify"}})), 0, nil, want{kinds: []string{"EC"}, algs: []string{"ES256"}}},
		{"JWK unknown kty", `{"kty":"XYZ"}`, 0, nil, want{err: "unsupported JWK key type"}},
		{"JWK kid of the wrong type", `{"kty":"oct","k":"` + base64.RawURLEncoding.EncodeToString([]byte(hmacA)) + `","kid":7}`, 0, nil, want{err: "wrong JSON type"}},
		{"declared JWK, PEM", testKey(t, "rsa1.pub.pem"), jwtkeys.FormatJWK, nil, want{err: "not a valid JSON object"}},
		// JWK Set.
		{"JWKS skips what is not for signatures", mustJSON(t, map[string]any{"keys": []any{
			jwkOf(t, &rsaPriv.PublicKey, map[string]any{"use": "enc", "kid": "enc"}),
			map[string]any{"kty": "XYZ", "kid": "future"},
			jwkOf(t, edPriv.Public(), map[string]any{"crv": "X448"}),
			jwkOf(t, &ecPriv.PublicKey, map[string]any{"use": "sig", "kid": "sig"}),
		}}), 0, nil, want{kinds: []string{"EC"}, algs: []string{"ES256"}, kid: "sig"}},
		{"JWKS of several keys", mustJSON(t, map[string]any{"keys": []any{
			jwkOf(t, rsaPriv, map[string]any{"kid": "a"}), jwkOf(t, ecPriv, map[string]any{"kid": "b"}),
		}}), 0, nil, want{kinds: []string{"RSA", "EC"}, algs: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, priv: true, kid: "a"}},
		{"JWKS with nothing usable", mustJSON(t, map[string]any{"keys": []any{map[string]any{"kty": "XYZ"}}}), 0, nil, want{err: "no usable signature key"}},
		{"JWKS empty", `{"keys":[]}`, 0, nil, want{err: "no usable signature key"}},
		{"JWKS with a weak key", mustJSON(t, map[string]any{"keys": []any{jwkOf(t, []byte(hmacShort), nil), jwkOf(t, []byte(hmacA), nil)}}), 0, nil, want{err: "shorter than 32 bytes"}},
		{"JWKS keys not an array", `{"keys":{}}`, 0, nil, want{err: "not an array"}},
		{"JWKS of 65 keys", mustJSON(t, map[string]any{"keys": slices.Repeat([]any{jwkOf(t, []byte(hmacA), nil)}, 65)}), 0, nil, want{err: "more than 64"}},
		// WithAlgorithms.
		{"narrowed and ordered", testKey(t, "rsa1.pub.pem"), 0, []jwtkeys.Option{jwtkeys.WithAlgorithms("PS256", "ES256", "RS256")}, want{kinds: []string{"RSA"}, algs: []string{"PS256", "RS256"}}},
		{"narrowed to nothing", testKey(t, "ec256a.pub.pem"), 0, []jwtkeys.Option{jwtkeys.WithAlgorithms("RS256")}, want{err: "no algorithm allowed"}},
		{"JWKS narrowed", mustJSON(t, map[string]any{"keys": []any{jwkOf(t, &rsaPriv.PublicKey, nil), jwkOf(t, &ecPriv.PublicKey, nil)}}), 0, []jwtkeys.Option{jwtkeys.WithAlgorithms("ES256")}, want{kinds: []string{"EC"}, algs: []string{"ES256"}}},
		// Pairs.
		{"pair of HMAC keys", mustJSON(t, map[string]any{"current": hmacB, "previous": hmacA}), 0, nil, want{kinds: []string{"HMAC"}, prev: []string{"HMAC"}, algs: []string{"HS256"}, priv: true, secret: []byte(hmacB), combined: true}},
		{"pair of JWKs", mustJSON(t, map[string]any{"current": jwkOf(t, edPriv, nil), "previous": jwkOf(t, &ecPriv.PublicKey, nil)}), 0, nil, want{kinds: []string{"Ed25519"}, prev: []string{"EC"}, algs: []string{"EdDSA"}, priv: true, combined: true}},
		{"pair of PEM and JWKS", mustJSON(t, map[string]any{"current": testKey(t, "rsa2.key.pem"), "previous": map[string]any{"keys": []any{jwkOf(t, &rsaPriv.PublicKey, nil)}}}), 0, nil, want{kinds: []string{"RSA"}, prev: []string{"RSA"}, algs: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, priv: true, combined: true}},
		{"pair without previous", mustJSON(t, map[string]any{"current": hmacB}), 0, nil, want{kinds: []string{"HMAC"}, algs: []string{"HS256"}, priv: true, secret: []byte(hmacB), combined: true}},
		{"pair with null previous", `{"current":"` + hmacB + `","previous":null}`, 0, nil, want{kinds: []string{"HMAC"}, algs: []string{"HS256"}, priv: true, secret: []byte(hmacB), combined: true}},
		{"pair with empty previous", `{"current":"` + hmacB + `","previous":""}`, 0, nil, want{kinds: []string{"HMAC"}, algs: []string{"HS256"}, priv: true, secret: []byte(hmacB), combined: true}},
		{"pair with weak previous", mustJSON(t, map[string]any{"current": hmacB, "previous": hmacShort}), 0, nil, want{kinds: []string{"HMAC"}, algs: []string{"HS256"}, priv: true, secret: []byte(hmacB), combined: true, prevErr: true}},
		{"pair, declared base64", mustJSON(t, map[string]any{"current": b64, "previous": b64url}), jwtkeys.FormatHMACBase64, nil, want{kinds: []string{"HMAC"}, prev: []string{"HMAC"}, algs: []string{"HS256"}, priv: true, secret: raw32, combined: true}},
		{"pair with empty current", `{"current":"","previous":"` + hmacA + `"}`, 0, nil, want{err: "current key is empty"}},
		{"pair with weak current", mustJSON(t, map[string]any{"current": hmacShort}), 0, nil, want{err: "in current: HMAC key is shorter"}},
		{"pair with a number", `{"current":5}`, 0, nil, want{err: "neither a string nor a JWK"}},
		{"pair with bad rotated_at", mustJSON(t, map[string]any{"current": hmacB, "rotated_at": "yesterday"}), 0, nil, want{err: "RFC 3339"}},
		// Other JSON.
		{"JSON that is no key", `{"password":"hunter2"}`, 0, nil, want{err: "not a JWK, a JWK Set or a current/previous pair"}},
		{"broken JSON", `{"kty":`, 0, nil, want{err: "not a JSON object"}},
		{"oversized", strings.Repeat("k", jwtkeys.MaxKeyMaterialSize+1), 0, nil, want{err: "larger than"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]jwtkeys.Option{jwtkeys.WithKeyFormat(tc.format)}, tc.opts...)
			cur, prev, combined, prevErr, err := jwtkeys.ParseForTest([]byte(tc.value), opts...)
			w := tc.want
			if w.err != "" {
				if err == nil {
					t.Fatalf("no error, want %q", w.err)
				}
				if !errors.Is(err, jwtkeys.ErrInvalidKey) || !strings.Contains(err.Error(), w.err) {
					t.Fatalf("err = %v, want ErrInvalidKey with %q", err, w.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kinds, pkinds []string
			for _, k := range cur {
				kinds = append(kinds, k.Kind)
			}
			for _, k := range prev {
				pkinds = append(pkinds, k.Kind)
				if !k.Previous {
					t.Errorf("previous key not marked")
				}
			}
			if !slices.Equal(kinds, w.kinds) || !slices.Equal(pkinds, w.prev) {
				t.Fatalf("kinds = %v / %v, want %v / %v", kinds, pkinds, w.kinds, w.prev)
			}
			k := cur[0]
			if !slices.Equal(k.Algs, w.algs) || k.Private != w.priv || k.KID != w.kid || combined != w.combined || (prevErr != nil) != w.prevErr {
				t.Fatalf("key = %+v, combined %v, prevErr %v; want %+v", k, combined, prevErr, w)
			}
			if w.secret != nil && !bytes.Equal(k.Secret, w.secret) {
				t.Fatalf("secret = %q, want %q", k.Secret, w.secret)
			}
		})
	}
}

// TestOptionErrors: invalid options are refused by the constructors.
func TestOptionErrors(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	for _, o := range []jwtkeys.Option{
		jwtkeys.WithGracePeriod(-1),
		jwtkeys.WithClock(nil),
		jwtkeys.WithAlgorithms(),
		jwtkeys.WithAlgorithms("none"),
		jwtkeys.WithAlgorithms("HS256", "XS1"),
		jwtkeys.WithIssuer(""),
		jwtkeys.WithAudience(),
		jwtkeys.WithAudience(""),
		jwtkeys.WithLeeway(-1),
		jwtkeys.WithLeeway(jwtkeys.MaxLeeway + 1),
		jwtkeys.WithMaxTokenSize(1),
		jwtkeys.WithKeyFormat(99),
		nil,
	} {
		if _, err := jwtkeys.NewVerifier(e.store, "jwt", o); err == nil {
			t.Errorf("NewVerifier accepted an invalid option")
		}
		if _, err := jwtkeys.NewSigner(e.store, "jwt", o); err == nil {
			t.Errorf("NewSigner accepted an invalid option")
		}
		if err := jwtkeys.KeyValidator(o)(ctx, "jwt", secrets.Versions{Current: secrets.NewSecretString("jwt", "1", hmacA)}); err == nil {
			t.Errorf("KeyValidator accepted an invalid option")
		}
	}
	if _, err := jwtkeys.NewVerifier(nil, "jwt"); err == nil {
		t.Error("nil store accepted")
	}
	if _, err := jwtkeys.NewVerifier(e.store, ""); err == nil {
		t.Error("empty key accepted")
	}
	if _, err := jwtkeys.NewSigner(nil, "jwt"); err == nil {
		t.Error("nil store accepted")
	}
	if _, err := jwtkeys.NewSigner(e.store, ""); err == nil {
		t.Error("empty key accepted")
	}
}

// TestKeysParsedOncePerVersion: verifications reuse the parsed keys, and so
// does a refresh that finds the same values; a rotation parses again.
func TestKeysParsedOncePerVersion(t *testing.T) {
	e := newEnv(t, "jwt", testKey(t, "ec256a.pub.pem"))
	v := e.verifier(t, "jwt")
	if err := v.Load(ctx); err != nil {
		t.Fatal(err)
	}
	first := v.CachedKeys()
	tok := signWith(t, jwtES256, privateKey(t, "ec256a.key.pem"), nil, claimsAt(e.clk.Now()))
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.Refresh(ctx, "jwt"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first, v.CachedKeys()) {
		t.Fatal("keys parsed again without a change")
	}
	e.rotate(t, "jwt", testKey(t, "ec256b.pub.pem"))
	if err := v.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(first[:1], v.CachedKeys()[:1]) {
		t.Fatal("rotation did not parse the new key")
	}
}

// rsaWithExponent returns rsa1's key with public exponent e, and the private
// key for it when e is invertible modulo λ(n) (nil otherwise).
func rsaWithExponent(t testing.TB, e *big.Int) (*rsa.PublicKey, *rsa.PrivateKey) {
	t.Helper()
	base := privateKey(t, "rsa1.key.pem").(*rsa.PrivateKey)
	if !e.IsInt64() {
		return nil, nil
	}
	pub := &rsa.PublicKey{N: base.N, E: int(e.Int64())}
	one := big.NewInt(1)
	p1 := new(big.Int).Sub(base.Primes[0], one)
	q1 := new(big.Int).Sub(base.Primes[1], one)
	lambda := new(big.Int).Div(new(big.Int).Mul(p1, q1), new(big.Int).GCD(nil, nil, p1, q1))
	d := new(big.Int).ModInverse(e, lambda)
	if d == nil {
		return pub, nil
	}
	priv := &rsa.PrivateKey{PublicKey: *pub, D: d, Primes: base.Primes}
	priv.Precompute()
	return pub, priv
}

// TestRSAExponentLimit: crypto/rsa verifies with public exponents up to
// 2³¹−1 only. A key with a larger one is refused when loaded, in every
// encoding, so that KeyValidator rejects a rotation to it; the largest
// exponent crypto/rsa takes loads and verifies.
func TestRSAExponentLimit(t *testing.T) {
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	pkix := func(pub *rsa.PublicKey) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("PUBLIC KEY", der)
	}
	enc := base64.RawURLEncoding.EncodeToString
	jwkE := func(pub *rsa.PublicKey, e []byte) string {
		return mustJSON(t, map[string]any{"kty": "RSA", "n": enc(pub.N.Bytes()), "e": enc(e)})
	}

	// The largest exponent crypto/rsa accepts: loads, and verifies.
	maxE := big.NewInt(1<<31 - 1)
	pub, priv := rsaWithExponent(t, maxE)
	if priv == nil {
		t.Fatal("2³¹−1 is not invertible for the test key")
	}
	e := newEnv(t, "jwt", pkix(pub))
	v := e.verifier(t, "jwt")
	tok := signWith(t, jwt.SigningMethodRS256, priv, nil, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("exponent 2³¹−1: %v", err)
	}

	// Larger ones, in each encoding.
	big31, _ := rsaWithExponent(t, big.NewInt(1<<31+1))
	big33, _ := rsaWithExponent(t, big.NewInt(1<<32+1))
	e65 := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(1))
	n := big31.N
	// A PKCS #1 public key with a 65-bit exponent, which no Go type holds.
	der65, err := asn1.Marshal(struct{ N, E *big.Int }{n, e65})
	if err != nil {
		t.Fatal(err)
	}
	kv := jwtkeys.KeyValidator()
	for _, tc := range []struct{ name, value string }{
		{"PKIX, 2³¹+1", pkix(big31)},
		{"PKCS #1, 2³¹+1", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(big31))},
		{"PKIX, 2³²+1", pkix(big33)},
		{"PKCS #1, 2⁶⁴+1", pemOf("RSA PUBLIC KEY", der65)},
		{"JWK, 2³¹+1", jwkE(big31, big.NewInt(1<<31+1).Bytes())},
		{"JWK, 2³²+1", jwkE(big31, big.NewInt(1<<32+1).Bytes())},
		{"JWK, 2⁶⁴+1", jwkE(big31, e65.Bytes())},
		{"JWK Set, 2³¹+1", `{"keys":[` + jwkE(big31, big.NewInt(1<<31+1).Bytes()) + `]}`},
		{"pair, 2³¹+1", mustJSON(t, map[string]any{"current": pkix(big31)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := kv(ctx, "jwt", secrets.Versions{Current: secrets.NewSecretString("jwt", "9", tc.value)})
			if !errors.Is(err, jwtkeys.ErrInvalidKey) {
				t.Fatalf("KeyValidator = %v, want ErrInvalidKey", err)
			}
			if _, _, _, _, err := jwtkeys.ParseForTest([]byte(tc.value)); !errors.Is(err, jwtkeys.ErrInvalidKey) {
				t.Fatalf("parse = %v, want ErrInvalidKey", err)
			}
			e := newEnv(t, "jwt", tc.value)
			err = e.verifier(t, "jwt").Load(ctx)
			if !errors.Is(err, jwtkeys.ErrInvalidKey) || !errors.Is(err, jwtkeys.ErrKeyUnavailable) {
				t.Fatalf("Verifier.Load = %v, want ErrKeyUnavailable with ErrInvalidKey", err)
			}
		})
	}
}

// TestRotationToLargeExponentRejected: through a Store with KeyValidator, a
// rotation to an RSA key with an exponent over 2³¹−1 is rejected, and the
// working key keeps verifying.
func TestRotationToLargeExponentRejected(t *testing.T) {
	big31, _ := rsaWithExponent(t, big.NewInt(1<<31+1))
	der, err := x509.MarshalPKIXPublicKey(big31)
	if err != nil {
		t.Fatal(err)
	}
	bad := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

	e := newEnv(t, "unused")
	e.src.Set("jwt", testKey(t, "rsa1.pub.pem"))
	st, err := newStoreWith(t, e, jwtkeys.KeyValidator(), "jwt")
	if err != nil {
		t.Fatal(err)
	}
	v, err := jwtkeys.NewVerifier(st, "jwt", jwtkeys.WithClock(e.clk))
	if err != nil {
		t.Fatal(err)
	}
	tok := signWith(t, jwt.SigningMethodRS256, privateKey(t, "rsa1.key.pem"), nil, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	e.src.Set("jwt", bad)
	if err := st.Refresh(ctx, "jwt"); !errors.Is(err, jwtkeys.ErrInvalidKey) {
		t.Fatalf("Refresh = %v, want a rejection wrapping ErrInvalidKey", err)
	}
	if vs, err := st.Versions(ctx, "jwt"); err != nil || vs.Current.Version() != "1" {
		t.Fatalf("the Store serves version %q (%v), want the working 1", vs.Current.Version(), err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("after the rejected rotation: %v", err)
	}
	if st := v.Stats(); st.CurrentVersion != "1" || st.KeyError != nil {
		t.Fatalf("stats = %+v", st)
	}
}
