package secrets

import (
	"log/slog"
	"slices"
)

// An Observer receives the Store's events as they happen: the outcome of
// each fetch, each candidate the validators rejected, each rotation applied,
// each reload and each retry after an authentication failure. It is the hook
// for metrics (the subpackage otelmetrics turns it into OpenTelemetry
// instruments) and for tracing or auditing of one's own; this package
// depends on no metrics library. Each field may be nil: the Store calls only
// the ones set.
//
// Events carry keys, source names, version ids and error classes, never a
// value. An event's Err, where there is one, is an error of this package,
// which never holds a value either.
//
// The Store calls an Observer's functions synchronously, after releasing its
// own lock, on the goroutine that did the work: a background refresh round,
// a first load, the caller of Refresh, the round of a Reload, a call wrapped
// by Call, WrapTool or a Transport. They may therefore be called
// concurrently, with each other and with themselves, and must be safe for
// concurrent use. Events of one key are reported in the order they were
// applied only as far as their callers are ordered: two rounds that finish
// together may report in either order.
//
// A function must not block: while it runs, the refresh, the reload or the
// call it reports on waits. Hand the event to something that copes with
// slowness (an atomic counter, a metrics SDK, a buffered channel) rather than
// do I/O. It may read the Store (Status, Statuses, Get of a loaded key) but
// must not call Close, Reload or Refresh: Close waits for the goroutine that
// reports to return, and a reload or refresh asked for from inside a round
// waits for that very round to end. A function that panics is recovered and
// logged; the event is lost.
type Observer struct {
	// Refresh reports the outcome of a fetch of a value, once applied:
	// first loads, background refreshes, Refresh and each key of a
	// Reload. A failed fetch and a rejected candidate are failures (Class
	// "rejected" for the latter, also reported to Reject); a fetch whose
	// outcome was superseded by a fresher one is not reported. In a reload
	// that fails, only the failures are reported: nothing else was
	// applied.
	Refresh func(RefreshEvent)
	// Reject reports a candidate version that a validator refused, or that
	// lacked a field the Store serves.
	Reject func(RejectEvent)
	// Rotate reports a swap applied: a value now serves another current
	// version than it did. A first load is no rotation.
	Rotate func(RotateEvent)
	// Reload reports the end of a reload round (see Store.Reload), whether
	// it applied everything or nothing. A round cut short by Close is not
	// reported.
	Reload func(ReloadEvent)
	// AuthRetry reports what came of an authentication failure in a call
	// wrapped by Call or WrapTool, or a request sent through a Transport:
	// whether a newer credential was found to retry with, and how.
	AuthRetry func(AuthRetryEvent)
}

// WithObserver adds o to the Store's observers. It may be given more than
// once; observers are called in the order they were added. See Observer for
// when its functions run and what they must not do.
func WithObserver(o Observer) Option {
	return func(c *config) error {
		c.observers = append(c.observers, o)
		return nil
	}
}

// A RefreshEvent is the outcome of one fetch of a value.
type RefreshEvent struct {
	// Key is the value's reference, without a "#field" selector: every key
	// served from the value shares its outcome.
	Key string
	// Source is the source's scheme, or DefaultSourceName.
	Source string
	// Class is "" for a success, and ErrorClass of the failure otherwise.
	Class string
	// Err is the failure, nil for a success.
	Err error
	// Initial is set for a value's first load (or a retry of a first load
	// that failed).
	Initial bool
	// Changed is set when a success found versions other than those served
	// (a rotation, or a first load); a success that found nothing new
	// leaves it unset.
	Changed bool
}

// A RejectEvent reports a candidate refused before it could be served.
type RejectEvent struct {
	// Key is the key whose validator refused the candidate, or whose field
	// the candidate lacked; it may carry a "#field" selector.
	Key string
	// Source is the source's scheme, or DefaultSourceName.
	Source string
	// Version is the candidate's current version id ("" where the source
	// has none).
	Version string
	// Err is the refusal; ErrorClass(Err) is "rejected" for a validator's.
	Err error
}

// A RotateEvent reports a value that now serves another current version.
type RotateEvent struct {
	Key    string // the value's reference, without a "#field" selector
	Source string
	From   string // the version id served before
	To     string // the version id served now
	// Adopted is set when the version now served is the rotation's pending
	// version, which the source does not call current yet: the Store
	// adopted it because the version it served failed authentication (see
	// Call).
	Adopted bool
}

// A ReloadEvent reports the end of a reload round.
type ReloadEvent struct {
	Keys    int   // values fetched
	Changed int   // values that changed, when the reload applied them
	Failed  int   // values that failed to fetch or were rejected
	Err     error // a *ReloadError when nothing was applied, nil otherwise
}

// AuthRetryOutcome says what came of an authentication failure (see
// AuthRetryEvent). Its values are short and stable, fit for a metric's
// attribute.
type AuthRetryOutcome string

// The outcomes of an authentication failure.
const (
	// AuthRetryRefreshed: a newer credential was served already, or the
	// refresh forced by the failure found one; the call is retried with it.
	AuthRetryRefreshed AuthRetryOutcome = "refreshed"
	// AuthRetryWaited: the refresh found nothing newer, and a newer
	// credential came while the call waited for one (see WithAuthWait).
	AuthRetryWaited AuthRetryOutcome = "waited"
	// AuthRetryAdopted: the credential retried with is a pending version
	// that the source does not call current yet, adopted by the Store
	// because the version served failed authentication.
	AuthRetryAdopted AuthRetryOutcome = "adopted"
	// AuthRetryGaveUp: nothing newer came within the wait; the call
	// returns its error.
	AuthRetryGaveUp AuthRetryOutcome = "gave_up"
)

// An AuthRetryEvent reports what came of an authentication failure.
type AuthRetryEvent struct {
	// Keys are the keys the failed call read (its View's keys and those
	// named by RefreshKeys), or the Transport's key.
	Keys    []string
	Outcome AuthRetryOutcome
}

// observe calls f on each observer, recovering a panic.
func (s *Store) observe(f func(*Observer)) {
	for i := range s.cfg.observers {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.log.LogAttrs(s.ctx, slog.LevelError, "secrets: an Observer panicked; event dropped")
				}
			}()
			f(&s.cfg.observers[i])
		}()
	}
}

// noteOutcome appends to logs the report of j's outcome: nil err for a
// success, and the failure otherwise (with a rejection reported as such).
// s.mu must be held; the report runs with logs, after it is released.
func (s *Store) noteOutcome(logs []func(), j *job, err error) []func() {
	if len(s.cfg.observers) == 0 {
		return logs
	}
	b := j.b
	ev := RefreshEvent{Key: b.key, Source: b.srcName, Class: ErrorClass(err), Err: err, Initial: !b.loaded, Changed: err == nil && j.changed}
	var rej *RejectEvent
	if e, ok := err.(*Error); ok && e != nil && e == j.rejected {
		rej = &RejectEvent{Key: j.rejected.Key, Source: b.srcName, Version: j.res.Versions.Current.Version(), Err: j.rejected}
	}
	return append(logs, func() {
		s.observe(func(o *Observer) {
			if o.Refresh != nil {
				o.Refresh(ev)
			}
			if rej != nil && o.Reject != nil {
				o.Reject(*rej)
			}
		})
	})
}

// noteRotation appends to logs the report of a swap of b's current version
// from one version id to another, applied from j. s.mu must be held.
func (s *Store) noteRotation(logs []func(), j *job, from, to string) []func() {
	if len(s.cfg.observers) == 0 {
		return logs
	}
	ev := RotateEvent{Key: j.b.key, Source: j.b.srcName, From: from, To: to, Adopted: j.adopting}
	return append(logs, func() {
		s.observe(func(o *Observer) {
			if o.Rotate != nil {
				o.Rotate(ev)
			}
		})
	})
}

// noteReload reports the end of a reload round. s.mu must not be held.
func (s *Store) noteReload(ev ReloadEvent) {
	s.observe(func(o *Observer) {
		if o.Reload != nil {
			o.Reload(ev)
		}
	})
}

// noteAuthRetry reports what came of an authentication failure with the
// credentials v holds for keys: changed says whether a newer version was
// found, and how says how, unless the version now served was adopted. s.mu
// must not be held.
func (s *Store) noteAuthRetry(v *View, keys []string, changed bool, how AuthRetryOutcome) {
	if len(s.cfg.observers) == 0 {
		return
	}
	switch {
	case !changed:
		how = AuthRetryGaveUp
	case s.adoptedSince(v, keys):
		how = AuthRetryAdopted
	}
	ev := AuthRetryEvent{Keys: slices.Clone(keys), Outcome: how}
	s.observe(func(o *Observer) {
		if o.AuthRetry != nil {
			o.AuthRetry(ev)
		}
	})
}

// adoptedSince reports whether one of keys now serves a pending version
// adopted in place of the version v holds: the version v holds is served as
// the previous one and is on record as having failed authentication, a
// record the Store drops as soon as the source reports no rotation in
// progress (see adoptable).
func (s *Store) adoptedSince(v *View, keys []string) bool {
	for _, k := range keys {
		ref, err := ParseRef(k)
		if err != nil {
			continue
		}
		held := v.heldVersion(k)
		if held == "" {
			continue
		}
		s.mu.Lock()
		b := s.bases[ref.base()]
		adopted := b != nil && b.loaded && b.authFailed[held] &&
			b.versions.Previous.Version() == held && b.versions.Current.Version() != held
		s.mu.Unlock()
		if adopted {
			return true
		}
	}
	return false
}
