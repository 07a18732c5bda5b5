package secrets

import "sync"

// Hooks for the tests in package secrets_test.

// SetRand fixes the random fraction used for jitter and backoff.
func SetRand(s *Store, f func() float64) { s.rand = f }

// SetRoundHook sets a function called after every background refresh round.
func SetRoundHook(s *Store, f func()) { s.roundHook = f }

// Waiting returns the number of callers waiting for a first load.
func Waiting(s *Store) int64 { return s.waiting.Load() }

// ReloadWaiters returns the number of callers waiting in Reload.
func ReloadWaiters(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs := s.rounds["reload"]; rs != nil {
		return rs.waiters
	}
	return 0
}

// ReloadIdle reports whether no reload round is running or queued.
func ReloadIdle(s *Store) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.rounds["reload"]
	return rs == nil || !rs.running
}

// WritersLock returns the Store's writer mutex, so a test can hold it and
// show that reads do not take it.
func WritersLock(s *Store) sync.Locker { return &s.mu }

// Rounds returns the number of coalescing records the Store holds.
func Rounds(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rounds)
}

// Bases returns the number of values the Store records (and so polls or
// retries).
func Bases(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bases)
}
