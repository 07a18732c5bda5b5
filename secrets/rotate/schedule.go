package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// WithRetry sets how long Run waits after a rotation that failed, was
// rolled back or was kept out by another agent before it tries again
// (default one minute).
func WithRetry(d time.Duration) Option {
	return func(a *Agent) error {
		if d <= 0 {
			return fmt.Errorf("rotate: WithRetry(%v): must be positive", d)
		}
		a.retry = d
		return nil
	}
}

// Run rotates key whenever its current version is older than maxAge, until
// ctx ends, and returns ctx's error. The age is taken from the rotation
// record in the store, so agents restarted or running elsewhere agree on it;
// a key never rotated by an agent is rotated at once. Each rotation is
// brought forward by a random part of jitter (0 for none), so that keys and
// agents started together spread out. A rotation that fails is logged and
// tried again after the retry interval (WithRetry). For one rotation, call
// Rotate.
func (a *Agent) Run(ctx context.Context, key string, maxAge, jitter time.Duration) error {
	if maxAge <= 0 || jitter < 0 || jitter >= maxAge {
		return fmt.Errorf("rotate: Run(%v, %v): want 0 <= jitter < maxAge", maxAge, jitter)
	}
	for {
		due := a.due(ctx, key, maxAge, jitter)
		if d := due.Sub(a.clock.Now()); d > 0 {
			if err := sleep(ctx, a.clock, d); err != nil {
				return err
			}
		}
		_, err := a.Rotate(ctx, key)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			level := "rotation failed; will try again"
			if errors.Is(err, ErrInProgress) {
				level = "another rotation is in progress; will try again"
			}
			a.log.WarnContext(ctx, level, "key", key, "error", err.Error(), "retry", a.retry)
			if err := sleep(ctx, a.clock, a.retry); err != nil {
				return err
			}
		}
	}
}

// due returns when key is next to be rotated.
func (a *Agent) due(ctx context.Context, key string, maxAge, jitter time.Duration) time.Time {
	now := a.clock.Now()
	rec, err := a.src.LoadRotation(ctx, key)
	if err != nil || rec.Step != "done" {
		return now // never rotated, or unfinished: Rotate finishes or reports it
	}
	var early time.Duration
	if jitter > 0 {
		early = time.Duration(randIndex(int(jitter)))
	}
	return rec.Updated.Add(maxAge - early)
}
