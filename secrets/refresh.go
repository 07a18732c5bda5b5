package secrets

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"
)

// Refresh fetches the given keys now, bypassing their TTL and any change
// detection, validates what changed and applies each key that passes. It is
// meant for a caller that has just seen a credential fail (an authentication
// error from a database, a 401): the source may already hold a newer one. A
// key not loaded yet is loaded. With no keys, every loaded key is refreshed.
//
// Concurrent Refresh calls for the same keys coalesce as Reload calls do:
// each caller waits for a round of fetches that started after it asked,
// shared with the callers that came meanwhile. ctx bounds the caller's wait,
// not the fetches; its error is returned as it is. Otherwise the error joins
// one *Error per key that failed; keys that failed keep their last good
// value. A nil error means that every key now serves what the fetch found,
// or what a newer fetch found. When the Store closes before the round ends,
// the error wraps ErrClosed.
func (s *Store) Refresh(ctx context.Context, keys ...string) error {
	if s.closed.Load() {
		return &Error{Op: "refresh", Err: ErrClosed}
	}
	// A fetch counts for this call only if it started after the call: a
	// first load already under way may have read the backend before.
	asked := s.tick()
	var bases []string
	var errs []error
	seen := map[string]bool{}
	var served []string // keys to check once the round is done
	for _, key := range keys {
		t, err := s.resolve(key)
		if err != nil {
			errs = append(errs, &Error{Op: "refresh", Key: key, Err: err})
			continue
		}
		base := t.base
		s.mu.Lock()
		b := s.bases[base]
		loaded := b != nil && b.loaded
		s.mu.Unlock()
		if !loaded {
			if _, err := s.load(ctx, key); err != nil {
				errs = append(errs, err)
				continue
			}
			s.mu.Lock()
			b = s.bases[base]
			// A fetch that started after the call counts only if it read
			// every version: a read of the current version alone (see
			// job.partial) leaves the others as the load found them.
			stale := b != nil && b.loaded && (b.okStart < asked || b.okPartial)
			s.mu.Unlock()
			if !stale {
				continue
			}
		}
		// Served from now on, so that the round checks its field too.
		s.ensureEntry(t)
		served = append(served, key)
		if !seen[base] {
			seen[base] = true
			bases = append(bases, base)
		}
	}
	if len(keys) == 0 {
		s.mu.Lock()
		for base, b := range s.bases {
			if b.loaded {
				bases = append(bases, base)
			}
		}
		s.mu.Unlock()
	}
	if len(bases) > 0 {
		sort.Strings(bases)
		err := s.coalesce(ctx, "refresh\x00"+strings.Join(bases, "\x00"), func() error {
			jobs := s.newJobs(bases)
			s.fetch(s.ctx, jobs, false)
			_, failed := s.settle(s.ctx, jobs, false)
			if s.ctx.Err() != nil {
				return ErrClosed
			}
			return joinKeyErrors(failed)
		})
		if err == ErrClosed {
			err = &Error{Op: "refresh", Err: ErrClosed}
		}
		if err != nil {
			errs = append(errs, err)
		} else {
			// The value was applied; a key that selects what it lacks
			// cannot be served all the same.
			snap := s.snap.Load()
			for _, key := range served {
				if e := snap.get(key); e != nil && e.err != nil {
					errs = append(errs, e.err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// refreshStale is Refresh for what an authentication failure calls for
// (WrapTool, Call, Transport). A refresh is forced for each key at most
// once per minAge, so that a credential revoked but not yet rotated costs
// the backend one fetch per key per minAge, not one per failed request; the
// first failure after a quiet spell always gets a fresh fetch, however
// recently the key was polled (a rotation may have followed the poll). A
// caller that finds a forced refresh of its key under way waits for it
// rather than going without.
func (s *Store) refreshStale(ctx context.Context, minAge time.Duration, keys []string) error {
	now := s.clock.Now()
	done := make(chan struct{})
	var due []string
	var forced []*baseState
	var wait []chan struct{}
	s.mu.Lock()
	for _, key := range keys {
		ref, err := ParseRef(key)
		if err != nil {
			continue
		}
		b := s.bases[ref.base()]
		switch {
		case b == nil:
			due = append(due, key)
		case !b.loaded:
			// A first load that failed is retried at its backoff, not
			// once per failed call.
			if !now.Before(b.next) {
				due = append(due, key)
			}
		case b.forcing == done:
			due = append(due, key)
		case b.forcing != nil:
			wait = append(wait, b.forcing)
		case b.lastForced.IsZero() || now.Sub(b.lastForced) >= minAge:
			b.lastForced, b.forcing = now, done
			forced = append(forced, b)
			due = append(due, key)
		}
	}
	s.mu.Unlock()
	var err error
	if len(due) > 0 {
		err = s.Refresh(ctx, due...)
	}
	s.mu.Lock()
	for _, b := range forced {
		if b.forcing == done {
			b.forcing = nil
		}
	}
	s.mu.Unlock()
	close(done)
	for _, w := range wait {
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func joinKeyErrors(m map[string]*Error) error {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	errs := make([]error, len(keys))
	for i, k := range keys {
		errs[i] = m[k]
	}
	return errors.Join(errs...)
}
