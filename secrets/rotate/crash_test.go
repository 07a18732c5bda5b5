package rotate_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
)

// TestTwoCrashesInARowThenAThirdAgentFinishesOrUndoes: an agent crashes at
// one point, a second one takes over (after watching the record for a
// lease) and crashes at another, a third finishes. Between the crashes the
// downstream accepts the store's current or pending value; afterwards the
// store and the downstream agree, nothing is pending, and the outcome
// matches whether verification fails.
func TestTwoCrashesInARowThenAThirdAgentFinishesOrUndoes(t *testing.T) {
	steps := []secrets.RotationStep{secrets.StepStarted, secrets.StepStaged, secrets.StepSet, secrets.StepVerified,
		secrets.StepPromoted, secrets.StepOverlapped, secrets.StepDone, secrets.StepRollingBack, secrets.StepRolledBack}
	type point struct {
		step     secrets.RotationStep
		recorded bool
	}
	var points []point
	for _, s := range steps {
		points = append(points, point{s, false}, point{s, true})
	}
	for _, failVerify := range []bool{false, true} {
		for _, p1 := range points {
			for _, p2 := range points {
				name := fmt.Sprintf("fail=%v/%s,%v/%s,%v", failVerify, p1.step, p1.recorded, p2.step, p2.recorded)
				t.Run(name, func(t *testing.T) {
					src, db, clk := setup(t)
					db.failVerify = failVerify
					crashAt := func(p point) (func(string, secrets.RotationStep, bool) error, *bool) {
						hit := new(bool)
						return func(_ string, s secrets.RotationStep, rec bool) error {
							if s == p.step && rec == p.recorded && !*hit {
								*hit = true
								return errors.New("injected crash")
							}
							return nil
						}, hit
					}
					h1, hit1 := crashAt(p1)
					a := newAgent(t, src, db, clk, "a", rotate.WithStepHook(h1))
					_, _ = runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") })
					if !*hit1 {
						t.Skipf("the rotation does not pass %s (recorded %v)", p1.step, p1.recorded)
					}
					clk.Advance(2 * time.Minute)
					h2, hit2 := crashAt(p2)
					b := newAgent(t, src, db, clk, "b", rotate.WithStepHook(h2))
					_, _ = runClocked(t, clk, func() (rotate.Report, error) { return b.Rotate(ctxT(t), "db") })
					if !*hit2 {
						t.Skipf("the resumed rotation does not pass %s (recorded %v)", p2.step, p2.recorded)
					}
					v, _ := src.Fetch(ctxT(t), "db")
					if acc := db.get(); acc != v.Current.Reveal() && acc != v.Pending.Reveal() {
						t.Fatal("after two crashes the downstream accepts neither the current nor the pending value")
					}
					clk.Advance(2 * time.Minute)
					c := newAgent(t, src, db, clk, "c")
					_, err := runClocked(t, clk, func() (rotate.Report, error) { return c.Rotate(ctxT(t), "db") })
					if err != nil && !errors.Is(err, rotate.ErrRolledBack) {
						t.Fatalf("third agent: %v", err)
					}
					v = checkAgree(t, src, db, "db")
					if failVerify && v.Current.Reveal() != "initial-password" {
						t.Fatal("a failed rotation changed the current value")
					}
				})
			}
		}
	}
}
