package jwtkeys_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/jwtkeys"
)

// TestVerificationCounts: the counts a metrics adapter reads match Stats,
// by key version for accepted tokens and by reason for refused ones.
func TestVerificationCounts(t *testing.T) {
	e := newEnv(t, "jwt", hmacA)
	v := e.verifier(t, "jwt", jwtkeys.WithGracePeriod(10*time.Minute))
	s := e.signer(t, "jwt")
	if v.Key() != "jwt" {
		t.Fatalf("Key() = %q", v.Key())
	}
	counts := func() string {
		var out []string
		v.VerificationCounts(func(keyVersion, reason string, n uint64) {
			out = append(out, fmt.Sprintf("%s/%s=%d", keyVersion, reason, n))
		})
		return strings.Join(out, " ")
	}
	if got := counts(); got != "current/=0 previous/=0" {
		t.Fatalf("counts before any token: %s", got)
	}

	old := mustSign(t, s, claimsAt(e.clk.Now()))
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	e.rotate(t, "jwt", hmacB)
	if _, err := v.Verify(ctx, old); err != nil { // the previous key
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, "not.a.token"); err == nil {
		t.Fatal("a malformed token verified")
	}
	e.clk.Advance(11 * time.Minute)
	if _, err := v.Verify(ctx, old); err == nil {
		t.Fatal("a token of the retired key verified after the grace period")
	}
	if got, want := counts(), "current/=1 previous/=1 /malformed=1 /key_retired=1"; got != want {
		t.Fatalf("counts = %s, want %s", got, want)
	}
	st := v.Stats()
	if st.VerifiedCurrent != 1 || st.VerifiedPrevious != 1 || st.RefusedTotal() != 2 {
		t.Fatalf("Stats disagree: %+v", st)
	}
}
