package jwtkeys_test

import (
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
)

// TestAttacks checks that every known way of forging or stretching a token
// is refused, each with the right typed error.
func TestAttacks(t *testing.T) {
	// An HMAC secret rotated once: version 1 (A) is previous, 2 (B) current.
	e := newEnv(t, "jwt", hmacA, hmacB)
	opts := []jwtkeys.Option{
		jwtkeys.WithGracePeriod(10 * time.Minute),
		jwtkeys.WithIssuer("https://issuer.example"),
		jwtkeys.WithAudience("mcp"),
		jwtkeys.WithLeeway(5 * time.Second),
	}
	v := e.verifier(t, "jwt", opts...)
	now := e.clk.Now()
	good := claimsAt(now)
	cur := []byte(hmacB)
	kid2 := map[string]any{"kid": "2"}
	hs := func(key []byte, header map[string]any, c jwt.Claims) string {
		return signWith(t, jwt.SigningMethodHS256, key, header, c)
	}
	with := func(f func(c *jwt.RegisteredClaims)) *jwt.RegisteredClaims {
		c := *claimsAt(now)
		f(&c)
		return &c
	}
	if _, err := v.Verify(ctx, hs(cur, kid2, good)); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	goodTok := hs(cur, kid2, good)
	parts := strings.Split(goodTok, ".")

	// An RSA verifier, for algorithm confusion.
	re := newEnv(t, "rsa", testKey(t, "rsa1.pub.pem"))
	rv := re.verifier(t, "rsa")
	rsaPub := testKey(t, "rsa1.pub.pem")
	rsaPriv := privateKey(t, "rsa1.key.pem").(*rsa.PrivateKey)
	if _, err := rv.Verify(ctx, signWith(t, jwt.SigningMethodRS256, rsaPriv, map[string]any{"kid": "1"}, claimsAt(re.clk.Now()))); err != nil {
		t.Fatalf("RSA control token refused: %v", err)
	}

	none := func(header map[string]any) string {
		h := map[string]any{"typ": "JWT"}
		for k, v := range header {
			h[k] = v
		}
		return rawToken(t, h, good, nil)
	}

	cases := []struct {
		name   string
		v      *jwtkeys.Verifier
		token  string
		reason jwtkeys.Reason
	}{
		{"alg none", v, signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, good), jwtkeys.ReasonAlgorithm},
		{"alg none with kid", v, signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid2, good), jwtkeys.ReasonAlgorithm},
		{"alg None", v, none(map[string]any{"alg": "None"}), jwtkeys.ReasonAlgorithm},
		{"alg NONE", v, none(map[string]any{"alg": "NONE"}), jwtkeys.ReasonAlgorithm},
		{"alg missing", v, none(nil), jwtkeys.ReasonAlgorithm},
		{"alg not a string", v, none(map[string]any{"alg": 256}), jwtkeys.ReasonAlgorithm},
		{"alg unknown", v, none(map[string]any{"alg": "HS1024"}), jwtkeys.ReasonAlgorithm},
		{"HS256 with the RSA public key as secret", rv, signWith(t, jwt.SigningMethodHS256, []byte(rsaPub), nil, claimsAt(re.clk.Now())), jwtkeys.ReasonAlgorithm},
		{"HS256 with the RSA public key as secret, RSA kid", rv, signWith(t, jwt.SigningMethodHS256, []byte(rsaPub), map[string]any{"kid": "1"}, claimsAt(re.clk.Now())), jwtkeys.ReasonAlgorithm},
		{"HS256 with the RSA key's DER as secret", rv, signWith(t, jwt.SigningMethodHS256, pemBody(rsaPub), nil, claimsAt(re.clk.Now())), jwtkeys.ReasonAlgorithm},
		{"RS256 against an HMAC key", v, signWith(t, jwt.SigningMethodRS256, rsaPriv, kid2, good), jwtkeys.ReasonAlgorithm},
		{"HS512 with a 32-byte key", v, signWith(t, jwt.SigningMethodHS512, cur, kid2, good), jwtkeys.ReasonAlgorithm},
		{"empty key", v, hs([]byte{}, nil, good), jwtkeys.ReasonSignature},
		{"empty key with kid", v, hs([]byte{}, kid2, good), jwtkeys.ReasonSignature},
		{"empty signature", v, parts[0] + "." + parts[1] + ".", jwtkeys.ReasonSignature},
		{"unknown kid", v, hs(cur, map[string]any{"kid": "3"}, good), jwtkeys.ReasonUnknownKey},
		{"empty kid", v, hs(cur, map[string]any{"kid": ""}, good), jwtkeys.ReasonUnknownKey},
		{"kid path", v, hs(cur, map[string]any{"kid": "../../../../etc/passwd"}, good), jwtkeys.ReasonUnknownKey},
		{"kid absolute path", v, hs(cur, map[string]any{"kid": "/dev/null"}, good), jwtkeys.ReasonUnknownKey},
		{"kid file URL", v, hs(cur, map[string]any{"kid": "file:///proc/self/environ"}, good), jwtkeys.ReasonUnknownKey},
		{"kid SQL", v, hs(cur, map[string]any{"kid": "2' OR '1'='1"}, good), jwtkeys.ReasonUnknownKey},
		{"kid SQL union", v, hs(cur, map[string]any{"kid": "x' UNION SELECT 'secret' --"}, good), jwtkeys.ReasonUnknownKey},
		{"kid NUL", v, hs(cur, map[string]any{"kid": "2\x00"}, good), jwtkeys.ReasonUnknownKey},
		{"kid not a string", v, hs(cur, map[string]any{"kid": 2}, good), jwtkeys.ReasonMalformed},
		{"kid of the current key, signed by the previous", v, hs([]byte(hmacA), kid2, good), jwtkeys.ReasonSignature},
		{"expired", v, hs(cur, kid2, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) })), jwtkeys.ReasonExpired},
		{"exp missing", v, hs(cur, kid2, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })), jwtkeys.ReasonClaims},
		{"exp of the wrong type", v, rawToken(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": "tomorrow"}, nil), jwtkeys.ReasonMalformed},
		{"not yet valid", v, hs(cur, kid2, with(func(c *jwt.RegisteredClaims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) })), jwtkeys.ReasonNotYetValid},
		{"issued in the future", v, hs(cur, kid2, with(func(c *jwt.RegisteredClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) })), jwtkeys.ReasonNotYetValid},
		{"wrong issuer", v, hs(cur, kid2, with(func(c *jwt.RegisteredClaims) { c.Issuer = "https://evil.example" })), jwtkeys.ReasonIssuer},
		{"no issuer", v, hs(cur, kid2, with(func(c *jwt.RegisteredClaims) { c.Issuer = "" })), jwtkeys.ReasonIssuer},
		{"wrong audience", v, hs(cur, kid2, with(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} })), jwtkeys.ReasonAudience},
		{"no audience", v, hs(cur, kid2, with(func(c *jwt.RegisteredClaims) { c.Audience = nil })), jwtkeys.ReasonAudience},
		{"tampered payload", v, parts[0] + "." + tamper(t, parts[1]) + "." + parts[2], jwtkeys.ReasonSignature},
		{"tampered header", v, rawToken(t, map[string]any{"alg": "HS256", "kid": "2", "x": 1}, good, nil)[:0] + retagHeader(t, goodTok), jwtkeys.ReasonSignature},
		{"signature of another token", v, parts[0] + "." + parts[1] + "." + strings.Split(hs(cur, kid2, with(func(c *jwt.RegisteredClaims) { c.Subject = "admin" })), ".")[2], jwtkeys.ReasonSignature},
		{"non-canonical base64 signature", v, parts[0] + "." + parts[1] + "." + flipLastBits(parts[2]), jwtkeys.ReasonMalformed},
		{"padded segments", v, parts[0] + "==." + parts[1] + "." + parts[2], jwtkeys.ReasonMalformed},
		{"crit header", v, hs(cur, map[string]any{"kid": "2", "crit": []string{"exp"}}, good), jwtkeys.ReasonMalformed},
		{"b64 false with crit", v, hs(cur, map[string]any{"kid": "2", "b64": false, "crit": []string{"b64"}}, good), jwtkeys.ReasonMalformed},
		{"thousands of dots", v, strings.Repeat(".", 5000), jwtkeys.ReasonMalformed},
		{"token followed by dots", v, goodTok + strings.Repeat(".", 3000), jwtkeys.ReasonMalformed},
		{"two segments", v, parts[0] + "." + parts[1], jwtkeys.ReasonMalformed},
		{"four segments", v, goodTok + ".x", jwtkeys.ReasonMalformed},
		{"empty", v, "", jwtkeys.ReasonMalformed},
		{"JSON serialization", v, `{"payload":"` + parts[1] + `","signatures":[]}`, jwtkeys.ReasonMalformed},
		{"header not JSON", v, base64.RawURLEncoding.EncodeToString([]byte("not json")) + "." + parts[1] + "." + parts[2], jwtkeys.ReasonMalformed},
		{"header JSON null", v, base64.RawURLEncoding.EncodeToString([]byte("null")) + "." + parts[1] + "." + parts[2], jwtkeys.ReasonAlgorithm},
		{"oversized", v, strings.Repeat("A", jwtkeys.DefaultMaxTokenSize+1), jwtkeys.ReasonTooLarge},
		{"oversized with a valid prefix", v, goodTok + strings.Repeat("A", jwtkeys.DefaultMaxTokenSize), jwtkeys.ReasonTooLarge},
		{"oversized of dots", v, strings.Repeat(".", 1<<20), jwtkeys.ReasonTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tc.v.Verify(ctx, tc.token)
			if tok != nil {
				t.Errorf("token returned with the error")
			}
			wantReason(t, err, tc.reason)
		})
	}

	// The previous key after the grace period, with and without kid.
	prevKid := hs([]byte(hmacA), map[string]any{"kid": "1"}, good)
	prevNoKid := hs([]byte(hmacA), nil, good)
	for _, tok := range []string{prevKid, prevNoKid} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("previous key within grace: %v", err)
		}
	}
	e.clk.Advance(10 * time.Minute)
	goodLater := hs(cur, kid2, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, goodLater); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"previous key after grace, kid", "previous key after grace, no kid"} {
		t.Run(name, func(t *testing.T) {
			tok := prevKid
			if strings.HasSuffix(name, "no kid") {
				tok = prevNoKid
			}
			_, err := v.Verify(ctx, tok)
			wantReason(t, err, jwtkeys.ReasonKeyRetired)
		})
	}
	// A forged signature that names the retired key is a bad signature, not
	// a retired key: only real uses of the old key count as such.
	t.Run("forged token naming the retired key", func(t *testing.T) {
		_, err := v.Verify(ctx, hs([]byte("forged-0123456789abcdef0123456789"), map[string]any{"kid": "1"}, good))
		wantReason(t, err, jwtkeys.ReasonSignature)
	})

	// The counters saw every refusal, by reason.
	st := v.Stats()
	if st.Refused[jwtkeys.ReasonKeyRetired] != 2 || st.Refused[jwtkeys.ReasonTooLarge] != 3 || st.Refused[jwtkeys.ReasonAlgorithm] < 8 {
		t.Errorf("refusals = %v", st.Refused)
	}
}

// TestEmptyCurrentKey: a secret whose value is empty holds no key; golang-jwt
// would accept an empty []byte as an HMAC key, and a token signed with it. A
// value of 0 bytes the Store itself refuses (secrets.ErrInvalid); the others
// are refused as key material (ErrInvalidKey).
func TestEmptyCurrentKey(t *testing.T) {
	for _, tc := range []struct {
		val   string
		cause error
	}{
		{"", secrets.ErrInvalid},
		{"\n", jwtkeys.ErrInvalidKey},
		{`{"current":""}`, jwtkeys.ErrInvalidKey},
		{`{"current":null,"previous":"` + hmacA + `"}`, jwtkeys.ErrInvalidKey},
	} {
		e := newEnv(t, "jwt", tc.val)
		v := e.verifier(t, "jwt")
		for _, tok := range []string{
			signWith(t, jwt.SigningMethodHS256, []byte{}, nil, claimsAt(e.clk.Now())),
			signWith(t, jwt.SigningMethodHS256, []byte{}, map[string]any{"kid": "1"}, claimsAt(e.clk.Now())),
		} {
			_, err := v.Verify(ctx, tok)
			wantReason(t, err, jwtkeys.ReasonKeyUnavailable)
			if !errorsIs(err, tc.cause) {
				t.Fatalf("value %q: err = %v, want %v", tc.val, err, tc.cause)
			}
		}
	}
}

// TestErrorsMatchGolangJWT: claims errors also match golang-jwt's sentinels.
func TestErrorsMatchGolangJWT(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	v := e.verifier(t, "jwt")
	c := claimsAt(e.clk.Now())
	c.ExpiresAt = jwt.NewNumericDate(e.clk.Now().Add(-time.Hour))
	_, err := v.Verify(ctx, signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, c))
	if !errorsIs(err, jwt.ErrTokenExpired) || !errorsIs(err, jwtkeys.ErrExpired) {
		t.Fatalf("err = %v", err)
	}
}

// TestLeeway: exp within the leeway still verifies; beyond, it does not.
func TestLeeway(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	v := e.verifier(t, "jwt", jwtkeys.WithLeeway(time.Minute))
	c := claimsAt(e.clk.Now())
	c.ExpiresAt = jwt.NewNumericDate(e.clk.Now())
	tok := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, c)
	e.clk.Advance(59 * time.Second)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Second)
	_, err := v.Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonExpired)
}

// TestMaxTokenSize: the limit is configurable and exact.
func TestMaxTokenSize(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	tok := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, claimsAt(e.clk.Now()))
	v := e.verifier(t, "jwt", jwtkeys.WithMaxTokenSize(len(tok)))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	v = e.verifier(t, "jwt", jwtkeys.WithMaxTokenSize(len(tok)-1))
	_, err := v.Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonTooLarge)
}

func tamper(t testing.TB, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `"user-1"`, `"admin1"`, 1)
	if s == string(b) {
		t.Fatal("nothing to tamper with")
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// retagHeader replaces a token's header by one with the same alg and kid and
// an extra member, keeping the rest.
func retagHeader(t testing.TB, tok string) string {
	t.Helper()
	p := strings.Split(tok, ".")
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"2","typ":"JWT","x":1}`))
	return h + "." + p[1] + "." + p[2]
}

// flipLastBits changes the unused low bits of the last base64 character, so
// that a lenient decoder yields the same bytes.
func flipLastBits(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last^1])
}

// pemBody returns the DER bytes inside a PEM block.
func pemBody(p string) []byte {
	lines := strings.Split(strings.TrimSpace(p), "\n")
	b, _ := base64.StdEncoding.DecodeString(strings.Join(lines[1:len(lines)-1], ""))
	return b
}

// TestECDSASignaturesAreMalleable pins what the package documents: anyone
// holding an ES256 token can derive a second, different token string that
// verifies, by replacing the signature's s with n−s. A token's string (or
// its hash) is therefore no replay key; its jti is.
func TestECDSASignaturesAreMalleable(t *testing.T) {
	e := newEnv(t, "jwt", testKey(t, "ec256a.pub.pem"))
	v := e.verifier(t, "jwt")
	c := claimsAt(e.clk.Now())
	c.ID = "token-1"
	tok := signWith(t, jwtES256, privateKey(t, "ec256a.key.pem"), nil, c)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	dot := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature of %d bytes (%v)", len(sig), err)
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	twin := append(sig[:32:32], new(big.Int).Sub(n, s).FillBytes(make([]byte, 32))...)
	tok2 := tok[:dot+1] + base64.RawURLEncoding.EncodeToString(twin)
	if tok2 == tok {
		t.Fatal("the twin is the same token")
	}
	got, err := v.Verify(ctx, tok2)
	if err != nil {
		t.Fatalf("the twin token is refused (%v): the doc on malleability is out of date", err)
	}
	if id := got.Claims.(*jwt.RegisteredClaims).ID; id != "token-1" {
		t.Fatalf("jti = %q", id)
	}
}
