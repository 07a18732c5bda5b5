package secrets

import (
	"context"
	"log/slog"
)

// rounds coalesces calls for one kind of work (a reload, a refresh of some
// keys): a call waits for a round that starts after it, and every call that
// arrives while a round runs shares the next one. Guarded by Store.mu.
type rounds struct {
	running bool   // a goroutine is running rounds
	next    *round // the round that calls arriving now will share
	waiters int    // calls waiting; tests observe it
}

type round struct {
	done chan struct{}
	err  error
}

// coalesce runs work in a round that starts after this call, on the Store's
// context, and waits for it with ctx. Concurrent calls with the same key share
// rounds, so any burst of them costs at most two.
func (s *Store) coalesce(ctx context.Context, key string, work func() error) error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return ErrClosed
	}
	rs := s.rounds[key]
	if rs == nil {
		rs = &rounds{}
		s.rounds[key] = rs
	}
	if rs.next == nil {
		rs.next = &round{done: make(chan struct{})}
	}
	r := rs.next
	if !rs.running {
		rs.running = true
		s.wg.Add(1)
		go s.runRounds(key, rs, work)
	}
	rs.waiters++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		rs.waiters--
		s.mu.Unlock()
	}()

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.done:
		return r.err
	}
}

// runRounds runs rounds while calls wait for them.
func (s *Store) runRounds(key string, rs *rounds, work func() error) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		r := rs.next
		if r == nil {
			rs.running = false
			if rs.waiters == 0 {
				delete(s.rounds, key)
			}
			s.mu.Unlock()
			return
		}
		rs.next = nil
		s.mu.Unlock()

		r.err = work()
		close(r.done)
	}
}

// Reload fetches every key the Store holds, runs the validators on the values
// that changed, and then applies all of them in one atomic swap or none of
// them: a reader never sees half a reload. If any key fails to fetch or is
// rejected, nothing changes and the error is a *ReloadError naming the keys
// that failed (never their values); their failures are also recorded in their
// Status and back off as a failed refresh would. Keys whose first load failed
// are not part of a reload; the next Get retries them.
//
// Concurrent calls coalesce: a call that arrives while a round is running
// waits for the next round, which it shares with every other call that
// arrived meanwhile, so any burst of calls costs at most two rounds and each
// caller sees a round that started after it asked. The round runs on the
// Store's context; ctx bounds only this caller's wait, and its error is
// returned as it is when it ends first.
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
	if s.ctx.Err() != nil {
		return &Error{Op: "reload", Err: ErrClosed}
	}
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
