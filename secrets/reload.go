package secrets

import (
	"context"
	"log/slog"
)

// Reload fetches every key the Store holds, runs the validators on the values
// that changed, and then applies all of them in one atomic swap or none of
// them: a reader never sees half a reload.
//
// Reload reads every current value from its source again, whatever the
// Store holds. Where a source fetches many keys at once (a BatchFetcher,
// such as AWS Secrets Manager's BatchGetSecretValue), the keys of that
// source go to it in one call, as forced requests (see Request.Forced): the
// source reads the current values again and keeps the previous and pending
// versions the Store holds only where it sees that the current version did
// not move. A reload of unchanged keys then costs about what a background
// refresh round costs. Every value that differs from the one served, under
// the same version id or not, goes through the validators.
//
// If any key fails to fetch or is rejected, nothing changes and the error
// is a *ReloadError naming the keys that failed (never their values); their
// failures are also recorded in their Status and back off as a failed
// refresh would. Keys whose first load failed are not part of a reload;
// they are retried in the background. A first load under way when Reload is
// called is waited for, and its value fetched again with the others.
//
// A value that changes while the reload's validators run (a concurrent
// Refresh applies a newer one, a key starts being served from it) is
// examined again against what is then served before anything is applied; a
// value applied meanwhile from a fetch newer than the reload's is kept, as
// at least as fresh. A reload that returns nil has applied every value it
// fetched, or a fresher one.
//
// Concurrent calls coalesce: a call that arrives while a round is running
// waits for the next round, which it shares with every other call that
// arrived meanwhile, so any burst of calls costs at most two rounds and each
// caller sees a round that started after it asked. The round runs on the
// Store's context; ctx bounds only this caller's wait, and its error is
// returned as it is when it ends first.
//
// Reload starts at once: WithReloadSpread delays only the reloads that
// ReloadOnSignal starts, and only those are retried after a throttle.
func (s *Store) Reload(ctx context.Context) error {
	err := s.coalesce(ctx, "reload", s.reloadOnce)
	if err == ErrClosed {
		return &Error{Op: "reload", Err: ErrClosed}
	}
	return err
}

func (s *Store) reloadOnce() error {
	if s.ctx.Err() != nil {
		return &Error{Op: "reload", Err: ErrClosed}
	}
	// A first load under way may have read the backend before the reload
	// was asked for: wait for it, and fetch its value with the others.
	s.mu.Lock()
	loading := make([]chan struct{}, 0, len(s.loads))
	for _, done := range s.loads {
		loading = append(loading, done)
	}
	s.mu.Unlock()
	for _, done := range loading {
		select {
		case <-done:
		case <-s.ctx.Done():
			return &Error{Op: "reload", Err: ErrClosed}
		}
	}
	jobs := s.reloadJobs()
	s.fetch(s.ctx, jobs, false)
	jobs, failed := s.settle(s.ctx, jobs, true)
	if s.ctx.Err() != nil {
		return &Error{Op: "reload", Err: ErrClosed}
	}
	if len(failed) > 0 {
		err := newReloadError(failed)
		s.log.LogAttrs(s.ctx, slog.LevelWarn, "secrets: reload applied nothing",
			slog.Int("keys", len(jobs)), slog.Int("failed", len(failed)), slog.String("error", err.Error()))
		s.noteReload(ReloadEvent{Keys: len(jobs), Failed: len(failed), Err: err})
		return err
	}
	changed := 0
	for _, j := range jobs {
		if j.changed {
			changed++
		}
	}
	s.log.LogAttrs(s.ctx, slog.LevelInfo, "secrets: reloaded",
		slog.Int("keys", len(jobs)), slog.Int("changed", changed))
	s.noteReload(ReloadEvent{Keys: len(jobs), Changed: changed})
	return nil
}

// reloadJobs starts a forced fetch of every loaded value: one that carries
// what the Store holds, for a BatchFetcher to build on, and that must read
// the current value again (see Request.Forced).
func (s *Store) reloadJobs() []*job {
	s.mu.Lock()
	defer s.mu.Unlock()
	jobs := make([]*job, 0, len(s.bases))
	for _, b := range s.bases {
		if b.loaded {
			j := b.newJob(s.tick(), true)
			j.req.Forced = true
			jobs = append(jobs, j)
		}
	}
	return jobs
}

// newJobs starts a fetch of each named value that is loaded.
func (s *Store) newJobs(bases []string) []*job {
	s.mu.Lock()
	defer s.mu.Unlock()
	jobs := make([]*job, 0, len(bases))
	for _, base := range bases {
		if b := s.bases[base]; b != nil && b.loaded {
			jobs = append(jobs, b.newJob(s.tick(), false))
		}
	}
	return jobs
}
