package jwtkeys_test

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/jwtkeys"
)

// benchCase is one algorithm: the secret's value, the key a bare golang-jwt
// parse would be given, and the algorithm.
type benchCase struct {
	alg    string
	secret string
	bare   func(testing.TB) any
}

func benchCases() []benchCase {
	return []benchCase{
		{"HS256", hmacA, func(testing.TB) any { return []byte(hmacA) }},
		{"RS256", "rsa1.key.pem", func(b testing.TB) any { return publicKey(b, "rsa1.pub.pem") }},
		{"ES256", "ec256a.key.pem", func(b testing.TB) any { return publicKey(b, "ec256a.pub.pem") }},
		{"EdDSA", "ed1.key.pem", func(b testing.TB) any { return publicKey(b, "ed1.pub.pem") }},
	}
}

// benchToken returns a Store-backed Verifier and a token its Signer made.
func benchToken(b *testing.B, bc benchCase) (*jwtkeys.Verifier, string, *env) {
	value := bc.secret
	if bc.alg != "HS256" {
		value = testKey(b, bc.secret)
	}
	e := newEnv(b, "jwt", value)
	s := e.signer(b, "jwt")
	v := e.verifier(b, "jwt")
	tok := mustSign(b, s, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	return v, tok, e
}

// BenchmarkVerify measures Verifier.Verify: a Store read, the cached keys,
// parsing, the signature and the claims.
func BenchmarkVerify(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.alg, func(b *testing.B) {
			v, tok, _ := benchToken(b, bc)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBareJWT is the baseline: golang-jwt parsing the same token with a
// fixed key and the same checks (algorithm pinned, exp required, iat checked,
// the same leeway and clock).
func BenchmarkBareJWT(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.alg, func(b *testing.B) {
			_, tok, e := benchToken(b, bc)
			key := bc.bare(b)
			keyFunc := func(*jwt.Token) (any, error) { return key, nil }
			p := jwt.NewParser(
				jwt.WithValidMethods([]string{bc.alg}),
				jwt.WithExpirationRequired(),
				jwt.WithIssuedAt(),
				jwt.WithLeeway(jwtkeys.DefaultLeeway),
				jwt.WithTimeFunc(e.clk.Now),
				jwt.WithStrictDecoding(),
			)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.ParseWithClaims(tok, &jwt.RegisteredClaims{}, keyFunc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyParallel shows that verifications do not contend: the key
// set is read with one atomic load.
func BenchmarkVerifyParallel(b *testing.B) {
	v, tok, _ := benchToken(b, benchCases()[0])
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSign measures Signer.Sign.
func BenchmarkSign(b *testing.B) {
	for _, bc := range benchCases() {
		b.Run(bc.alg, func(b *testing.B) {
			_, _, e := benchToken(b, bc)
			s := e.signer(b, "jwt")
			c := claimsAt(e.clk.Now())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
