package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// The lease keeps one agent at a time working on a key's rotation. Every
// duration of it is measured on one agent's own clock, never by comparing a
// time another machine wrote with this one's:
//
//   - The holder counts its lease from just before each save of the record
//     that succeeded (a check-and-set on the revision it holds). It saves
//     before every step that acts downstream or on the store, and runs the
//     step under a context that ends stepShare of the lease after that
//     save; it saves at least every half lease while it waits.
//   - Another agent takes a record over only after watching it keep one
//     revision for a full lease, from just after it first read it. The
//     holder, alive, saves within that time (it is bound to), so the
//     watcher sees a new revision and stops with ErrInProgress; dead or
//     stuck, its steps' contexts ended a quarter of a lease before the
//     watcher may act.

// stepShare is the part of the lease, counted from the holder's last save,
// that a step may run for; the rest (the margin) is for what happens once
// a step's context ends: a canceled statement stopping on the server, a
// request already sent being answered, clocks running at slightly
// different rates.
const stepShare = 3.0 / 4

// errLeaseBound is the cause of a step context that ended because the
// step ran to the end of its share of the lease.
var errLeaseBound = errors.New("the step reached the end of its share of the lease")

// stepBudget is how long after a save a step may act.
func (a *Agent) stepBudget() time.Duration {
	return time.Duration(float64(a.lease) * stepShare)
}

// claim marks key as being rotated by this Agent; it reports false when a
// Rotate of key is already running on it.
func (a *Agent) claim(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.active[key] {
		return false
	}
	if a.active == nil {
		a.active = map[string]bool{}
	}
	a.active[key] = true
	return true
}

func (a *Agent) unclaim(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.active, key)
}

// watch watches rec, a record at a non-terminal step, read just now, until
// it has kept its revision for a full lease on the Agent's clock, and then
// returns it: its holder stopped acting, and this Agent may take it over.
// When the record is saved again meanwhile (its holder is alive) or ctx
// ends, watch returns ErrInProgress, having changed nothing.
func (a *Agent) watch(ctx context.Context, key string, rec secrets.Rotation) (secrets.Rotation, error) {
	start := a.clock.Now()
	held := func(why error) error {
		return &Error{Key: key, Step: string(rec.Step), Class: ErrInProgress,
			Err: fmt.Errorf("rotation %s is held by %s: %w", rec.ID, rec.Owner, why)}
	}
	a.log.InfoContext(ctx, "rotation held by an agent; watching it, to take it over if it stays unchanged for a lease",
		"key", key, "rotation", rec.ID, "step", rec.Step, "owner", rec.Owner, "lease", a.lease)
	for {
		left := a.lease - a.clock.Now().Sub(start)
		if left <= 0 {
			return rec, nil
		}
		if err := sleep(ctx, a.clock, min(a.poll, left)); err != nil {
			return rec, held(fmt.Errorf("stopped watching it: %w", err))
		}
		cur, err := a.src.LoadRotation(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return rec, held(fmt.Errorf("stopped watching it: %w", ctx.Err()))
			}
			return rec, &Error{Key: key, Step: "load record", Err: err}
		}
		if cur.Revision != rec.Revision {
			return rec, held(errors.New("its holder saved it while this agent watched"))
		}
	}
}

// save writes rec as the record, with this Agent as owner, on the revision
// it was read at, and starts a new lease: the time is taken before the
// write, so the lease this Agent counts never ends after the one a watcher
// counts.
func (r *run) save(ctx context.Context, rec secrets.Rotation) error {
	now := r.a.clock.Now()
	rec.Owner, rec.Updated = r.a.owner, now
	// Expires is for people reading the record; agents do not compare it
	// with their own clocks.
	rec.Expires = now.Add(r.a.lease)
	if rec.Step.Terminal() {
		rec.Expires = time.Time{}
	}
	saved, err := r.a.src.SaveRotation(ctx, r.key, rec)
	if err != nil {
		return r.a.saveFailed(r.key, rec, err)
	}
	r.rec, r.leaseStart = saved, now
	return nil
}

// renew saves the record unchanged but for its lease. A refused save
// (another agent took the record over) fails with ErrInProgress.
func (r *run) renew(ctx context.Context) error {
	return r.save(ctx, r.rec.Clone())
}

// bounded renews the lease and runs step with act, a context that ends
// (with cause errLeaseBound) at the end of the step's share of the lease on
// the Agent's clock. step does its work, downstream and on the store, with
// act, and saves the record with ctx.
func (r *run) bounded(ctx context.Context, step func(ctx, act context.Context) error) error {
	if err := r.renew(ctx); err != nil {
		return err
	}
	act, cancel := r.actContext(ctx)
	defer cancel()
	return step(ctx, act)
}

// actContext returns a context that ends at the end of the step's share of
// the current lease.
func (r *run) actContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := r.leaseStart.Add(r.a.stepBudget()).Sub(r.a.clock.Now())
	return clockTimeout(ctx, r.a.bounds, d, errLeaseBound)
}

// stopped turns the failure err of an action done with act into the
// rotation's error when act had ended (the lease's share ran out, or ctx
// ended): the rotation stops unfinished, for this or another agent to
// resume, and is not rolled back. It returns nil when act is still live:
// err is the action's own failure.
func (r *run) stopped(act context.Context, err error) error {
	if act.Err() == nil {
		return nil
	}
	if errors.Is(context.Cause(act), errLeaseBound) {
		return r.unfinished(fmt.Errorf("%w (%v after the lease was renewed); the next agent to take the record over resumes it: %w",
			errLeaseBound, r.a.stepBudget(), err))
	}
	return r.unfinished(err)
}

// clockTimeout returns a context that ends d from now on clk, with cause.
// The cancel function stops its timer and waits for the goroutine that
// watches it.
func clockTimeout(ctx context.Context, clk secrets.Clock, d time.Duration, cause error) (context.Context, context.CancelFunc) {
	if clk == secrets.SystemClock {
		// A real deadline, which the Postgres target passes on to the
		// server as statement_timeout.
		return context.WithTimeoutCause(ctx, d, cause)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	if d <= 0 {
		cancel(cause)
		return ctx, func() {}
	}
	t := clk.NewTimer(d)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer t.Stop()
		select {
		case <-t.C():
			cancel(cause)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled); <-done }
}
