package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// A job is one fetch of one value, from the moment it is asked for until its
// outcome is applied.
type job struct {
	b   *baseState
	seq uint64
	req Request

	res     Result
	err     error    // fetch or validation failure; the class sentinel is in the chain
	changed bool     // res holds versions other than those served
	against Versions // the versions served when the job was examined
	keyErr  *Error
}

// fetch runs the jobs against their sources, at most cfg.concurrency at once,
// batching where a source can. With conditional set, jobs carry what the
// Store holds so a source may answer Unchanged.
func (s *Store) fetch(ctx context.Context, jobs []*job, conditional bool) {
	bySrc := map[Source][]*job{}
	var order []Source
	for _, j := range jobs {
		if !conditional {
			j.req.Known = Versions{}
		}
		if _, ok := bySrc[j.b.src]; !ok {
			order = append(order, j.b.src)
		}
		bySrc[j.b.src] = append(bySrc[j.b.src], j)
	}
	g := new(errgroup.Group)
	g.SetLimit(s.cfg.concurrency)
	for _, src := range order {
		js := bySrc[src]
		if bf, ok := src.(BatchFetcher); ok && len(js) > 1 {
			g.Go(func() error {
				reqs := make([]Request, len(js))
				for i, j := range js {
					reqs[i] = j.req
				}
				res := s.callBatch(ctx, bf, reqs)
				for i, j := range js {
					j.res = res[i]
				}
				return nil
			})
			continue
		}
		cd, _ := src.(ChangeDetector)
		for _, j := range js {
			g.Go(func() error {
				if conditional && cd != nil && !j.req.Known.Current.IsZero() {
					j.res = s.callDetect(ctx, cd, j.req)
				} else {
					j.res = s.callFetch(ctx, src, j.req.Key)
				}
				return nil
			})
		}
	}
	_ = g.Wait()
	for _, j := range jobs {
		j.check(s.ctx)
	}
}

// check classifies a job's result.
func (j *job) check(storeCtx context.Context) {
	r := &j.res
	switch {
	case r.Err != nil:
		j.err = classify(storeCtx, r.Err)
	case r.Unchanged && j.req.Known.Current.IsZero():
		j.err = fmt.Errorf("%w: source answered unchanged for a value it was not shown", ErrInvalid)
	case r.Unchanged:
	case r.Versions.Current.IsZero():
		j.err = fmt.Errorf("%w: source returned no current version", ErrInvalid)
	}
}

// classify keeps a source's classified error and maps the context's errors.
func classify(storeCtx context.Context, err error) error {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrPermission),
		errors.Is(err, ErrTransient), errors.Is(err, ErrInvalid), errors.Is(err, ErrClosed):
		return err
	case storeCtx.Err() != nil:
		return ErrClosed
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrTransient, err)
	}
	return err
}

func (s *Store) callFetch(ctx context.Context, src Source, key string) (r Result) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
	defer cancel()
	defer recoverInto(&r.Err, "source Fetch")
	v, err := src.Fetch(ctx, key)
	return Result{Versions: v, Err: err}
}

func (s *Store) callDetect(ctx context.Context, cd ChangeDetector, req Request) (r Result) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
	defer cancel()
	defer recoverInto(&r.Err, "source FetchIfChanged")
	return cd.FetchIfChanged(ctx, req)
}

func (s *Store) callBatch(ctx context.Context, bf BatchFetcher, reqs []Request) (res []Result) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
	defer cancel()
	var err error
	func() {
		defer recoverInto(&err, "source FetchMany")
		res = bf.FetchMany(ctx, reqs)
	}()
	if err == nil && len(res) != len(reqs) {
		err = fmt.Errorf("%w: source answered %d of %d requests", ErrInvalid, len(res), len(reqs))
	}
	if err != nil {
		res = make([]Result, len(reqs))
		for i := range res {
			res[i].Err = err
		}
	}
	return res
}

// recoverInto turns a panic in code the Store calls (a source, a validator)
// into an error. The panic's value is left out of the error: it could hold
// anything, a secret included.
func recoverInto(err *error, what string) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %s panicked", ErrInvalid, what)
	}
}

// examine decides, for each fetched job, whether its versions differ from
// those served and, if they do, checks the fields that keys select and runs
// the validators. It holds no lock while validators run.
func (s *Store) examine(ctx context.Context, jobs []*job) {
	type check struct {
		j     *job
		key   string
		field string
		cand  Versions
	}
	var checks []check
	s.mu.Lock()
	for _, j := range jobs {
		// An Unchanged answer is relative to what the request carried.
		j.against = j.b.versions
		if !j.req.Known.Current.IsZero() {
			j.against = j.req.Known
		}
		if j.err != nil || j.res.Unchanged {
			continue
		}
		b := j.b
		if b.loaded && sameValues(b.versions, j.res.Versions) {
			continue
		}
		j.changed = true
		for key, field := range b.keys {
			cand, err := fieldVersions(j.res.Versions, field)
			if err != nil {
				// A field the Store serves has gone from the new value: keep
				// the old one. A field that was already missing stays so.
				if b.loaded {
					if _, ferr := fieldVersions(b.versions, field); ferr == nil {
						j.err = err
						j.keyErr = &Error{Op: "field", Key: key, Err: err}
						break
					}
				}
				continue
			}
			checks = append(checks, check{j: j, key: key, field: field, cand: cand})
		}
	}
	s.mu.Unlock()
	if len(s.cfg.validators) == 0 {
		return
	}
	sort.Slice(checks, func(a, b int) bool { return checks[a].key < checks[b].key })
	for _, c := range checks {
		if c.j.err != nil {
			continue
		}
		c.cand.Current = c.cand.Current.with(c.key, c.j.b.srcName, time.Time{})
		c.cand.Previous = c.cand.Previous.with(c.key, c.j.b.srcName, time.Time{})
		if err := s.validate(ctx, c.key, c.cand); err != nil {
			c.j.err = err
			c.j.keyErr = &Error{Op: "validate", Key: c.key, Err: err}
		}
	}
}

func (s *Store) validate(ctx context.Context, key string, cand Versions) (err error) {
	for _, v := range s.cfg.validators {
		if v.keys != nil && !v.keys[key] {
			continue
		}
		err = func() (err error) {
			ctx, cancel := context.WithTimeout(ctx, s.cfg.fetchTimeout)
			defer cancel()
			defer recoverInto(&err, "validator")
			return v.fn(ctx, key, cand)
		}()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	return nil
}

// apply records the outcome of jobs. With atomic set, either every job
// succeeded and all changes are applied in one snapshot, or none is and only
// the failures are recorded. It returns the errors of the failed jobs by key.
//
// A job's verdict (changed, unchanged, validated) was reached against the
// versions served when it was examined. If another job has swapped the value
// since, the verdict is stale: the job is dropped and its key polled again,
// so that neither an old swap survives a newer fetch nor one rotation is
// announced twice.
func (s *Store) apply(jobs []*job, atomic bool) map[string]*Error {
	var logs []func()
	defer func() {
		for _, l := range logs {
			l()
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	next := now.Add(s.ttlJittered())
	closing := s.closed.Load()
	// A failure counts unless a newer fetch of the key has succeeded since;
	// one overtaken by a newer failure still does.
	failed := map[string]*Error{}
	for _, j := range jobs {
		overtaken := j.seq < j.b.applied && j.b.failures == 0
		if j.err != nil && !overtaken && !(closing && errors.Is(j.err, ErrClosed)) {
			failed[j.b.key] = j.keyError()
		}
	}
	var touched []*baseState
	var changes []Change
	for _, j := range jobs {
		b := j.b
		if j.seq < b.applied {
			continue // a newer fetch has been applied already
		}
		if j.err != nil {
			if closing && errors.Is(j.err, ErrClosed) {
				continue
			}
			b.applied = j.seq
			b.failures++
			b.lastErr, b.lastOp, b.lastErrAt = j.err, j.keyError().Op, now
			b.next = now.Add(s.backoff(b.failures))
			touched = append(touched, b)
			logs = append(logs, s.failureLog(b.key, b.loaded, j.keyError(), b.failures, b.next.Sub(now)))
			continue
		}
		if atomic && len(failed) > 0 {
			continue
		}
		if !sameValues(b.versions, j.against) {
			b.expedite(now, s.cfg.backoffMin)
			continue
		}
		b.applied = j.seq
		if j.changed {
			old := b.versions
			b.versions = j.res.Versions
			if b.loaded {
				for key := range b.keys {
					changes = append(changes, Change{
						Key:        key,
						OldVersion: old.Current.Version(),
						NewVersion: b.versions.Current.Version(),
					})
				}
				key, from, to := b.key, old.Current.Version(), b.versions.Current.Version()
				logs = append(logs, func() {
					s.log.LogAttrs(s.ctx, slog.LevelInfo, "secrets: rotated",
						slog.String("key", key), slog.String("from", from), slog.String("to", to))
				})
			}
		}
		b.loaded = true
		b.fetchedAt = now
		b.failures, b.lastErr, b.lastOp, b.lastErrAt = 0, nil, "", time.Time{}
		b.next = next
		touched = append(touched, b)
	}
	if len(touched) > 0 {
		s.publishLocked(touched...)
		s.nudge()
	}
	if len(changes) > 0 {
		s.notifyLocked(changes)
	}
	return failed
}

func (j *job) keyError() *Error {
	if j.keyErr != nil {
		return j.keyErr
	}
	return &Error{Op: "fetch", Key: j.b.key, Err: j.err}
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

// schedule is the Store's scheduler goroutine. It sleeps until the earliest
// refresh is due, starts the due refresh rounds, and sleeps again.
func (s *Store) schedule() {
	defer s.wg.Done()
	t := s.clock.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next, ok := s.dispatch()
		var fire <-chan time.Time
		if ok {
			t.Reset(next.Sub(s.clock.Now()))
			if !s.clock.Now().Before(next) {
				// The clock passed next while the timer was being armed.
				continue
			}
			fire = t.C()
		}
		select {
		case <-s.ctx.Done():
			return
		case <-fire:
		case <-s.wake:
		}
	}
}

// dispatch starts a background refresh round for every source with keys due,
// taking along the keys of that source due within the jitter window so that
// they are fetched in one round (and one batch where the source batches). It
// returns when the next key not yet in flight is due.
func (s *Store) dispatch() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return time.Time{}, false
	}
	now := s.clock.Now()
	horizon := now.Add(time.Duration(s.cfg.jitter * float64(s.cfg.ttl)))
	due := map[Source]bool{}
	for _, b := range s.bases {
		if b.loaded && !b.busy && !b.next.After(now) {
			due[b.src] = true
		}
	}
	rounds := map[Source][]*job{}
	var earliest time.Time
	for _, b := range s.bases {
		if !b.loaded || b.busy {
			continue
		}
		if !b.next.After(now) || (due[b.src] && b.failures == 0 && !b.next.After(horizon)) {
			b.busy, b.dirty = true, false
			b.seq++
			rounds[b.src] = append(rounds[b.src], &job{b: b, seq: b.seq, req: Request{Key: b.ref.Path, Known: b.versions}})
			continue
		}
		if earliest.IsZero() || b.next.Before(earliest) {
			earliest = b.next
		}
	}
	for _, jobs := range rounds {
		s.wg.Add(1)
		go s.refreshRound(jobs)
	}
	return earliest, !earliest.IsZero()
}

// refreshRound is one background refresh of some keys of one source.
func (s *Store) refreshRound(jobs []*job) {
	defer s.wg.Done()
	s.fetch(s.ctx, jobs, true)
	s.examine(s.ctx, jobs)
	s.apply(jobs, false)
	s.mu.Lock()
	now := s.clock.Now()
	for _, j := range jobs {
		j.b.busy = false
		if j.b.dirty {
			j.b.dirty = false
			j.b.expedite(now, s.cfg.backoffMin)
		}
	}
	s.mu.Unlock()
	s.nudge()
	if s.roundHook != nil {
		s.roundHook()
	}
}

// markDirty is a Watcher's callback: key of src (or every key of src, for "")
// may have changed, so refresh it now, or, for a key that never loaded, let
// the next Get try it at once.
func (s *Store) markDirty(src Source, key string) {
	s.mu.Lock()
	now := s.clock.Now()
	var retry []*baseState
	for _, b := range s.bases {
		if b.src != src || (key != "" && b.ref.Path != key) {
			continue
		}
		switch {
		case !b.loaded:
			// A key whose first load failed (a file not there yet) is
			// loaded by the next Get; let it try now.
			b.next = now
			retry = append(retry, b)
		case b.busy:
			b.dirty = true
		default:
			b.expedite(now, s.cfg.backoffMin)
		}
	}
	if len(retry) > 0 {
		s.publishLocked(retry...)
	}
	s.mu.Unlock()
	s.nudge()
}

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
// one *Error per key that failed; keys that failed keep their last good value.
func (s *Store) Refresh(ctx context.Context, keys ...string) error {
	if s.closed.Load() {
		return &Error{Op: "refresh", Err: ErrClosed}
	}
	var bases []string
	var errs []error
	seen := map[string]bool{}
	for _, key := range keys {
		ref, _, _, err := s.route(key)
		if err != nil {
			errs = append(errs, &Error{Op: "refresh", Key: key, Err: err})
			continue
		}
		base := ref.base()
		s.mu.Lock()
		b := s.bases[base]
		loaded := b != nil && b.loaded
		s.mu.Unlock()
		if !loaded {
			if _, err := s.load(ctx, key); err != nil {
				errs = append(errs, err)
			}
			continue
		}
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
			s.examine(s.ctx, jobs)
			return joinKeyErrors(s.apply(jobs, false))
		})
		if err == ErrClosed {
			err = &Error{Op: "refresh", Err: ErrClosed}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refreshStale is Refresh for what an authentication failure calls for
// (WrapTool, Call, Transport): each key is forced at most once per minAge,
// so that a credential revoked but not yet rotated costs the backend one
// fetch per key per minAge, not one per failed request, while the first
// failure after a quiet spell always gets a fresh fetch.
func (s *Store) refreshStale(ctx context.Context, minAge time.Duration, keys []string) error {
	now := s.clock.Now()
	var due []string
	s.mu.Lock()
	for _, key := range keys {
		ref, err := ParseRef(key)
		if err != nil {
			continue
		}
		b := s.bases[ref.base()]
		if b == nil || !b.loaded {
			due = append(due, key)
			continue
		}
		if b.lastForced.IsZero() || now.Sub(b.lastForced) >= minAge {
			b.lastForced = now
			due = append(due, key)
		}
	}
	s.mu.Unlock()
	if len(due) == 0 {
		return nil
	}
	return s.Refresh(ctx, due...)
}

// newJobs starts a fetch of each named base.
func (s *Store) newJobs(bases []string) []*job {
	s.mu.Lock()
	defer s.mu.Unlock()
	jobs := make([]*job, 0, len(bases))
	for _, base := range bases {
		b := s.bases[base]
		if b == nil || !b.loaded {
			continue
		}
		b.seq++
		jobs = append(jobs, &job{b: b, seq: b.seq, req: Request{Key: b.ref.Path}})
	}
	return jobs
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
