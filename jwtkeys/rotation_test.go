package jwtkeys_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/jwtkeys"
)

var ctx = context.Background()

// TestRotationGraceWindow walks a rotation of an HMAC key kept as two versions
// of one secret: tokens signed before it verify with the previous key during
// the grace period and are refused after it; tokens signed after it verify
// with the current key; the counters say so at every step.
func TestRotationGraceWindow(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	v := e.verifier(t, "jwt", jwtkeys.WithGracePeriod(10*time.Minute))
	s := e.signer(t, "jwt")

	tokA := mustSign(t, s, claimsAt(e.clk.Now()))
	if kid := headerOf(t, tokA)["kid"]; kid != "1" {
		t.Fatalf("kid = %v, want the version id 1", kid)
	}
	// The same key, without kid: tried against current, then previous.
	tokANoKid := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, claimsAt(e.clk.Now()))
	for _, tok := range []string{tokA, tokANoKid} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("before rotation: %v", err)
		}
	}
	if st := v.Stats(); st.VerifiedCurrent != 2 || st.VerifiedPrevious != 0 || st.CurrentVersion != "1" || st.PreviousVersion != "" {
		t.Fatalf("stats before rotation = %+v", st)
	}

	e.clk.Advance(time.Minute)
	rotatedAt := e.clk.Now()
	e.rotate(t, "jwt", hmacB)

	// During the grace period the old tokens verify, with the previous key.
	for _, tok := range []string{tokA, tokANoKid} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("during grace: %v", err)
		}
	}
	tokB := mustSign(t, s, claimsAt(e.clk.Now()))
	if kid := headerOf(t, tokB)["kid"]; kid != "2" {
		t.Fatalf("kid after rotation = %v, want 2", kid)
	}
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatal(err)
	}
	st := v.Stats()
	if st.VerifiedCurrent != 3 || st.VerifiedPrevious != 2 || st.PreviousSinceRotation != 2 || v.VerifiedWithPrevious() != 2 {
		t.Fatalf("stats during grace = %+v", st)
	}
	if st.CurrentVersion != "2" || st.PreviousVersion != "1" {
		t.Fatalf("versions = %q, %q", st.CurrentVersion, st.PreviousVersion)
	}
	if !st.RotationSeen.Equal(rotatedAt) || !st.GraceEnds.Equal(rotatedAt.Add(10*time.Minute)) || !st.LastPreviousUse.Equal(rotatedAt) {
		t.Fatalf("rotation times = %v, %v, %v", st.RotationSeen, st.GraceEnds, st.LastPreviousUse)
	}

	// Just before the end of the window: still accepted.
	e.clk.Advance(10*time.Minute - time.Second)
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatalf("last second of grace: %v", err)
	}
	// At the end: refused, with and without kid; the current key still works.
	e.clk.Advance(time.Second)
	for _, tok := range []string{tokA, tokANoKid} {
		_, err := v.Verify(ctx, tok)
		wantReason(t, err, jwtkeys.ReasonKeyRetired)
	}
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatal(err)
	}
	st = v.Stats()
	if st.VerifiedCurrent != 4 || st.VerifiedPrevious != 3 || st.Refused[jwtkeys.ReasonKeyRetired] != 2 || st.RefusedTotal() != 2 {
		t.Fatalf("stats after grace = %+v", st)
	}

	// The next rotation opens a new window for the key that is now previous
	// and retires the oldest one for good.
	e.rotate(t, "jwt", hmacA+"-third-key")
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatalf("B after the second rotation: %v", err)
	}
	_, err := v.Verify(ctx, tokA)
	wantReason(t, err, jwtkeys.ReasonUnknownKey) // kid 1 is gone
	_, err = v.Verify(ctx, tokANoKid)
	wantReason(t, err, jwtkeys.ReasonSignature)
	if st := v.Stats(); st.PreviousSinceRotation != 1 || st.VerifiedPrevious != 4 || st.PreviousVersion != "2" {
		t.Fatalf("stats after second rotation = %+v", st)
	}
}

// TestGracePeriodZero refuses the previous key at once.
func TestGracePeriodZero(t *testing.T) {
	e := newEnv(t, "jwt", hmacA, hmacB)
	v := e.verifier(t, "jwt", jwtkeys.WithGracePeriod(0))
	tok := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), map[string]any{"kid": "1"}, claimsAt(e.clk.Now()))
	_, err := v.Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonKeyRetired)
}

// TestGraceStartsAtFirstLoad: a Verifier that starts after a rotation cannot
// know when it happened; it opens the window when it first loads the keys.
func TestGraceStartsAtFirstLoad(t *testing.T) {
	e := newEnv(t, "jwt", hmacA, hmacB)
	e.clk.Advance(3 * time.Hour)
	v := e.verifier(t, "jwt", jwtkeys.WithGracePeriod(time.Hour))
	if err := v.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats(); !st.RotationSeen.Equal(e.clk.Now()) {
		t.Fatalf("RotationSeen = %v, want %v", st.RotationSeen, e.clk.Now())
	}
	tok := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), map[string]any{"kid": "1"}, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
}

// TestRevokePrevious: removing the previous version ends its use at once,
// whatever the grace period.
func TestRevokePrevious(t *testing.T) {
	e := newEnv(t, "jwt", hmacA, hmacB)
	v := e.verifier(t, "jwt")
	tok := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// Delete and set again: the memory source then keeps no previous.
	e.src.Delete("jwt")
	e.src.Set("jwt", hmacB)
	if err := e.store.Refresh(ctx, "jwt"); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonSignature)
}

// TestRotationPairForm rotates asymmetric keys held as one secret with both
// keys: {"current": ..., "previous": ...}. Kids are thumbprints, so a key
// keeps its kid when it moves from current to previous.
func TestRotationPairForm(t *testing.T) {
	pair := func(cur, prev string, extra map[string]any) string {
		m := map[string]any{"current": cur}
		if prev != "" {
			m["previous"] = prev
		}
		for k, v := range extra {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, tc := range []struct{ name, k1, k2 string }{
		{"RSA", "rsa1", "rsa2"},
		{"ECDSA", "ec256a", "ec256b"},
		{"Ed25519", "ed1", "ed2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "jwt", pair(testKey(t, tc.k1+".key.pem"), "", nil))
			v := e.verifier(t, "jwt", jwtkeys.WithGracePeriod(time.Hour))
			s := e.signer(t, "jwt")
			tok1 := mustSign(t, s, claimsAt(e.clk.Now()))
			kid1 := headerOf(t, tok1)["kid"].(string)
			if len(kid1) != 43 {
				t.Fatalf("kid = %q, want a thumbprint", kid1)
			}

			// Rotate: the old private key becomes previous; the verifier
			// side could hold the public key only.
			e.rotate(t, "jwt", pair(testKey(t, tc.k2+".key.pem"), testKey(t, tc.k1+".pub.pem"), nil))
			tok2 := mustSign(t, s, claimsAt(e.clk.Now()))
			if headerOf(t, tok2)["kid"] == kid1 {
				t.Fatal("kid unchanged by rotation")
			}
			for _, tok := range []string{tok1, tok2} {
				if _, err := v.Verify(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			if st := v.Stats(); st.VerifiedPrevious != 1 || st.VerifiedCurrent != 1 {
				t.Fatalf("stats = %+v", st)
			}
			e.clk.Advance(time.Hour)
			_, err := v.Verify(ctx, tok1)
			wantReason(t, err, jwtkeys.ReasonKeyRetired)
			if _, err := v.Verify(ctx, tok2); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("rotated_at", func(t *testing.T) {
		// A pair that says when it was rotated: a Verifier that starts later
		// measures the grace period from then, not from its own start.
		e := newEnv(t, "jwt")
		rotated := t0.Add(-2 * time.Hour).Format(time.RFC3339)
		e.src.Set("jwt", pair(hmacB, hmacA, map[string]any{"rotated_at": rotated}))
		v := e.verifier(t, "jwt", jwtkeys.WithGracePeriod(time.Hour))
		tok := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, claimsAt(e.clk.Now()))
		_, err := v.Verify(ctx, tok)
		wantReason(t, err, jwtkeys.ReasonKeyRetired)

		v3 := e.verifier(t, "jwt", jwtkeys.WithGracePeriod(3*time.Hour))
		if _, err := v3.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRefreshWithoutChangeKeepsWindow: a refresh that finds the same values
// neither re-opens the grace period nor resets the counters.
func TestRefreshWithoutChangeKeepsWindow(t *testing.T) {
	e := newEnv(t, "jwt", hmacA, hmacB)
	v := e.verifier(t, "jwt", jwtkeys.WithGracePeriod(time.Hour))
	tok := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), map[string]any{"kid": "1"}, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	seen := v.Stats().RotationSeen
	e.clk.Advance(50 * time.Minute)
	if err := e.store.Refresh(ctx, "jwt"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	st := v.Stats()
	if !st.RotationSeen.Equal(seen) || st.PreviousSinceRotation != 2 {
		t.Fatalf("stats after a refresh = %+v", st)
	}
	e.clk.Advance(10 * time.Minute)
	_, err := v.Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonKeyRetired)
}

// TestEmptyPreviousNeverVerifies: golang-jwt takes an empty []byte as an HMAC
// key; an empty previous version must not become one.
func TestEmptyPreviousNeverVerifies(t *testing.T) {
	e := newEnv(t, "jwt", "", hmacA)
	v := e.verifier(t, "jwt")
	if err := v.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if st := v.Stats(); st.PreviousVersion != "" || st.PreviousKeyError != nil {
		t.Fatalf("stats = %+v", st)
	}
	c := claimsAt(e.clk.Now())
	_, err := v.Verify(ctx, signWith(t, jwt.SigningMethodHS256, []byte{}, nil, c))
	wantReason(t, err, jwtkeys.ReasonSignature)
	_, err = v.Verify(ctx, signWith(t, jwt.SigningMethodHS256, []byte{}, map[string]any{"kid": "1"}, c))
	wantReason(t, err, jwtkeys.ReasonUnknownKey)
}

// TestWeakPreviousLeftOut: a previous HMAC key under 32 bytes is not loaded;
// the current one still works, and Stats says why.
func TestWeakPreviousLeftOut(t *testing.T) {
	e := newEnv(t, "jwt", hmacShort, hmacA)
	v := e.verifier(t, "jwt")
	c := claimsAt(e.clk.Now())
	if _, err := v.Verify(ctx, signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, c)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(ctx, signWith(t, jwt.SigningMethodHS256, []byte(hmacShort), nil, c))
	wantReason(t, err, jwtkeys.ReasonSignature)
	if st := v.Stats(); !errors.Is(st.PreviousKeyError, jwtkeys.ErrInvalidKey) || st.PreviousVersion != "" {
		t.Fatalf("stats = %+v", st)
	}
}

// TestBadCurrentFailsClosed: unusable current material refuses every token
// (with ErrKeyUnavailable and ErrInvalidKey), and a fix is picked up.
func TestBadCurrentFailsClosed(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	v := e.verifier(t, "jwt")
	tok := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	e.rotate(t, "jwt", hmacShort)
	_, err := v.Verify(ctx, tok)
	wantReason(t, err, jwtkeys.ReasonKeyUnavailable)
	if !errors.Is(err, jwtkeys.ErrInvalidKey) {
		t.Fatalf("err = %v, want ErrInvalidKey", err)
	}
	if err := v.Load(ctx); !errors.Is(err, jwtkeys.ErrInvalidKey) {
		t.Fatalf("Load = %v", err)
	}
	if st := v.Stats(); !errors.Is(st.KeyError, jwtkeys.ErrInvalidKey) {
		t.Fatalf("stats = %+v", st)
	}
	e.rotate(t, "jwt", hmacB)
	tokB := signWith(t, jwt.SigningMethodHS256, []byte(hmacB), nil, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatal(err)
	}
}

// TestKeyValidatorKeepsGoodKey: with KeyValidator registered, a rotation to
// unusable material is rejected by the Store, and the good key stays.
func TestKeyValidatorKeepsGoodKey(t *testing.T) {
	kv := jwtkeys.KeyValidator()
	e := newEnv(t, "unused")
	e.src.Set("jwt", hmacA)
	st, err := newStoreWith(t, e, kv, "jwt")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := jwtkeys.NewVerifier(st, "jwt", jwtkeys.WithClock(e.clk))
	tok := signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	e.src.Set("jwt", hmacShort)
	err = st.Refresh(ctx, "jwt")
	if !errors.Is(err, jwtkeys.ErrInvalidKey) {
		t.Fatalf("Refresh = %v, want a rejection wrapping ErrInvalidKey", err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("after a rejected rotation: %v", err)
	}
}

// TestConcurrentVerifyDuringRotation runs verifications while the key
// rotates; under -race it checks the key cache's publication.
func TestConcurrentVerifyDuringRotation(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	v := e.verifier(t, "jwt")
	s := e.signer(t, "jwt")
	keys := []string{hmacA, hmacB}
	tokens := []string{
		signWith(t, jwt.SigningMethodHS256, []byte(hmacA), nil, claimsAt(e.clk.Now())),
		signWith(t, jwt.SigningMethodHS256, []byte(hmacB), nil, claimsAt(e.clk.Now())),
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, tok := range tokens {
					// Either outcome is fine mid-rotation; only the
					// classification must hold.
					if _, err := v.Verify(ctx, tok); err != nil && !errors.Is(err, jwtkeys.ErrSignature) {
						t.Errorf("Verify: %v", err)
						return
					}
				}
				if _, err := s.Sign(ctx, claimsAt(e.clk.Now())); err != nil {
					t.Errorf("Sign: %v", err)
					return
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		e.rotate(t, "jwt", keys[i%2])
	}
	close(stop)
	wg.Wait()
	for _, tok := range tokens {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
}
