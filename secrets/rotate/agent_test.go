package rotate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

func setup(t *testing.T) (*memory.Source, *fakeDB, *fakeclock.Clock) {
	src := memory.New()
	src.Set("db", "initial-password")
	return src, &fakeDB{accepted: "initial-password"}, fakeclock.New(t0)
}

func TestRotateSucceeds(t *testing.T) {
	src, db, clk := setup(t)
	var events []rotate.Event
	a := newAgent(t, src, db, clk, "a", rotate.WithNotify(func(_ context.Context, e rotate.Event) { events = append(events, e) }))
	rep, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") })
	if err != nil {
		t.Fatal(err)
	}
	v := checkAgree(t, src, db, "db")
	if v.Current.Version() != rep.To || v.Previous.Version() != rep.From || v.Previous.Reveal() != "initial-password" {
		t.Fatalf("report %+v, store current %s previous %s", rep, v.Current.Version(), v.Previous.Version())
	}
	if db.revoked != 1 {
		t.Fatalf("revoked %d times", db.revoked)
	}
	if elapsed := clk.Now().Sub(t0); elapsed < 30*time.Second {
		t.Fatalf("the old credential was revoked %v after the start, before the overlap of 3 × TTL", elapsed)
	}
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, string(e.Kind)+":"+string(e.Rotation.Step))
	}
	want := "step:started step:staged step:set step:verified step:promoted promoted:promoted step:overlapped step:done succeeded:done"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("events:\n got %s\nwant %s", strings.Join(kinds, " "), want)
	}
}

// TestOverlapWaitsForSessions: past the overlap, the agent keeps waiting
// while the old credential is in use, up to the deadline.
func TestOverlapWaitsForSessions(t *testing.T) {
	src, db, clk := setup(t)
	db.inUse = 2
	var promotedAt time.Time
	a := newAgent(t, src, db, clk, "a", rotate.WithOverlapDeadline(5*time.Minute), rotate.WithNotify(func(_ context.Context, e rotate.Event) {
		if e.Kind == rotate.EventPromoted {
			promotedAt = clk.Now()
		}
	}))
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
		t.Fatal(err)
	}
	if got := clk.Now().Sub(promotedAt); got < 5*time.Minute {
		t.Fatalf("with sessions of the old credential open, revoked %v after the promotion, before the deadline", got)
	}
	checkAgree(t, src, db, "db")
}

func TestOverlapShorterThanThreeTTLIsRefused(t *testing.T) {
	src, db, _ := setup(t)
	_, err := rotate.New(src, db, time.Minute, rotate.WithOverlap(2*time.Minute))
	if err == nil || !strings.Contains(err.Error(), "3 × the consumers' TTL") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadOnlySourceIsNotRotatable(t *testing.T) {
	_, err := rotate.New(readOnly{}, &fakeDB{}, time.Minute)
	if !errors.Is(err, rotate.ErrNotRotatable) {
		t.Fatalf("err = %v", err)
	}
}

type readOnly struct{}

func (readOnly) Fetch(context.Context, string) (secrets.Versions, error) {
	return secrets.Versions{}, nil
}

func TestVerifyFailureRollsBack(t *testing.T) {
	src, db, clk := setup(t)
	db.failVerify = true
	a := newAgent(t, src, db, clk, "a")
	_, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") })
	if !errors.Is(err, rotate.ErrRolledBack) || !strings.Contains(err.Error(), "probe failed") {
		t.Fatalf("err = %v, want ErrRolledBack with the cause", err)
	}
	v := checkAgree(t, src, db, "db")
	if v.Current.Reveal() != "initial-password" || !v.Previous.IsZero() {
		t.Fatal("a failed rotation changed the store's served versions")
	}
	rec, _ := src.LoadRotation(ctxT(t), "db")
	if rec.Step != secrets.StepRolledBack || !strings.Contains(rec.Cause, "probe failed") {
		t.Fatalf("record %+v", rec)
	}
	// The next rotation starts afresh.
	db.failVerify = false
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
		t.Fatal(err)
	}
	checkAgree(t, src, db, "db")
}

// TestRollbackRestoresTheStoreValue: the downstream is restored to what the
// store holds as current when the rollback runs, not to what the agent read
// when it started.
func TestRollbackRestoresTheStoreValue(t *testing.T) {
	src, db, clk := setup(t)
	stop := errors.New("crash")
	a := newAgent(t, src, db, clk, "a", rotate.WithStepHook(func(_ string, s secrets.RotationStep, rec bool) error {
		if s == secrets.StepSet && rec {
			return stop
		}
		return nil
	}))
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); !errors.Is(err, rotate.ErrCrashed) {
		t.Fatal(err)
	}
	// An operator replaces the current value meanwhile (and the database
	// with it), then the verify of the rotation fails.
	src.Set("db", "operator-password")
	db.mu.Lock()
	db.accepted, db.failVerify = "operator-password", true
	db.mu.Unlock()
	clk.Advance(2 * time.Minute)
	b := newAgent(t, src, db, clk, "b")
	_, err := runClocked(t, clk, func() (rotate.Report, error) { return b.Rotate(ctxT(t), "db") })
	if !errors.Is(err, rotate.ErrRolledBack) {
		t.Fatalf("err = %v", err)
	}
	if v := checkAgree(t, src, db, "db"); v.Current.Reveal() != "operator-password" {
		t.Fatal("the rollback did not keep the operator's value")
	}
}

// TestCrashMatrix stops an agent around every step (after its effect and
// before the record, and after the record), then starts another: the
// rotation finishes or is undone, and the store and the downstream agree.
func TestCrashMatrix(t *testing.T) {
	steps := []secrets.RotationStep{secrets.StepStarted, secrets.StepStaged, secrets.StepSet, secrets.StepVerified,
		secrets.StepPromoted, secrets.StepOverlapped, secrets.StepDone}
	for _, failVerify := range []bool{false, true} {
		for _, step := range append(steps, secrets.StepRollingBack, secrets.StepRolledBack) {
			for _, recorded := range []bool{false, true} {
				name := fmt.Sprintf("verifyFails=%v/%s/recorded=%v", failVerify, step, recorded)
				t.Run(name, func(t *testing.T) {
					src, db, clk := setup(t)
					db.failVerify = failVerify
					crashed := false
					hook := func(_ string, s secrets.RotationStep, rec bool) error {
						if s == step && rec == recorded && !crashed {
							crashed = true
							return errors.New("injected crash")
						}
						return nil
					}
					a := newAgent(t, src, db, clk, "a", rotate.WithStepHook(hook))
					_, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") })
					if !crashed {
						if failVerify && err == nil || !failVerify && err != nil {
							t.Fatalf("no crash at this point, and err = %v", err)
						}
						t.Skip("the rotation does not pass this point")
					}
					if !errors.Is(err, rotate.ErrCrashed) {
						t.Fatalf("err = %v, want ErrCrashed", err)
					}
					// Consumers keep working: the downstream accepts the
					// store's current or pending value.
					v, _ := src.Fetch(ctxT(t), "db")
					if acc := db.get(); acc != v.Current.Reveal() && acc != v.Pending.Reveal() {
						t.Fatal("after the crash the downstream accepts neither the current nor the pending value")
					}
					// Another agent, within the lease, keeps out.
					b := newAgent(t, src, db, clk, "b")
					if !(step.Terminal() && recorded) {
						keptOut(t, clk, src, "db", func(ctx context.Context) (rotate.Report, error) { return b.Rotate(ctx, "db") })
					}
					clk.Advance(2 * time.Minute)
					rep, err := runClocked(t, clk, func() (rotate.Report, error) { return b.Rotate(ctxT(t), "db") })
					if failVerify && !errors.Is(err, rotate.ErrRolledBack) {
						t.Fatalf("resumed: err = %v, want ErrRolledBack", err)
					}
					if !failVerify && err != nil {
						t.Fatalf("resumed: %v", err)
					}
					v = checkAgree(t, src, db, "db")
					if failVerify && v.Current.Reveal() != "initial-password" {
						t.Fatal("a failed rotation changed the current value")
					}
					if !failVerify && v.Current.Reveal() == "initial-password" {
						t.Fatal("the rotation did not finish")
					}
					if !failVerify && step.Terminal() && recorded && rep.Resumed {
						t.Fatal("a finished rotation was resumed")
					}
				})
			}
		}
	}
}

// TestTwoAgentsOneRotation starts two agents at once on one key: exactly
// one rotation happens. The agent that takes the record holds it (inside
// its first step) while the other either loses the race to save it, or
// watches it and sees the holder save it again once it goes on: either way
// the other returns ErrInProgress, and the holder finishes.
func TestTwoAgentsOneRotation(t *testing.T) {
	for round := range 10 {
		src, db, clk := setup(t)
		release := make(chan struct{})
		entered, staged := make(chan struct{}), make(chan struct{})
		var enterOnce, stageOnce sync.Once
		hook := func(_ string, s secrets.RotationStep, rec bool) error {
			switch {
			case s == secrets.StepStarted && rec:
				enterOnce.Do(func() { close(entered) })
				<-release
			case s == secrets.StepStaged && rec:
				stageOnce.Do(func() { close(staged) })
			}
			return nil
		}
		gate := make(chan struct{})
		results := make(chan error, 2)
		returned := make(chan struct{}) // closed when the first agent returns
		var retOnce sync.Once
		var wg sync.WaitGroup
		for i := range 2 {
			ag := newAgent(t, src, db, clk, fmt.Sprintf("agent-%d", i), rotate.WithStepHook(hook))
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				_, err := ag.Rotate(ctxT(t), "db")
				results <- err
				retOnce.Do(func() { close(returned) })
			}()
		}
		close(gate)
		<-entered
		var errs []error
		if awaitWait(t, clk, returned) {
			// The other agent watches the record: let the holder go on
			// until it has saved it again, then move the clock.
			close(release)
			<-staged
		} else {
			errs = append(errs, <-results) // it lost the race to save the record
			close(release)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		_, _ = runClocked(t, clk, func() (struct{}, error) { <-done; return struct{}{}, nil })
		for len(errs) < 2 {
			errs = append(errs, <-results)
		}
		if !(errs[0] == nil && errors.Is(errs[1], rotate.ErrInProgress) || errs[1] == nil && errors.Is(errs[0], rotate.ErrInProgress)) {
			t.Fatalf("round %d: the agents returned %v and %v; want one success and one ErrInProgress", round, errs[0], errs[1])
		}
		v := checkAgree(t, src, db, "db")
		if v.Previous.Reveal() != "initial-password" {
			t.Fatalf("round %d: more than one rotation ran", round)
		}
	}
}

// denying is a memory source whose writes are refused.
type denying struct{ *memory.Source }

var errDenied = fmt.Errorf("denied by policy: %w", secrets.ErrPermission)

func (denying) SaveRotation(context.Context, string, secrets.Rotation) (secrets.Rotation, error) {
	return secrets.Rotation{}, errDenied
}

func (denying) Stage(context.Context, string, secrets.StageRequest) (string, error) {
	return "", errDenied
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Run("store denies writes", func(t *testing.T) {
		src, db, clk := setup(t)
		a := newAgent(t, denying{src}, db, clk, "a")
		_, err := a.Rotate(ctxT(t), "db")
		if !errors.Is(err, secrets.ErrPermission) || errors.Is(err, rotate.ErrUnfinished) {
			t.Fatalf("err = %v", err)
		}
		checkAgree(t, src, db, "db")
	})
	t.Run("downstream unreachable", func(t *testing.T) {
		src, db, clk := setup(t)
		db.down = true
		a := newAgent(t, src, db, clk, "a")
		_, err := a.Rotate(ctxT(t), "db")
		if !errors.Is(err, errDown) {
			t.Fatalf("err = %v", err)
		}
		rec, _ := src.LoadRotation(ctxT(t), "db")
		v, _ := src.Fetch(ctxT(t), "db")
		if rec.Revision != "" || !v.Pending.IsZero() || v.Current.Reveal() != "initial-password" {
			t.Fatal("something was written")
		}
	})
	t.Run("value refused downstream", func(t *testing.T) {
		src, db, clk := setup(t)
		db.accepted = "something-else"
		a := newAgent(t, src, db, clk, "a")
		if _, err := a.Rotate(ctxT(t), "db"); !errors.Is(err, rotate.ErrNotRotatable) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		src, db, clk := setup(t)
		a := newAgent(t, src, db, clk, "a")
		if _, err := a.Rotate(ctxT(t), "nope"); !errors.Is(err, secrets.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
}
