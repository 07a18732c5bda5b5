package rotate_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/file"
)

// TestJWTKeyInTrimmedFileResumesAfterCrashAtPromote: a PEM signing key in a
// file read with file.WithTrimNewline (as examples/mcpserver reads its
// credential files). An agent promotes the new key and dies before
// recording it; the next agent redoes the promotion, which is idempotent
// because the file source serves a staged version under the same value and
// id before and after Promote. The resumed rotation completes (no false
// rollback of a key that is current) and removes the old key.
func TestJWTKeyInTrimmedFileResumesAfterCrashAtPromote(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(t0)
	k := &rotate.JWTKey{Algorithm: rotate.Ed25519, Encoding: rotate.EncodePEM, Clock: clk}
	first, err := k.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "signing.pem"), first, 0o600); err != nil {
		t.Fatal(err)
	}
	newSrc := func() *file.Source {
		s, err := file.New(file.WithDir(dir), file.WithTrimNewline())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	crashed := false
	hook := func(_ string, s secrets.RotationStep, recorded bool) error {
		if s == secrets.StepPromoted && !recorded && !crashed {
			crashed = true
			return errors.New("injected crash")
		}
		return nil
	}
	overlap := rotate.WithOverlap(k.MinOverlap(10 * 1e9))
	a := newAgent(t, newSrc(), k, clk, "a", rotate.WithStepHook(hook), overlap)
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "signing.pem") }); !errors.Is(err, rotate.ErrCrashed) {
		t.Fatalf("first agent: %v", err)
	}
	clk.Advance(2 * 60e9)
	src := newSrc()
	b := newAgent(t, src, k, clk, "b", overlap)
	_, err = runClocked(t, clk, func() (rotate.Report, error) { return b.Rotate(ctxT(t), "signing.pem") })
	v, ferr := src.Fetch(ctxT(t), "signing.pem")
	if ferr != nil {
		t.Fatal(ferr)
	}
	if err != nil {
		t.Errorf("resumed rotation: %v (the store's current key is the new one: %v)", err, v.Current.Reveal() != string(first[:len(first)-1]))
	}
	if !v.Previous.IsZero() {
		t.Errorf("the old key is still served as previous (version %s)", v.Previous.Version())
	}
}
