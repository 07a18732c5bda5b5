package jwtkeys_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rotorhq/rotor/jwtkeys"
)

// pauseFirst returns a hook that blocks its first caller until release is
// closed, after closing reached; later callers pass through.
func pauseFirst() (hook func(), reached, release chan struct{}) {
	reached, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook = func() {
		first := false
		once.Do(func() { first = true })
		if first {
			close(reached)
			<-release
		}
	}
	return hook, reached, release
}

// TestLateRebuildKeepsRingForward: a verification that read the versions
// before a rotation, and goes on after a newer key set was built, must not
// bring the older set back: that would give the key retired by the older
// rotation a new grace period, and re-open the one in force.
func TestLateRebuildKeepsRingForward(t *testing.T) {
	const hmacC = "C-0123456789abcdef0123456789abcd"
	e := newEnv(t, "jwt", hmacA, hmacB) // version 1 holds A, version 2 holds B
	v := e.verifier(t, "jwt", jwtkeys.WithGracePeriod(time.Hour))
	if err := v.Load(ctx); err != nil {
		t.Fatal(err)
	}
	sign := func(k, kid string) string {
		return signWith(t, jwt.SigningMethodHS256, []byte(k), map[string]any{"kid": kid}, claimsAt(e.clk.Now()))
	}

	// 75 minutes on, A has been retired for 15 minutes.
	e.clk.Advance(75 * time.Minute)
	tokA := sign(hmacA, "1")
	_, err := v.Verify(ctx, tokA)
	wantReason(t, err, jwtkeys.ReasonKeyRetired)

	// A verification reads versions 2 and 1, and is preempted.
	hook, reached, release := pauseFirst()
	v.SetAfterReadHook(hook)
	late := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, tokA)
		late <- err
	}()
	<-reached

	// Meanwhile C is rotated in, and another verification builds its keys.
	e.rotate(t, "jwt", hmacC)
	rotated := e.clk.Now()
	if _, err := v.Verify(ctx, sign(hmacC, "3")); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(10 * time.Minute)

	// The late verification goes on. A is not a key of the newest set.
	close(release)
	wantReason(t, <-late, jwtkeys.ReasonUnknownKey)

	// The ring holds the newest set, with the grace period started once,
	// when C was first seen.
	st := v.Stats()
	if st.CurrentVersion != "3" || st.PreviousVersion != "2" {
		t.Fatalf("versions after the late verification = %q, %q; want 3, 2", st.CurrentVersion, st.PreviousVersion)
	}
	tokB := sign(hmacB, "2")
	if _, err := v.Verify(ctx, tokB); err != nil {
		t.Fatalf("B during its grace period: %v", err)
	}
	st = v.Stats()
	if !st.RotationSeen.Equal(rotated) || !st.GraceEnds.Equal(rotated.Add(time.Hour)) {
		t.Fatalf("rotation seen %v, grace ends %v; want %v, %v", st.RotationSeen, st.GraceEnds, rotated, rotated.Add(time.Hour))
	}
	_, err = v.Verify(ctx, tokA)
	wantReason(t, err, jwtkeys.ReasonUnknownKey)
	e.clk.Advance(rotated.Add(time.Hour).Sub(e.clk.Now()))
	_, err = v.Verify(ctx, tokB)
	wantReason(t, err, jwtkeys.ReasonKeyRetired)
}

// TestLateRebuildSignerSignsWithNewest: a Sign that read the versions before
// a rotation, and goes on after another Sign built the newer key, signs with
// the newer key and leaves the newer key in place.
func TestLateRebuildSignerSignsWithNewest(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	s := e.signer(t, "jwt")
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	hook, reached, release := pauseFirst()
	s.SetAfterReadHook(hook)
	late := make(chan string, 1)
	go func() {
		tok, err := s.Sign(ctx, claimsAt(e.clk.Now()))
		if err != nil {
			t.Error(err)
		}
		late <- tok
	}()
	<-reached

	e.rotate(t, "jwt", hmacB)
	if kid := headerOf(t, mustSign(t, s, claimsAt(e.clk.Now())))["kid"]; kid != "2" {
		t.Fatalf("kid after the rotation = %v, want 2", kid)
	}
	close(release)
	tok := <-late
	if tok == "" {
		return
	}
	if kid := headerOf(t, tok)["kid"]; kid != "2" {
		t.Fatalf("kid of the late Sign = %v, want 2", kid)
	}
	if got := s.CachedVersion(); got != "2" {
		t.Fatalf("Signer holds version %q after the late Sign, want 2", got)
	}
}

// TestRebuildWaitHonoursContext: a verification that must wait for another
// one's rebuild gives up when its context ends, with ErrKeyUnavailable and
// the context's error.
func TestRebuildWaitHonoursContext(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	v := e.verifier(t, "jwt")
	if err := v.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e.rotate(t, "jwt", hmacB)

	hook, reached, release := pauseFirst()
	v.SetLockedHook(hook)
	tokB := signWith(t, jwt.SigningMethodHS256, []byte(hmacB), nil, claimsAt(e.clk.Now()))
	first := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, tokB)
		first <- err
	}()
	<-reached

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := v.Verify(cctx, tokB)
	wantReason(t, err, jwtkeys.ReasonKeyUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(cctx, tokB); err != nil {
		t.Fatalf("with the keys built, a cancelled context does not matter: %v", err)
	}
}
