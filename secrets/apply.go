package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// maxSettle bounds how often settle examines a job again because the value
// it was examined against changed before its outcome could be applied.
const maxSettle = 5

// errMoved is the failure of a job whose value kept changing under it.
var errMoved = fmt.Errorf("%w: the value kept changing while its candidate was being validated", ErrTransient)

// settle examines the fetched jobs and applies their outcome. A verdict
// reached against a value that has changed since (another job swapped it, or
// a key started being served from it) is not applied: the job is examined
// again against the value now served. A job whose fetch overlapped the one
// whose value is served, and disagrees with it, cannot tell which read is
// newer: its value is fetched again. Either happens at most maxSettle times.
// With atomic set, either every job's outcome is applied in one snapshot or
// none is, and only the failures are recorded. It returns the jobs as
// finally applied (refetched ones replaced) and the errors of the failed
// jobs by key.
func (s *Store) settle(ctx context.Context, jobs []*job, atomic bool) ([]*job, map[string]*Error) {
	failed := map[string]*Error{}
	pending := jobs
	for attempt := 1; ; attempt++ {
		s.examine(ctx, pending)
		apply := pending
		if atomic {
			apply = jobs
		}
		again := s.apply(apply, atomic, attempt == maxSettle, failed)
		if len(again) == 0 {
			return jobs, failed
		}
		pending = s.refetch(ctx, jobs, again)
	}
}

// refetch replaces, in jobs and in again, each job of again marked for a
// new fetch with a new job, fetched now. It returns again so updated.
func (s *Store) refetch(ctx context.Context, jobs, again []*job) []*job {
	var fresh []*job
	s.mu.Lock()
	for i, j := range again {
		if !j.refetch {
			continue
		}
		nj := j.b.newJob(s.tick(), false)
		for k := range jobs {
			if jobs[k] == j {
				jobs[k] = nj
			}
		}
		again[i] = nj
		fresh = append(fresh, nj)
	}
	s.mu.Unlock()
	if len(fresh) > 0 {
		s.fetch(ctx, fresh, false)
	}
	return again
}

// apply records the outcome of jobs and publishes it; it returns the jobs
// it did not apply because their verdict no longer holds (to examine again)
// or their value's order is in doubt (marked refetch). Failures are added
// to failed. With last set, such jobs fail with errMoved instead, and their
// values are refreshed again soon.
//
// A job whose fetch ended before the served value's fetch started is
// dropped: the value served is fresher, unless that fetch read the current
// version only (see overtaken). A success whose fetch started after
// the latest recorded failure ended clears that failure; an older one is
// applied all the same (the failure does not make its value wrong) and the
// failure's record is kept.
func (s *Store) apply(jobs []*job, atomic, last bool, failed map[string]*Error) (again []*job) {
	var logs []func()
	defer func() {
		for _, l := range logs {
			l()
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	closing := s.closed.Load()
	var fails, oks []*job
	touched := map[*baseState]bool{}
	giveUp := func(j *job) {
		failed[j.b.key] = &Error{Op: "validate", Key: j.b.key, Err: errMoved}
		logs = s.noteOutcome(logs, j, failed[j.b.key])
		j.b.expedite(now, s.cfg.backoffMin)
		touched[j.b] = true
	}
	for _, j := range jobs {
		b := j.b
		j.refetch = false
		switch {
		case s.bases[b.key] != b:
			// Forgotten meanwhile.
		case j.err != nil && closing && errors.Is(j.err, ErrClosed):
		case j.rejected != nil && (j.verdictGen != b.gen || j.keysGen != b.keysGen):
			// Refused against a value no longer served: the candidate may
			// be what is served now, or be judged otherwise now.
			if last {
				giveUp(j)
				continue
			}
			again = append(again, j)
		case j.overtaken():
			// The value served is fresher.
		case j.err != nil || j.rejected != nil:
			failed[b.key] = j.keyError()
			if j.done < b.okStart {
				// A newer fetch succeeded, but read the current version
				// only: this failure is still the caller's answer, while
				// the value's record keeps the newer success.
				logs = s.noteOutcome(logs, j, failed[b.key])
				continue
			}
			fails = append(fails, j)
		case j.res.Unchanged && j.gen != b.gen:
			// The source compared with versions the Store no longer
			// serves: ask again.
			b.expedite(now, s.cfg.backoffMin)
		case j.verdictGen != b.gen || j.keysGen != b.keysGen:
			if last {
				giveUp(j)
				continue
			}
			again = append(again, j)
		case b.loaded && j.changed && (j.start < b.okDone || j.partial && j.gen != b.gen):
			// This fetch and the one whose value is served overlapped and
			// disagree, or that one read the current version only (see
			// overtaken): either read may be the newer. A partial answer
			// built on versions no longer served is read again in full.
			if last {
				giveUp(j)
				continue
			}
			j.refetch = true
			again = append(again, j)
		default:
			oks = append(oks, j)
		}
	}
	for _, j := range fails {
		b := j.b
		if j.done > b.failDone {
			b.failDone = j.done
		}
		b.failures++
		ke := j.keyError()
		b.lastErr, b.lastOp, b.lastErrAt = j.failure(), ke.Op, now
		b.next = now.Add(s.backoff(b.failures))
		if j.start < b.noticeAt {
			b.expedite(now, s.cfg.backoffMin)
		}
		touched[b] = true
		logs = append(logs, s.failureLog(b.key, b.loaded, ke, b.failures, b.next.Sub(now)))
		logs = s.noteOutcome(logs, j, ke)
	}
	if atomic && (len(failed) > 0 || len(again) > 0) {
		if len(failed) > 0 {
			again = nil // the whole reload has failed: nothing to try again
		}
		s.publishTouchedLocked(touched)
		return again
	}
	var changes []Change
	var reloadPhase phase
	for _, j := range oks {
		b := j.b
		first := !b.loaded
		if j.changed || j.start > b.okStart {
			b.okStart, b.okDone, b.okPartial = j.start, j.done, j.partial
		}
		if j.changed {
			old, wasLoaded := b.versions, b.loaded
			b.setVersions(j.res.Versions)
			if wasLoaded && !sameServed(old, b.versions) {
				for key := range b.keys {
					changes = append(changes, Change{Key: key, OldVersion: old.Current.Version(), NewVersion: b.versions.Current.Version()})
				}
				key, from, to := b.key, old.Current.Version(), b.versions.Current.Version()
				logs = append(logs, func() {
					s.log.LogAttrs(s.ctx, slog.LevelInfo, "secrets: rotated",
						slog.String("key", key), slog.String("from", from), slog.String("to", to))
				})
				logs = s.noteRotation(logs, j, from, to)
			}
		}
		if !j.res.Unchanged && !j.partial && j.raw.Pending.IsZero() {
			// No rotation in progress: a failure reported before it
			// is no evidence against a pending version staged later.
			// A partial answer did not look for pending versions.
			b.authFailed = nil
		}
		logs = s.noteOutcome(logs, j, nil)
		b.loaded = true
		b.fetchedAt = now
		if j.start > b.failDone {
			// No failure has been recorded since this fetch began: the
			// value is healthy again.
			b.failures, b.lastErr, b.lastOp, b.lastErrAt = 0, nil, "", time.Time{}
			b.next = now.Add(s.pollDelay(first, atomic, &reloadPhase))
			if by := j.res.Versions.RefreshBy; !by.IsZero() && by.Before(b.next) {
				// The source asked to be read again sooner (a lease's
				// renewal point, a scheduled rotation); never sooner than
				// a minimum backoff, so that a date already past costs
				// one fetch per backoff, not a busy loop.
				b.next = by
				if soon := now.Add(s.cfg.backoffMin); b.next.Before(soon) {
					b.next = soon
				}
			}
		}
		if j.start < b.noticeAt {
			// A change was signalled after this fetch began: it may have
			// read the value from before the change.
			b.expedite(now, s.cfg.backoffMin)
		}
		touched[b] = true
	}
	s.publishTouchedLocked(touched)
	if len(changes) > 0 {
		s.notifyLocked(changes)
	}
	return again
}

// overtaken reports whether the value j.b serves was read by a fetch that
// started after j's ended and that read all that j read: j has nothing to
// add. A read of the current version only (b.okPartial; see job.partial)
// overtakes what disagrees with it on the current version, and what holds
// the values served already, but not a read that agrees on the current
// version and holds other previous or pending versions (apply reads that
// value again to settle which is newer), nor a failed read: what the
// failed read was to look at, the partial one did not. s.mu must be held.
func (j *job) overtaken() bool {
	b := j.b
	switch {
	case j.done >= b.okStart:
		return false
	case !b.okPartial, j.err == nil && j.res.Unchanged:
		return true
	case j.err != nil:
		return false
	}
	v := j.res.Versions
	return !v.Current.sameAs(b.versions.Current) || sameValues(v, b.versions)
}

// publishTouchedLocked publishes the entries of the touched values, and
// wakes the scheduler if one of them is now due before the time it sleeps
// until: a first load (due a TTL from now) does not wake it, so loading n
// keys costs no pass over the n values.
func (s *Store) publishTouchedLocked(touched map[*baseState]bool) {
	if len(touched) == 0 {
		return
	}
	bs := make([]*baseState, 0, len(touched))
	wake := false
	for b := range touched {
		bs = append(bs, b)
		if s.wakeAt.IsZero() || b.next.Before(s.wakeAt) {
			wake = true
		}
	}
	s.publishLocked(bs...)
	if wake {
		s.nudge()
	}
}

// failureLog returns the log call for a failed refresh, to be made after the
// Store's lock is released: a slow log handler must not hold up writers.
func (s *Store) failureLog(key string, loaded bool, err *Error, failures int, retry time.Duration) func() {
	return func() {
		s.log.LogAttrs(s.ctx, slog.LevelWarn, "secrets: refresh failed; serving last good value",
			slog.String("key", key),
			slog.Bool("loaded", loaded),
			slog.String("error", err.Error()),
			slog.Int("failures", failures),
			slog.Duration("retry_in", retry))
	}
}

// ttlJittered returns the TTL less a random part of up to jitter·TTL.
func (s *Store) ttlJittered() time.Duration {
	return s.cfg.ttl - time.Duration(s.rand()*s.cfg.jitter*float64(s.cfg.ttl))
}

// backoff returns the wait after the n-th consecutive failure: full jitter
// over [0, min(max, min·2ⁿ⁻¹)).
func (s *Store) backoff(n int) time.Duration {
	ceil := s.cfg.backoffMax
	if n < 63 {
		if d := s.cfg.backoffMin << (n - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	return time.Duration(s.rand() * float64(ceil))
}
