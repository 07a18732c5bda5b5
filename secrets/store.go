package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// A Store serves secrets from one or more sources and keeps them current.
//
// Reads are lock-free: the values live in an immutable snapshot behind an
// atomic pointer, and Get of a loaded key is one atomic load and one lookup,
// with no lock, no allocation and no I/O. Everything that talks to a source
// runs off the read path:
//
//   - A key's first Get fetches it. Concurrent first reads of one key share a
//     single fetch, which runs on a context the Store owns: a caller whose
//     context ends returns at once without failing the others. A key whose
//     first fetch failed is retried in the background, with backoff.
//   - Each key is polled again in the background after its TTL, minus a random
//     jitter. Reads keep getting the current value meanwhile
//     (stale-while-revalidate).
//   - A failed refresh keeps the last good value, records the error in the
//     key's Status and retries with exponential backoff and full jitter. With
//     WithMaxStale, a value older than the limit is no longer served: Get
//     fails closed with ErrStale.
//   - Candidate values pass the validators (WithValidator) before they replace
//     the served ones. Reload fetches every key and applies all of them or
//     none.
//   - After a change is applied, subscribers (Subscribe) learn which keys
//     changed.
//
// All methods are safe for concurrent use. Close stops every goroutine the
// Store started.
type Store struct {
	cfg   config
	clock Clock
	log   *slog.Logger
	def   Source
	rand  func() float64 // in [0, 1); replaced in tests

	snap   atomic.Pointer[snapshot]
	closed atomic.Bool
	ticks  atomic.Uint64 // orders fetches (see job)

	mu       sync.Mutex // guards the fields below and every write of snap
	bases    map[string]*baseState
	subs     map[*Subscription]struct{}
	rounds   map[string]*rounds // coalesced reloads and refreshes, by what they do
	required map[string]bool    // keys Health checks (WithRequired); nil: every key

	validators validatorIndex

	loads     map[string]chan struct{} // first loads under way, by value; guarded by mu
	wakeAt    time.Time                // when the scheduler is next due to look, zero if never; guarded by mu
	loadPhase phase                    // the first poll's phase after a first load (WithPhaseSpread); guarded by mu
	published chan struct{}            // closed at the next publish; made by callers waiting for one; guarded by mu
	ctx       context.Context          // canceled by Close; every fetch runs under it
	cancel    context.CancelFunc
	wg        sync.WaitGroup // every goroutine the Store starts
	wake      chan struct{}  // nudges the scheduler; capacity 1
	flatten   chan struct{}  // tells the flattener of a new snapshot; capacity 1
	closeDone chan struct{}  // closed when Close has stopped everything

	roundHook func()       // called after each background refresh round; tests only
	waiting   atomic.Int64 // callers waiting for a first load; tests observe it
}

// New returns a Store that serves plain keys from src and references from the
// sources registered with WithSource. src may be nil when every key is a
// reference. New starts the Store's scheduler and, for each source that is a
// Watcher, its watch; Close stops them. Keys named by WithRequired start
// loading in the background at once.
func New(src Source, opts ...Option) (*Store, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.maxStale > 0 && cfg.maxStale <= cfg.ttl+cfg.fetchTimeout {
		return nil, fmt.Errorf("secrets: WithMaxStale(%v) must exceed the TTL plus the fetch timeout (%v), or a healthy key would fail closed between polls",
			cfg.maxStale, cfg.ttl+cfg.fetchTimeout)
	}
	vi, err := indexValidators(cfg.validators)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		cfg:        cfg,
		clock:      cfg.clock,
		log:        cfg.logger,
		def:        src,
		rand:       rand.Float64,
		bases:      map[string]*baseState{},
		subs:       map[*Subscription]struct{}{},
		rounds:     map[string]*rounds{},
		loads:      map[string]chan struct{}{},
		validators: vi,
		ctx:        ctx,
		cancel:     cancel,
		wake:       make(chan struct{}, 1),
		flatten:    make(chan struct{}, 1),
		closeDone:  make(chan struct{}),
	}
	s.snap.Store(&snapshot{})
	if err := s.require(cfg.required); err != nil {
		cancel()
		return nil, err
	}
	if cfg.overlap > 0 && cfg.overlap < s.RecommendedOverlap() {
		s.log.LogAttrs(ctx, slog.LevelWarn, "secrets: overlap window shorter than recommended; the old credential may be revoked while still served",
			slog.Duration("overlap", cfg.overlap),
			slog.Duration("recommended", s.RecommendedOverlap()),
			slog.Duration("worst_case_staleness", s.WorstCaseStaleness()))
	}

	s.wg.Add(2)
	go s.schedule()
	go s.flattener()
	s.startWatches()
	return s, nil
}

// Get returns the current version of key. A key is either a plain name for
// the Store's own source or a reference (see Ref); a "#field" suffix selects a
// field of a JSON value.
//
// A loaded key is served from memory without blocking. The first Get of a key
// fetches it; ctx bounds only this caller's wait. Errors are *Error values
// wrapping the class of failure: ErrNotFound, ErrPermission, ErrTransient or
// ErrInvalid from the source, ErrStale when the value is older than the
// maximum staleness, ErrClosed after Close; or ctx's own error, as it is, when
// ctx ends before a first load does. A key whose first fetch failed is
// not asked for again until its backoff has passed; Get returns the same error
// until then.
func (s *Store) Get(ctx context.Context, key string) (Secret, error) {
	e, err := s.entry(ctx, key)
	if err != nil {
		return Secret{}, err
	}
	return e.versions.Current, nil
}

// Versions returns the current and the previous version of key, read from one
// snapshot: a rotation cannot pair a new current with an old previous. It
// loads and fails like Get.
func (s *Store) Versions(ctx context.Context, key string) (Versions, error) {
	e, err := s.entry(ctx, key)
	if err != nil {
		return Versions{}, err
	}
	return e.versions, nil
}

func (s *Store) entry(ctx context.Context, key string) (*entry, error) {
	if s.closed.Load() {
		return nil, &Error{Op: "get", Key: key, Err: ErrClosed}
	}
	if e := s.snap.Load().get(key); e != nil {
		if e.err == nil {
			if s.cfg.maxStale > 0 {
				if age := s.clock.Now().Sub(e.fetchedAt); age > s.cfg.maxStale {
					return nil, s.staleError(key, age, e.lastErr)
				}
			}
			return e, nil
		}
		if e.retryAt.IsZero() || s.clock.Now().Before(e.retryAt) {
			return nil, e.err
		}
	}
	return s.load(ctx, key)
}

func (s *Store) staleError(key string, age time.Duration, last error) error {
	if last == nil {
		last = errors.New("no refresh has succeeded since")
	}
	return &Error{Op: "get", Key: key, Err: fmt.Errorf("%w: last good value is %v old, over the %v allowed: %w",
		ErrStale, age.Round(time.Millisecond), s.cfg.maxStale, last)}
}

// route finds the source that serves key.
func (s *Store) route(key string) (Ref, Source, string, error) {
	ref, err := ParseRef(key)
	if err != nil {
		return Ref{}, nil, "", err
	}
	if ref.Scheme == "" {
		if s.def == nil {
			return Ref{}, nil, "", routeError("key %s has no scheme and the Store has no default source", key)
		}
		return ref, s.def, DefaultSourceName, nil
	}
	src, ok := s.cfg.sources[ref.Scheme]
	if !ok {
		return Ref{}, nil, "", routeError("no source registered for scheme %s", ref.Scheme)
	}
	return ref, src, ref.Scheme, nil
}

// routeError is out of line for the reason refError is.
//
//go:noinline
func routeError(format, what string) error {
	return fmt.Errorf("%w: "+format, ErrInvalid, quote(what))
}

// A target is a key as routed: the value it selects from and the source
// that serves it.
type target struct {
	key  string
	base string
	ref  Ref
	src  Source
	name string // the source's name
}

// resolve routes key.
func (s *Store) resolve(key string) (*target, error) {
	ref, src, name, err := s.route(key)
	if err != nil {
		return nil, err
	}
	return &target{key: key, base: baseOf(key, ref), ref: ref, src: src, name: name}, nil
}

// baseOf returns ref.base() for the key ref was parsed from, as a part of
// key where it can (a key whose scheme is written in lower case), to spare
// a first read an allocation.
func baseOf(key string, ref Ref) string {
	off := 0
	if ref.Scheme != "" {
		off = len(ref.Scheme) + len("://")
		if len(key) < off || key[:len(ref.Scheme)] != ref.Scheme || key[len(ref.Scheme):off] != "://" {
			return ref.base()
		}
	}
	if end := off + len(ref.Path); end <= len(key) && key[off:end] == ref.Path {
		return key[:end]
	}
	return ref.base()
}

// load fetches the value behind key, sharing one fetch among concurrent
// callers, and publishes key's entry.
func (s *Store) load(ctx context.Context, key string) (*entry, error) {
	t, err := s.resolve(key)
	if err != nil {
		return nil, &Error{Op: "get", Key: key, Err: err}
	}
	for attempt := 1; ; attempt++ {
		done := s.startLoad(t)
		if done == nil {
			return nil, &Error{Op: "get", Key: key, Err: ErrClosed}
		}
		s.waiting.Add(1)
		select {
		case <-ctx.Done():
			s.waiting.Add(-1)
			return nil, ctx.Err()
		case <-done:
		}
		s.waiting.Add(-1)
		if e := s.snap.Load().get(key); e != nil && e.err == nil {
			return e, nil // served already: no need of the lock
		}
		e, err, lost := s.ensureEntry(t)
		if !lost || attempt == 3 {
			return e, err
		}
		// The value was forgotten while it loaded: load it again.
	}
}

// startLoad returns a channel that is closed when a first load of t's value
// ends, starting that load unless one is under way; nil once the Store is
// closed. The load runs on the Store's context in a goroutine of its own,
// counted in s.wg before it starts: a caller that stops waiting leaves it to
// Close to stop.
func (s *Store) startLoad(t *target) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil
	}
	if done := s.loads[t.base]; done != nil {
		return done
	}
	done := make(chan struct{})
	s.loads[t.base] = done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.loadBase(t)
		s.mu.Lock()
		delete(s.loads, t.base)
		s.mu.Unlock()
		close(done)
	}()
	return done
}

// loadBase fetches a value the Store does not hold yet.
func (s *Store) loadBase(t *target) {
	s.mu.Lock()
	b := s.baseLocked(t)
	if b.loaded {
		s.mu.Unlock()
		return
	}
	j := b.newJob(s.tick(), false)
	s.mu.Unlock()

	s.fetch(s.ctx, []*job{j}, false)
	s.settle(s.ctx, []*job{j}, false)
}

// baseLocked returns the record of t's value, making it if need be. s.mu
// must be held.
func (s *Store) baseLocked(t *target) *baseState {
	b := s.bases[t.base]
	if b == nil {
		b = &baseState{key: t.base, ref: Ref{Scheme: t.ref.Scheme, Path: t.ref.Path}, src: t.src, srcName: t.name, keys: map[string]string{}}
		s.bases[t.base] = b
	}
	return b
}

// ensureEntry registers t's key as served from its value and returns its
// entry. lost reports that no load has reached the value: it was forgotten,
// and made anew here, while the caller's load ran.
func (s *Store) ensureEntry(t *target) (e *entry, err error, lost bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, &Error{Op: "get", Key: t.key, Err: ErrClosed}, false
	}
	b := s.baseLocked(t)
	lost = !b.loaded && b.lastErr == nil
	if lost && b.next.IsZero() {
		// Never left without a time to try again.
		b.next = s.clock.Now()
		s.nudge()
	}
	if _, ok := b.keys[t.key]; !ok {
		b.addKey(t.key, t.ref.Field)
		sb := s.snap.Load().builder()
		sb.set(t.key, b.derive(t.key, t.ref.Field))
		s.publish(sb.snapshot())
	}
	e = s.snap.Load().get(t.key)
	if e.err != nil {
		return nil, e.err, lost
	}
	return e, nil, false
}

// publishLocked replaces the snapshot with one in which the entries of the
// given bases are derived anew. s.mu must be held.
func (s *Store) publishLocked(bs ...*baseState) {
	sb := s.snap.Load().builder()
	for _, b := range bs {
		for key, field := range b.keys {
			sb.set(key, b.derive(key, field))
		}
	}
	s.publish(sb.snapshot())
}

func (s *Store) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close stops the Store: its scheduler, its watches and any fetch it has
// under way. It waits for them to return. Afterwards Get, Versions, Refresh
// and Reload return ErrClosed, and subscriptions end. Close does not close
// the sources, which the caller created. Every call waits until the Store
// has stopped; a second Close does nothing more and returns nil.
//
// Close must not be called from code the Store runs (a Source's methods, a
// Validator, a Watcher's Watch): it would wait for that code to return.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		<-s.closeDone
		return nil
	}
	s.closed.Store(true)
	for sub := range s.subs {
		sub.end()
	}
	s.subs = nil
	s.mu.Unlock()

	s.cancel()
	s.wg.Wait()
	close(s.closeDone)
	return nil
}

// WorstCaseStaleness returns the longest a rotation at a reachable source can
// go unseen by this Store's readers: a full TTL (jitter only shortens it) plus
// the time a refresh may take (the fetch timeout). While refreshes fail the
// Store serves the last good value for as long as WithMaxStale allows, which
// is unbounded by default.
func (s *Store) WorstCaseStaleness() time.Duration {
	return s.cfg.ttl + s.cfg.fetchTimeout
}

// RecommendedOverlap returns the shortest overlap window (see WithOverlap)
// this Store's configuration supports with a margin: three TTLs plus the
// jitter window, so that a reader polling late, a failed poll and its retry
// all still fall inside the window.
func (s *Store) RecommendedOverlap() time.Duration {
	return 3*s.cfg.ttl + time.Duration(s.cfg.jitter*float64(s.cfg.ttl))
}

// Clock returns the clock the Store takes its time from (see WithClock), so
// that what is built on a Store (a JWT verifier timing a grace window) can
// keep the same time.
func (s *Store) Clock() Clock { return s.clock }
