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
// versions v holds for keys (so that a pending version of their value may
// be adopted, see adoptable), forces a refresh of keys unless a newer
// version is already served, and, if nothing newer comes of it, waits up to
// limit for one. It reports whether any of keys now serves a version other
// than v's. With a limit, the refresh is bounded by it too.
func (s *Store) afterAuthFailure(ctx context.Context, v *View, keys []string, limit time.Duration) (changed bool) {
	how := AuthRetryRefreshed
	defer func() { s.noteAuthRetry(v, keys, changed, how) }()
	v.pin(keys)
	s.noteAuthFailure(v, keys)
	if v.changedSince(keys) {
		return true
	}
	var deadline time.Time
	if limit > 0 {
		deadline = s.clock.Now().Add(limit)
	}
	if err := s.boundedRefresh(ctx, keys, deadline); err != nil && ctx.Err() == nil {
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
	how = AuthRetryWaited
	changed = s.awaitNewer(ctx, v, keys, deadline)
	if !changed {
		v.mu.Lock()
		v.waited = true
		v.mu.Unlock()
	}
	return changed
}

// boundedRefresh forces a refresh of keys as refreshStale does, and returns
// when it ends, when ctx is done, when the Store closes or, if deadline is
// not zero, when the Store's clock passes it: a source that hangs holds up
// the refresh, not the caller past its limit.
func (s *Store) boundedRefresh(ctx context.Context, keys []string, deadline time.Time) error {
	if deadline.IsZero() {
		return s.refreshStale(ctx, s.cfg.backoffMin, keys)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.refreshStale(rctx, s.cfg.backoffMin, keys) }()
	t := s.clock.NewTimer(deadline.Sub(s.clock.Now()))
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C():
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
	// Refresh waits for its round with rctx: canceled, it returns at once,
	// leaving the round to the Store.
	cancel()
	return <-done
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
		force, ok := s.nextForce(keys)
		if ok && force.Before(wake) {
			wake = force
		}
		t := s.clock.NewTimer(wake.Sub(now))
		select {
		case <-published:
			t.Stop()
		case <-t.C():
			if ok && !s.clock.Now().Before(force) {
				// The evidence is given again: a fetch that found no
				// pending version since has set it aside.
				s.noteAuthFailure(v, keys)
				_ = s.boundedRefresh(ctx, keys, deadline)
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

// noteAuthFailure records that the version v holds of the value keys select
// from failed authentication, if that version is still the one served. A
// failure tells which value failed only when keys select from one value: a
// call that read a database password and an API key, and failed, records
// nothing.
func (s *Store) noteAuthFailure(v *View, keys []string) {
	base, id := "", ""
	for _, k := range keys {
		ref, err := ParseRef(k)
		if err != nil {
			continue
		}
		h := v.heldVersion(k)
		if h == "" {
			continue
		}
		if base != "" && base != ref.base() {
			return
		}
		base, id = ref.base(), h
	}
	if base == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.bases[base]; b != nil && b.loaded && b.versions.Current.Version() == id {
		if b.authFailed == nil {
			b.authFailed = map[string]bool{}
		}
		b.authFailed[id] = true
	}
}

// nextForce returns the earliest time at which a forced refresh of one of
// keys is allowed again, and false when none of them can be refreshed (no
// key parses).
func (s *Store) nextForce(keys []string) (time.Time, bool) {
	now := s.clock.Now()
	var next time.Time
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		ref, err := ParseRef(k)
		if err != nil {
			continue
		}
		at := now
		switch b := s.bases[ref.base()]; {
		case b == nil:
		case !b.loaded:
			// A failed first load is retried at its backoff, and no
			// sooner than a minimum backoff from now.
			at = now.Add(s.cfg.backoffMin)
			if b.next.After(at) {
				at = b.next
			}
		case !b.lastForced.IsZero():
			at = b.lastForced.Add(s.cfg.backoffMin)
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if next.IsZero() {
		return time.Time{}, false
	}
	if next.Before(now) {
		next = now
	}
	return next, true
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

// adoptable returns the versions to examine for a value whose source
// returned v, and whether they adopt v's pending version. When the version
// served failed authentication and the source still calls it current while
// it holds a pending version, the pending one is the candidate and the
// failed one its previous: a rotation in progress may have set the pending
// one downstream already. A pending version that failed too is not adopted,
// but one already adopted stays: with both failing, the Store keeps what it
// serves rather than flap between them. s.mu must be held.
func (b *baseState) adoptable(v Versions) (Versions, bool) {
	if len(b.authFailed) == 0 || v.Pending.IsZero() || !b.authFailed[v.Current.Version()] {
		return v, false
	}
	if b.authFailed[v.Pending.Version()] && b.versions.Current.Version() != v.Pending.Version() {
		return v, false
	}
	return Versions{Current: v.Pending, Previous: v.Current, RefreshBy: v.RefreshBy}, true
}
