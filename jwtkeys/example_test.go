package jwtkeys_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// A rotation from start to end: a token signed before it keeps verifying
// with the previous key, tokens signed after it use the new key, and the
// counters tell the operator how much the old key is still used.
func Example() {
	ctx := context.Background()
	src := memory.New()
	src.Set("jwt-signing-key", "first-key-0123456789abcdef0123456789")

	store, err := secrets.New(src)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	signer, err := jwtkeys.NewSigner(store, "jwt-signing-key")
	if err != nil {
		panic(err)
	}
	verifier, err := jwtkeys.NewVerifier(store, "jwt-signing-key",
		jwtkeys.WithGracePeriod(time.Hour), jwtkeys.WithAudience("mcp"))
	if err != nil {
		panic(err)
	}
	claims := func() *jwt.RegisteredClaims {
		return &jwt.RegisteredClaims{
			Subject:   "alice",
			Audience:  jwt.ClaimStrings{"mcp"},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(15 * time.Minute)),
		}
	}

	before, _ := signer.Sign(ctx, claims())

	// Rotate: the backend gets a new version; the Store picks it up on its
	// next poll, or at once on Refresh.
	src.Set("jwt-signing-key", "second-key-0123456789abcdef0123456789")
	if err := store.Refresh(ctx, "jwt-signing-key"); err != nil {
		panic(err)
	}
	after, _ := signer.Sign(ctx, claims())

	for _, tok := range []string{before, after} {
		t, err := verifier.Verify(ctx, tok)
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		sub, _ := t.Claims.GetSubject()
		fmt.Println("verified", sub, "with key version", t.Header["kid"])
	}
	_, err = verifier.Verify(ctx, after+"x")
	fmt.Println("tampered:", errors.Is(err, jwtkeys.ErrSignature) || errors.Is(err, jwtkeys.ErrMalformed))

	st := verifier.Stats()
	fmt.Println("current key:", st.VerifiedCurrent, "previous key:", st.VerifiedPrevious)
	fmt.Println("previous key in use since the rotation:", st.PreviousSinceRotation)
	fmt.Println("grace period:", st.GraceEnds.Sub(st.RotationSeen))
	// Output:
	// verified alice with key version 1
	// verified alice with key version 2
	// tampered: true
	// current key: 1 previous key: 1
	// previous key in use since the rotation: 1
	// grace period: 1h0m0s
}

// Without a grace period, the previous key is refused at once: the typed
// error says why.
func ExampleWithGracePeriod() {
	ctx := context.Background()
	src := memory.New()
	src.Set("jwt", "old-key-0123456789abcdef0123456789ab")
	store, _ := secrets.New(src)
	defer store.Close()
	signer, _ := jwtkeys.NewSigner(store, "jwt")
	verifier, _ := jwtkeys.NewVerifier(store, "jwt", jwtkeys.WithGracePeriod(0))

	old, _ := signer.Sign(ctx, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	src.Set("jwt", "new-key-0123456789abcdef0123456789ab")
	_ = store.Refresh(ctx, "jwt")

	_, err := verifier.Verify(ctx, old)
	fmt.Println(errors.Is(err, jwtkeys.ErrKeyRetired))
	fmt.Println(err)
	fmt.Println(verifier.Stats().Refused)
	// Output:
	// true
	// jwtkeys: verify "jwt": token is signed with a retired key
	// map[key_retired:1]
}

// One secret can hold both keys: here an Ed25519 private key in PEM as the
// current key, and the public half of the key it replaced. A token's kid is
// then the key's RFC 7638 thumbprint, which stays the same when the key moves
// from current to previous. The optional rotated_at starts the grace period
// at the rotation rather than when each process first sees it.
func ExampleNewVerifier_pair() {
	ctx := context.Background()
	src := memory.New()
	src.Set("jwt", `{
		"current": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n",
		"previous": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEATQ5nOMXxTOLEbx48/wAFlKbhOJTYKG/0CCkI/csUgqY=\n-----END PUBLIC KEY-----\n",
		"rotated_at": "2025-06-01T12:00:00Z"
	}`)
	store, _ := secrets.New(src)
	defer store.Close()
	signer, _ := jwtkeys.NewSigner(store, "jwt")
	verifier, _ := jwtkeys.NewVerifier(store, "jwt")

	tok, err := signer.Sign(ctx, jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	if err != nil {
		panic(err)
	}
	t, err := verifier.Verify(ctx, tok)
	if err != nil {
		panic(err)
	}
	fmt.Println(t.Method.Alg(), t.Header["kid"])
	fmt.Println("grace ended:", verifier.Stats().GraceEnds.Before(time.Now()))
	// Output:
	// EdDSA 3YZxBJ12jO3n_mXt_q-j_Z-TFP1vt-NiI3OCf-fEnHQ
	// grace ended: true
}

// KeyValidator keeps a broken rotation out: the Store refuses the candidate
// and goes on serving the working key.
func ExampleKeyValidator() {
	ctx := context.Background()
	src := memory.New()
	src.Set("jwt", "good-key-0123456789abcdef0123456789")
	store, _ := secrets.New(src, secrets.WithValidator(jwtkeys.KeyValidator(), "jwt"))
	defer store.Close()
	verifier, _ := jwtkeys.NewVerifier(store, "jwt")
	fmt.Println(verifier.Load(ctx))

	src.Set("jwt", "too-short") // an HMAC key must have 32 bytes
	err := store.Refresh(ctx, "jwt")
	fmt.Println(errors.Is(err, secrets.ErrRejected), errors.Is(err, jwtkeys.ErrInvalidKey))
	fmt.Println(verifier.Load(ctx))
	// Output:
	// <nil>
	// true true
	// <nil>
}
