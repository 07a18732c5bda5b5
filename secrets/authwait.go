package secrets

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// DefaultAuthWait is how long a wrapped call waits for a newer credential
// after an authentication failure that a refresh did not cure (see
// WithAuthWait).
const DefaultAuthWait = 5 * time.Second

// WithAuthWait sets how long a call wrapped by WrapTool or Call, or a request
// sent through a Transport, waits for a newer credential after it failed
// authentication and a refresh found nothing newer (default
// DefaultAuthWait); zero makes it fail at once, as it did before the wait
// existed.
//
// The wait covers rotations that change a credential with no overlap: a
// database password changed by ALTER ROLE a moment before the new one is
// stored (Vault's static roles, AWS's single-user scheme, an operator by
// hand), or stored a moment before the database takes it, when a validator
// rejects it until then. While calls wait, the keys they read are refreshed
// again each time a forced refresh is allowed (once per minimum backoff, see
// WithBackoff), shared by every waiting call: a credential revoked with no
// successor costs the backend one fetch per key per minimum backoff
// whatever the number of calls, and each call fails after the wait with its
// own error. The wait ends early when a newer version of any key the call
// read is applied, when the call's context is done, or when the Store
// closes. Size it to the longest gap between the two halves of a rotation
// that users should not see, and well below the callers' own timeouts.
func WithAuthWait(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("secrets: WithAuthWait(%v): the wait cannot be negative", d)
		}
		c.authWait = d
		return nil
	}
}

// afterAuthFailure is what a call does when it failed authentication with the
// credentials it read through v: it records the failure against the
// versions v holds for keys (so that a pending version of their values may
// be adopted, see Versions), forces a refresh of keys unless a newer version
// is already served, and, if nothing newer comes of it, waits up to limit
// for one. It reports whether any of keys now serves a version other than
// v's.
func (s *Store) afterAuthFailure(ctx context.Context, v *View, keys []string, limit time.Duration) bool {
	s.noteAuthFailure(v, keys)
	if v.changedSince(keys) {
		return true
	}
	if err := s.refreshStale(ctx, s.cfg.backoffMin, keys); err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "secrets: refresh after an authentication failure failed",
			slog.Any("keys", keys), slog.String("error", err.Error()))
	}
	if v.changedSince(keys) {
		return true
	}
	v.mu.Lock()
	waited := v.waited
	v.mu.Unlock()
	if limit <= 0 || waited {
		return false
	}
	if s.awaitNewer(ctx, v, keys, s.clock.Now().Add(limit)) {
		return true
	}
	v.mu.Lock()
	v.waited = true
	v.mu.Unlock()
	return false
}

// awaitNewer waits until one of keys serves a version other than v's, the
// deadline passes, ctx is done or the Store closes, forcing a refresh of
// keys each time one is allowed. It reports whether a newer version came.
func (s *Store) awaitNewer(ctx context.Context, v *View, keys []string, deadline time.Time) bool {
	s.log.LogAttrs(ctx, slog.LevelInfo, "secrets: waiting for a newer credential after an authentication failure",
		slog.Any("keys", keys), slog.Time("until", deadline))
	for {
		published := s.nextPublish()
		if v.changedSince(keys) {
			return true
		}
		now := s.clock.Now()
		if !now.Before(deadline) {
			return false
		}
		wake := deadline
		force := s.nextForce(keys)
		if force.Before(wake) {
			wake = force
		}
		t := s.clock.NewTimer(wake.Sub(now))
		select {
		case <-published:
			t.Stop()
		case <-t.C():
			if !s.clock.Now().Before(force) {
				_ = s.refreshStale(ctx, s.cfg.backoffMin, keys)
			}
		case <-ctx.Done():
			t.Stop()
			return v.changedSince(keys)
		case <-s.ctx.Done():
			t.Stop()
			return false
		}
	}
}

// noteAuthFailure records, for each value keys select, that the version v
// holds of it failed authentication, if that version is still the one
// served.
func (s *Store) noteAuthFailure(v *View, keys []string) {
	held := make(map[string]string, len(keys)) // base → version id v holds
	for _, k := range keys {
		ref, err := ParseRef(k)
		if err != nil {
			continue
		}
		if id := v.heldVersion(k); id != "" {
			held[ref.base()] = id
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for base, id := range held {
		if b := s.bases[base]; b != nil && b.loaded && b.versions.Current.Version() == id {
			b.failedAuth = id
		}
	}
}

// nextForce returns the earliest time at which a forced refresh of one of
// keys is allowed again: now for a value never forced or not loaded.
func (s *Store) nextForce(keys []string) time.Time {
	now := s.clock.Now()
	next := time.Time{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		ref, err := ParseRef(k)
		if err != nil {
			continue
		}
		b := s.bases[ref.base()]
		switch {
		case b == nil || !b.loaded:
			// Loaded by each forced refresh: once per minimum backoff.
			return now.Add(s.cfg.backoffMin)
		case b.lastForced.IsZero():
			return now
		}
		at := b.lastForced.Add(s.cfg.backoffMin)
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if next.IsZero() || next.Before(now) {
		return now
	}
	return next
}

// nextPublish returns a channel closed when the Store next publishes a
// snapshot.
func (s *Store) nextPublish() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.published == nil {
		s.published = make(chan struct{})
	}
	return s.published
}

// adoptable returns the versions to consider for a value whose source
// returned v: when the version served failed authentication and the source
// still calls it current while it holds a pending version, the pending one
// is the candidate, the failed one its previous. Otherwise v. s.mu must be
// held.
func (b *baseState) adoptable(v Versions) Versions {
	if b.failedAuth == "" || v.Pending.IsZero() || v.Current.Version() != b.failedAuth {
		return v
	}
	return Versions{Current: v.Pending, Previous: v.Current, RefreshBy: v.RefreshBy}
}
