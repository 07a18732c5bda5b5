package rotate_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

// ExampleJWTKey rotates an Ed25519 signing key that a jwtkeys Signer and
// Verifier read from a Store. The Signer moves to the new key once its
// Store serves it; a token of the old key is refused once the agent has
// removed it, after the verifiers' grace period. (The durations are tiny
// so that the example runs at once; a grace period is usually an hour.)
func ExampleJWTKey() {
	ctx := context.Background()
	const consumerTTL = time.Millisecond
	key := &rotate.JWTKey{Algorithm: rotate.Ed25519, GracePeriod: 20 * time.Millisecond}

	// The secret's first version.
	first, err := key.Generate()
	if err != nil {
		panic(err)
	}
	src := memory.New()
	src.Set("jwt-signing-key", string(first))

	// The consumers' side.
	store, err := secrets.New(src, secrets.WithTTL(consumerTTL))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	signer, _ := jwtkeys.NewSigner(store, "jwt-signing-key")
	verifier, _ := jwtkeys.NewVerifier(store, "jwt-signing-key", jwtkeys.WithGracePeriod(key.GracePeriod))
	claims := func() *jwt.RegisteredClaims {
		return &jwt.RegisteredClaims{Subject: "client", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}
	}
	oldToken, err := signer.Sign(ctx, claims())
	if err != nil {
		panic(err)
	}

	// The rotation: the overlap covers the verifiers' grace period.
	agent, err := rotate.New(src, key, consumerTTL,
		rotate.WithOverlap(key.MinOverlap(consumerTTL)), rotate.WithLogger(quiet()))
	if err != nil {
		panic(err)
	}
	rep, err := agent.Rotate(ctx, "jwt-signing-key")
	if err != nil {
		panic(err)
	}

	_ = store.Refresh(ctx, "jwt-signing-key") // or wait a TTL
	newToken, _ := signer.Sign(ctx, claims())
	_, newErr := verifier.Verify(ctx, newToken)
	_, oldErr := verifier.Verify(ctx, oldToken)
	v, _ := src.Fetch(ctx, "jwt-signing-key")
	fmt.Println("current is the new version:", v.Current.Version() == rep.To)
	fmt.Println("old key removed from the store:", v.Previous.IsZero())
	fmt.Println("new token verifies:", newErr == nil)
	fmt.Println("old token refused:", errors.Is(oldErr, jwtkeys.ErrUnknownKey))
	// Output:
	// current is the new version: true
	// old key removed from the store: true
	// new token verifies: true
	// old token refused: true
}
