package rotate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// TestRunRotatesOnSchedule: Run rotates at once a key never rotated, then
// again when the current version is older than the maximum age (less the
// jitter), and stops when its context ends.
func TestRunRotatesOnSchedule(t *testing.T) {
	src, db, clk := setup(t)
	a := newAgent(t, src, db, clk, "a")
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	const maxAge, jitter = 24 * time.Hour, time.Hour
	var done []time.Time
	errc := make(chan error, 1)
	stopped := make(chan struct{})
	go func() { defer close(stopped); errc <- a.Run(ctx, "db", maxAge, jitter) }()
	for len(done) < 3 {
		// Wait for Run to arm a timer, then move to it.
		if !awaitWait(t, clk, stopped) {
			t.Fatalf("Run returned %v", <-errc)
		}
		boundsOf(clk).advanceToWait(time.Time{})
		rec, _ := src.LoadRotation(ctx, "db")
		if rec.Step == secrets.StepDone && (len(done) == 0 || !rec.Updated.Equal(done[len(done)-1])) {
			done = append(done, rec.Updated)
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	for i := 1; i < len(done); i++ {
		gap := done[i].Sub(done[i-1])
		if gap < maxAge-jitter || gap > maxAge+time.Hour {
			t.Fatalf("rotations %v apart, want about the maximum age %v less up to %v", gap, maxAge, jitter)
		}
	}
	checkAgree(t, src, db, "db")
}
