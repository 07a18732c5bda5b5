package secrets

import "context"

// rounds coalesces calls for one kind of work (a reload, a refresh of some
// keys): a call waits for a round that starts after it, and every call that
// arrives while a round runs shares the next one. The record lives while
// rounds run; the next call after that makes a new one. Guarded by Store.mu.
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

// runRounds runs rounds while calls wait for them, and then drops the
// record.
func (s *Store) runRounds(key string, rs *rounds, work func() error) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		r := rs.next
		if r == nil {
			rs.running = false
			delete(s.rounds, key)
			s.mu.Unlock()
			return
		}
		rs.next = nil
		s.mu.Unlock()

		r.err = work()
		close(r.done)
	}
}
