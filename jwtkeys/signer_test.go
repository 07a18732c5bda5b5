package jwtkeys_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
)

// TestSignVerifyRoundTrip signs with every kind of key material and verifies
// with the same secret, checking the header's alg and kid, and that a bare
// golang-jwt parse with the public key agrees.
func TestSignVerifyRoundTrip(t *testing.T) {
	rsaPriv := privateKey(t, "rsa1.key.pem").(*rsa.PrivateKey)
	ecPriv := privateKey(t, "ec384.key.pem").(*ecdsa.PrivateKey)
	edPriv := privateKey(t, "ed1.key.pem").(ed25519.PrivateKey)
	cases := []struct {
		name    string
		value   string
		opts    []jwtkeys.Option
		alg     string
		kid     string // "" means the version id, "1"
		bareKey any
	}{
		{"HMAC raw", hmacA, nil, "HS256", "", []byte(hmacA)},
		{"HMAC 64 bytes", hmacA + hmacB, nil, "HS256", "", []byte(hmacA + hmacB)},
		{"HMAC 64 bytes, HS512 preferred", hmacA + hmacB, []jwtkeys.Option{jwtkeys.WithAlgorithms("HS512", "HS256")}, "HS512", "", []byte(hmacA + hmacB)},
		{"RSA PKCS #8", testKey(t, "rsa1.key.pem"), nil, "RS256", "", &rsaPriv.PublicKey},
		{"RSA, PS256 preferred", testKey(t, "rsa1.key.pem"), []jwtkeys.Option{jwtkeys.WithAlgorithms("PS256", "RS256")}, "PS256", "", &rsaPriv.PublicKey},
		{"ECDSA P-384", testKey(t, "ec384.key.pem"), nil, "ES384", "", &ecPriv.PublicKey},
		{"ECDSA P-521", testKey(t, "ec521.key.pem"), nil, "ES512", "", privateKey(t, "ec521.key.pem").(*ecdsa.PrivateKey).Public()},
		{"Ed25519", testKey(t, "ed1.key.pem"), nil, "EdDSA", "", edPriv.Public()},
		{"JWK RSA with kid and alg", mustJSON(t, jwkOf(t, rsaPriv, map[string]any{"kid": "rsa-2025", "alg": "PS384"})), nil, "PS384", "rsa-2025", &rsaPriv.PublicKey},
		{"JWK oct with kid", mustJSON(t, jwkOf(t, []byte(hmacB), map[string]any{"kid": "oct-1"})), nil, "HS256", "oct-1", []byte(hmacB)},
		{"JWKS: the first key that signs", mustJSON(t, map[string]any{"keys": []any{
			jwkOf(t, &rsaPriv.PublicKey, map[string]any{"kid": "pub-only"}),
			jwkOf(t, edPriv, map[string]any{"kid": "ed-1"}),
		}}), nil, "EdDSA", "ed-1", edPriv.Public()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "jwt", tc.value)
			s := e.signer(t, "jwt", tc.opts...)
			v := e.verifier(t, "jwt", tc.opts...)
			if err := s.Load(ctx); err != nil {
				t.Fatal(err)
			}
			tok := mustSign(t, s, claimsAt(e.clk.Now()))
			h := headerOf(t, tok)
			wantKid := tc.kid
			if wantKid == "" {
				wantKid = "1"
			}
			if h["alg"] != tc.alg || h["kid"] != wantKid {
				t.Fatalf("header = %v, want alg %s kid %s", h, tc.alg, wantKid)
			}
			got, err := v.Verify(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Valid || got.Claims.(*jwt.RegisteredClaims).Subject != "user-1" {
				t.Fatalf("token = %+v", got)
			}
			_, err = jwt.Parse(tok, func(*jwt.Token) (any, error) { return tc.bareKey, nil },
				jwt.WithValidMethods([]string{tc.alg}), jwt.WithTimeFunc(e.clk.Now))
			if err != nil {
				t.Fatalf("bare golang-jwt refuses the token: %v", err)
			}
		})
	}
}

// TestPublicKeyVerifiesPrivateKeySigns: a verifier may hold only the public
// key; a signer with only a public key cannot sign.
func TestPublicKeyVerifiesPrivateKeySigns(t *testing.T) {
	e := newEnv(t, "priv", testKey(t, "ec256a.key.pem"))
	e.src.Set("pub", testKey(t, "ec256a.pub.pem"))
	s := e.signer(t, "priv")
	tok := mustSign(t, s, claimsAt(e.clk.Now()))
	// The kid is the version id of the signer's secret; the verifier of the
	// public key has another version id, so it gets the token without kid.
	tok2 := signWith(t, jwt.SigningMethodES256, privateKey(t, "ec256a.key.pem"), nil, claimsAt(e.clk.Now()))
	v := e.verifier(t, "pub")
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonUnknownKey)

	ps := e.signer(t, "pub")
	_, err = ps.Sign(ctx, claimsAt(e.clk.Now()))
	wantReason(t, err, jwtkeys.ReasonKeyUnavailable)
	if !errors.Is(err, jwtkeys.ErrNoSigningKey) || !errors.Is(ps.Load(ctx), jwtkeys.ErrNoSigningKey) {
		t.Fatalf("err = %v, want ErrNoSigningKey", err)
	}
}

// TestSignRequiresExp: claims without exp are refused unless declared
// optional, on both sides.
func TestSignRequiresExp(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	c := claimsAt(e.clk.Now())
	c.ExpiresAt = nil
	_, err := e.signer(t, "jwt").Sign(ctx, c)
	wantReason(t, err, jwtkeys.ReasonClaims)
	_, err = e.signer(t, "jwt").Sign(ctx, nil)
	wantReason(t, err, jwtkeys.ReasonClaims)

	s := e.signer(t, "jwt", jwtkeys.WithExpirationOptional())
	tok := mustSign(t, s, c)
	_, err = e.verifier(t, "jwt").Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonClaims)
	if _, err := e.verifier(t, "jwt", jwtkeys.WithExpirationOptional()).Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// A jwt.MapClaims built in Go holds exp as an integer.
	if _, err := e.signer(t, "jwt").Sign(ctx, jwt.MapClaims{"exp": e.clk.Now().Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	_, err = e.signer(t, "jwt").Sign(ctx, jwt.MapClaims{"iat": e.clk.Now().Unix()})
	wantReason(t, err, jwtkeys.ReasonClaims)
	// Claims that JSON cannot encode.
	_, err = s.Sign(ctx, jwt.MapClaims{"exp": math.NaN()})
	wantReason(t, err, jwtkeys.ReasonClaims)
}

type customClaims struct {
	Scope string `json:"scope"`
	jwt.RegisteredClaims
}

func (c *customClaims) Validate() error {
	if c.Scope == "forbidden" {
		return errors.New("scope forbidden")
	}
	return nil
}

// TestVerifyClaims decodes into the caller's type and runs its Validate.
func TestVerifyClaims(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	s := e.signer(t, "jwt")
	v := e.verifier(t, "jwt")
	c := &customClaims{Scope: "tools:read", RegisteredClaims: *claimsAt(e.clk.Now())}
	tok := mustSign(t, s, c)
	var got customClaims
	if _, err := v.VerifyClaims(ctx, tok, &got); err != nil {
		t.Fatal(err)
	}
	if got.Scope != "tools:read" || got.Subject != "user-1" {
		t.Fatalf("claims = %+v", got)
	}
	m := jwt.MapClaims{}
	if _, err := v.VerifyClaims(ctx, tok, m); err != nil || m["scope"] != "tools:read" {
		t.Fatalf("MapClaims: %v, %v", err, m)
	}
	c.Scope = "forbidden"
	_, err := v.VerifyClaims(ctx, mustSign(t, s, c), &customClaims{})
	wantReason(t, err, jwtkeys.ReasonClaims)

	for _, bad := range []jwt.Claims{nil, jwt.RegisteredClaims{}, (*jwt.RegisteredClaims)(nil), jwt.MapClaims(nil)} {
		_, err := v.VerifyClaims(ctx, tok, bad)
		wantReason(t, err, jwtkeys.ReasonClaims)
	}
}

// TestStoreFailures: a secret the Store cannot serve makes every use fail
// with ErrKeyUnavailable, wrapping the Store's error.
func TestStoreFailures(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	tok := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, claimsAt(e.clk.Now()))

	v := e.verifier(t, "missing")
	_, err := v.Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonKeyUnavailable)
	if !errors.Is(err, secrets.ErrNotFound) || !errors.Is(v.Load(ctx), secrets.ErrNotFound) {
		t.Fatalf("err = %v, want secrets.ErrNotFound", err)
	}
	_, err = e.signer(t, "missing").Sign(ctx, claimsAt(e.clk.Now()))
	wantReason(t, err, jwtkeys.ReasonKeyUnavailable)

	// A field selector on a value that is not JSON.
	_, err = e.verifier(t, "jwt#field").Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonKeyUnavailable)

	v = e.verifier(t, "jwt")
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	e.store.Close()
	_, err = v.Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonKeyUnavailable)
	if !errors.Is(err, secrets.ErrClosed) {
		t.Fatalf("err = %v, want secrets.ErrClosed", err)
	}
	if st := v.Stats(); st.Refused[jwtkeys.ReasonKeyUnavailable] != 1 || st.VerifiedCurrent != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestFieldSelector reads the key from a field of a JSON secret.
func TestFieldSelector(t *testing.T) {
	e := newEnv(t, "app", mustJSON(t, map[string]any{"db": "x", "jwt": hmacA}))
	s := e.signer(t, "app#jwt")
	v := e.verifier(t, "app#jwt")
	if _, err := v.Verify(ctx, mustSign(t, s, claimsAt(e.clk.Now()))); err != nil {
		t.Fatal(err)
	}
}
