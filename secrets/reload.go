package secrets

import (
	"context"
	"log/slog"
)

// reloadState coalesces Reload calls. Guarded by Store.mu.
type reloadState struct {
	running bool         // the reload goroutine is running
	next    *reloadRound // the round that callers arriving now will share
	waiters int          // callers waiting in Reload; tests observe it
}

type reloadRound struct {
	done chan struct{}
	err  error
}

// Reload fetches every key the Store holds, runs the validators on the values
// that changed, and then applies all of them in one atomic swap or none of
// them: a reader never sees half a reload. If any key fails to fetch or is
// rejected, nothing changes and the error is a *ReloadError naming the keys
// that failed (never their values); their failures are also recorded in their
// Status and back off as a failed refresh would.
//
// Concurrent calls coalesce: a call that arrives while a round is running
// waits for the next round, which it shares with every other call that
// arrived meanwhile, so any burst of calls costs at most two rounds and each
// caller sees a round that started after it asked. The round runs on the
// Store's context; ctx bounds only this caller's wait.
func (s *Store) Reload(ctx context.Context) error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return &Error{Op: "reload", Err: ErrClosed}
	}
	if s.reload.next == nil {
		s.reload.next = &reloadRound{done: make(chan struct{})}
	}
	r := s.reload.next
	if !s.reload.running {
		s.reload.running = true
		s.wg.Add(1)
		go s.reloadLoop()
	}
	s.reload.waiters++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.reload.waiters--
		s.mu.Unlock()
	}()

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.done:
		return r.err
	}
}

// reloadLoop runs reload rounds while callers wait for them.
func (s *Store) reloadLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		r := s.reload.next
		if r == nil {
			s.reload.running = false
			s.mu.Unlock()
			return
		}
		s.reload.next = nil
		s.mu.Unlock()

		r.err = s.reloadOnce()
		close(r.done)
	}
}

func (s *Store) reloadOnce() error {
	if s.ctx.Err() != nil {
		return &Error{Op: "reload", Err: ErrClosed}
	}
	s.mu.Lock()
	bases := make([]string, 0, len(s.bases))
	for base, b := range s.bases {
		if b.loaded {
			bases = append(bases, base)
		}
	}
	s.mu.Unlock()
	jobs := s.newJobs(bases)
	s.fetch(s.ctx, jobs, false)
	s.examine(s.ctx, jobs)
	failed := s.apply(jobs, true)
	if len(failed) > 0 {
		err := newReloadError(failed)
		s.log.LogAttrs(s.ctx, slog.LevelWarn, "secrets: reload applied nothing",
			slog.Int("keys", len(jobs)), slog.Int("failed", len(failed)), slog.String("error", err.Error()))
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
	return nil
}
