package secrets

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// KeyStatus describes one key the Store serves. It holds version ids and
// times, never values.
type KeyStatus struct {
	Key             string
	Source          string // the source's scheme, or DefaultSourceName
	Loaded          bool   // a value has been fetched at least once
	Version         string // current version id
	PreviousVersion string // "" where there is no previous version
	PendingVersion  string // "" unless a rotation has staged a version
	FetchedAt       time.Time
	Age             time.Duration // since FetchedAt
	NextRefresh     time.Time     // next background poll, or earliest retry of a failed first load
	LastError       error         // the last failure, nil after a success
	LastErrorAt     time.Time
	Failures        int  // consecutive failures; 0 after a success
	Stale           bool // older than the maximum staleness: Get fails closed
	Required        bool // named by WithRequired: Health checks it
}

// Status returns the status of key, as passed to Get, and whether the Store
// knows the key.
func (s *Store) Status(key string) (KeyStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, err := ParseRef(key)
	if err != nil {
		return KeyStatus{}, false
	}
	b := s.bases[ref.base()]
	if b == nil {
		return KeyStatus{}, false
	}
	field, ok := b.keys[key]
	if !ok {
		return KeyStatus{}, false
	}
	return s.statusLocked(b, key, field, s.clock.Now()), true
}

// Statuses returns the status of every key the Store serves, sorted by key.
func (s *Store) Statuses() []KeyStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var out []KeyStatus
	for _, b := range s.bases {
		for key, field := range b.keys {
			out = append(out, s.statusLocked(b, key, field, now))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (s *Store) statusLocked(b *baseState, key, field string, now time.Time) KeyStatus {
	st := KeyStatus{
		Key:         key,
		Source:      b.srcName,
		Loaded:      b.loaded,
		NextRefresh: b.next,
		LastError:   b.lastErr,
		LastErrorAt: b.lastErrAt,
		Failures:    b.failures,
		Required:    s.required[key],
	}
	if b.lastErr != nil {
		st.LastError = &Error{Op: b.op(), Key: key, Err: b.lastErr}
	}
	if b.loaded {
		v, err := b.fields().field(field)
		if err != nil && st.LastError == nil {
			st.LastError = &Error{Op: "field", Key: key, Err: err}
		}
		st.Version = v.Current.Version()
		st.PreviousVersion = v.Previous.Version()
		st.PendingVersion = v.Pending.Version()
		st.FetchedAt = b.fetchedAt
		st.Age = now.Sub(b.fetchedAt)
		st.Stale = s.cfg.maxStale > 0 && st.Age > s.cfg.maxStale
	}
	return st
}

// Health reports whether the Store can serve the keys that matter: those
// named by WithRequired, or, without it, every key the Store knows (see
// Forget). It returns nil when each has a value within the maximum
// staleness, and otherwise an error joining one *Error per key that cannot
// be served (not loaded, a selected field missing, or stale). A key whose
// refreshes fail while its last good value may still be served counts as
// healthy: its Status tells of the failures. Health does no I/O, so it suits
// a readiness probe; ctx is accepted for a probe's signature.
func (s *Store) Health(ctx context.Context) error {
	if s.closed.Load() {
		return &Error{Op: "health", Err: ErrClosed}
	}
	snap := s.snap.Load()
	var now time.Time
	if s.cfg.maxStale > 0 {
		now = s.clock.Now()
	}
	var errs []error
	for _, k := range s.healthKeys(snap) {
		e := snap.get(k)
		switch {
		case e == nil:
			errs = append(errs, &Error{Op: "health", Key: k, Err: fmt.Errorf("%w: not loaded", ErrNotFound)})
		case e.err != nil:
			errs = append(errs, e.err)
		case s.cfg.maxStale > 0 && now.Sub(e.fetchedAt) > s.cfg.maxStale:
			errs = append(errs, s.staleError(k, now.Sub(e.fetchedAt), e.lastErr))
		}
	}
	return errors.Join(errs...)
}
