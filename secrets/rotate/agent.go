package rotate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sync"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// Defaults of the Agent's options.
const (
	// DefaultLease is how long a rotation record, once saved, keeps other
	// agents out (see WithLease): two minutes. A step may then run for 90
	// seconds after the save before it; the 30 seconds left cover a
	// PostgreSQL statement canceled at that point, which stops within a
	// few seconds even on a loaded server.
	DefaultLease = 2 * time.Minute
	// DefaultPollInterval is how often the Agent asks the target, during
	// the overlap, whether the old credential is still in use, and how
	// often it reads a rotation record held by another agent that it
	// watches: 10 seconds.
	DefaultPollInterval = 10 * time.Second
	// MinOverlapFactor is the shortest overlap the Agent accepts, in units
	// of the consumers' TTL: a consumer polling every TTL may be a full TTL
	// late, and a failed poll retried costs another.
	MinOverlapFactor = 3
)

// An Agent rotates keys of one source into one target. It is safe for
// concurrent use. Rotations of one key are kept one at a time across
// agents, processes and machines by the rotation record in the store, and
// within one Agent by the Agent itself: while a Rotate of a key runs, another
// Rotate of that key on the same Agent returns ErrInProgress at once.
type Agent struct {
	src     secrets.Rotatable
	target  Target
	ttl     time.Duration
	overlap time.Duration
	// overlapSet says the overlap came from WithOverlap, not a default.
	overlapSet bool
	deadline   time.Duration
	poll       time.Duration
	lease      time.Duration
	clock      secrets.Clock
	// bounds is the clock the step contexts' deadlines are timed on: the
	// Agent's clock, but for tests that drive a fake clock from wait to
	// wait (export_test.go).
	bounds secrets.Clock
	log    *slog.Logger
	owner  string
	notify []func(context.Context, Event)
	hook   func(key string, step secrets.RotationStep, recorded bool) error
	maxAge time.Duration
	jitter time.Duration
	retry  time.Duration
	// consumers, when set, are the servers whose status endpoints must
	// report the new version before the old one is revoked.
	consumers *Consumers

	mu     sync.Mutex
	active map[string]bool // keys a Rotate of this Agent is working on
}

// An Option configures an Agent.
type Option func(*Agent) error

// WithOverlap sets how long the old credential keeps working after the new
// one is promoted, so that every consumer picks the new one up first. It
// must be at least MinOverlapFactor times the consumers' TTL (New refuses a
// shorter one, saying why); that is also the default.
func WithOverlap(d time.Duration) Option {
	return func(a *Agent) error { a.overlap, a.overlapSet = d, true; return nil }
}

// WithOverlapDeadline bounds the overlap when the target can tell that the
// old credential is still in use (PostgreSQL sessions of the old role), or
// consumers are to be asked (WithConsumers): the Agent waits past the
// overlap until nothing uses it and every consumer serves the new version,
// but no longer than this after the promotion, and then revokes it anyway,
// with a warning. Like the overlap, it is counted on the Agent's own clock:
// an agent that takes over a rotation promoted by another counts it from
// its takeover. Default: four times the overlap. It must not be shorter
// than the overlap.
func WithOverlapDeadline(d time.Duration) Option {
	return func(a *Agent) error { a.deadline = d; return nil }
}

// WithPollInterval sets how often the Agent asks the target whether the old
// credential is still in use, and how often it reads a rotation record it
// watches before taking it over (default DefaultPollInterval).
func WithPollInterval(d time.Duration) Option {
	return func(a *Agent) error {
		if d <= 0 {
			return fmt.Errorf("rotate: WithPollInterval(%v): must be positive", d)
		}
		a.poll = d
		return nil
	}
}

// WithLease sets how long a saved rotation record keeps other agents out
// (default DefaultLease). Every part of it is measured on one agent's own
// clock, so clocks that disagree between machines shorten nothing:
//
//   - The holder saves the record (check-and-set) before every step that
//     acts downstream or on the store, and at least every half lease while
//     it waits out the overlap, and runs each step under a context that
//     ends three quarters of a lease after that save. A step that has not
//     finished by then stops, unfinished; one whose save afterwards is
//     refused (another agent took over) stops with ErrInProgress.
//   - An agent that finds another's record (or one recorded under its own
//     name, by an earlier process) takes it over only after seeing it keep
//     one revision for a full lease from when it first read it, reading it
//     again every poll interval. By then the holder's step contexts have
//     ended, a quarter of a lease before.
//
// So the lease must be long enough for any one step (a login and an ALTER
// ROLE, a verify), with room to spare: on a busy server a step that runs
// out of its share leaves the rotation unfinished. And the quarter left
// over must cover what a step does after its context ends: an ALTER ROLE
// already sent is canceled (pgx sends a cancel request, and Postgres gives
// the server the deadline as statement_timeout and lock_timeout, so the
// server stops the statement even if the agent died), which takes well under
// the 30 seconds of DefaultLease's quarter. What the margin cannot cover is
// a Target whose write, already sent, still takes effect long after its
// context ended: Targets must honour ctx (see Target).
func WithLease(d time.Duration) Option {
	return func(a *Agent) error {
		if d <= 0 {
			return fmt.Errorf("rotate: WithLease(%v): must be positive", d)
		}
		a.lease = d
		return nil
	}
}

// WithClock sets the clock of every wait and every time recorded (default
// secrets.SystemClock). Tests pass a fake clock.
func WithClock(c secrets.Clock) Option {
	return func(a *Agent) error {
		if c == nil {
			return errors.New("rotate: WithClock(nil)")
		}
		a.clock = c
		return nil
	}
}

// WithLogger sets the logger of the step events (default slog.Default()).
// Events carry the key, the rotation id, the step and the version ids, never
// a value.
func WithLogger(l *slog.Logger) Option {
	return func(a *Agent) error {
		if l == nil {
			return errors.New("rotate: WithLogger(nil)")
		}
		a.log = l
		return nil
	}
}

// WithOwner sets the name the Agent records as the owner of the rotations it
// runs (default: host name, process id and a random part), which tells
// people reading the record and the logs who holds a rotation. It grants
// nothing: an agent finding a record under its own name, left by an
// earlier process, watches it for a lease as it would another's, since a
// name cannot prove that the process which saved it has stopped.
func WithOwner(name string) Option {
	return func(a *Agent) error {
		if name == "" {
			return errors.New("rotate: WithOwner(\"\")")
		}
		a.owner = name
		return nil
	}
}

// WithNotify adds a function called with every event: each step, and the
// outcome (succeeded, rolled back, failed). It is called synchronously from
// the rotating goroutine, one event at a time, so it must return soon; it
// must not call the Agent. Events hold no value. A webhook is one (see
// Webhook); so is sending SIGHUP to consumers on EventPromoted.
func WithNotify(fn func(context.Context, Event)) Option {
	return func(a *Agent) error {
		if fn == nil {
			return errors.New("rotate: WithNotify(nil)")
		}
		a.notify = append(a.notify, fn)
		return nil
	}
}

// WithStepHook sets a function called around every step: with recorded
// false once the step's effect is done and before the record says so, and
// with recorded true once it does. When it returns an error the Agent stops
// there, as if it had crashed, and Rotate returns an *Error of class
// ErrCrashed: the record stays as it is, its lease running. It is for tests
// and drills of crash recovery.
func WithStepHook(fn func(key string, step secrets.RotationStep, recorded bool) error) Option {
	return func(a *Agent) error { a.hook = fn; return nil }
}

// New returns an Agent that rotates keys of src into target. src must be a
// secrets.Rotatable (sources/memory, sources/file, sources/vault); another
// source fails with ErrNotRotatable. consumerTTL is the longest time a
// consumer may take to pick up a new value (its Store's TTL); the overlap is
// at least MinOverlapFactor times it.
func New(src secrets.Source, target Target, consumerTTL time.Duration, opts ...Option) (*Agent, error) {
	rs, ok := src.(secrets.Rotatable)
	if !ok {
		return nil, fmt.Errorf("rotate: %w: the source %T cannot stage versions or keep rotation records", ErrNotRotatable, src)
	}
	if target == nil {
		return nil, errors.New("rotate: nil target")
	}
	if consumerTTL <= 0 {
		return nil, fmt.Errorf("rotate: consumer TTL %v: must be positive", consumerTTL)
	}
	a := &Agent{
		src: rs, target: target, ttl: consumerTTL,
		poll: DefaultPollInterval, lease: DefaultLease,
		clock: secrets.SystemClock, log: slog.Default(), owner: defaultOwner(),
		retry: time.Minute,
	}
	for _, o := range opts {
		if err := o(a); err != nil {
			return nil, err
		}
	}
	if a.bounds == nil {
		a.bounds = a.clock
	}
	minOverlap := MinOverlapFactor * consumerTTL
	if a.overlap == 0 {
		a.overlap = minOverlap
	}
	if a.overlap < minOverlap {
		return nil, fmt.Errorf("rotate: overlap %v is shorter than %d × the consumers' TTL (%v): a consumer could still hold the old credential when it is revoked", a.overlap, MinOverlapFactor, minOverlap)
	}
	if m, ok := target.(OverlapMinimizer); ok {
		need := m.MinOverlap(consumerTTL)
		if a.overlap < need && a.overlapSet {
			return nil, fmt.Errorf("rotate: overlap %v is shorter than the %v the target needs (%T.MinOverlap): a consumer could still rely on the old credential when it is revoked", a.overlap, need, target)
		}
		if a.overlap < need {
			a.overlap = need
		}
	}
	if a.deadline == 0 {
		a.deadline = 4 * a.overlap
	}
	if a.deadline < a.overlap {
		return nil, fmt.Errorf("rotate: overlap deadline %v is shorter than the overlap %v", a.deadline, a.overlap)
	}
	return a, nil
}

func defaultOwner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randomID(4))
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// A Report describes a rotation that Rotate finished.
type Report struct {
	ID   string // the rotation's id
	From string // the version replaced
	To   string // the version now current
	// Resumed reports that the rotation was begun by an earlier run (this
	// agent's or another's) and finished by this one.
	Resumed bool
}

// Rotate rotates key once, or finishes or undoes a rotation of key that an
// earlier agent left part-way. It returns when the rotation is done (the old
// credential revoked, after the overlap), or rolled back, or cannot go on.
//
// A rotation record that another agent holds, or that an earlier process left
// (under any owner name, this Agent's too), is watched before anything is
// done: Rotate reads it every poll interval (WithPollInterval), returns
// ErrInProgress as soon as it is saved again (its holder is alive), and takes
// it over once it has kept one revision for a full lease (WithLease) on this
// Agent's clock. Rotate therefore may block for a lease before it starts;
// give ctx a deadline to wait less (it then returns ErrInProgress). While a
// Rotate of key runs on this Agent, another Rotate of key on it returns
// ErrInProgress at once.
//
// Errors are *Error: ErrInProgress when another agent holds the key
// (nothing changed), ErrNotRotatable when the source or the value cannot be
// rotated (nothing changed), ErrRolledBack when the new value failed and the
// rotation was undone, ErrUnfinished when the store or the downstream failed
// part-way or a step ran out of its share of the lease (the record says
// where; the next Rotate, by any agent, resumes), a nil class when nothing
// was started (the store or the downstream could not be read). When a
// rotation was resumed and rolled back, Rotate returns ErrRolledBack too.
//
// Rotate may be called for different keys at once. It blocks through the
// overlap; cancel ctx to stop waiting (the record keeps the rotation, which a
// later Rotate finishes).
func (a *Agent) Rotate(ctx context.Context, key string) (Report, error) {
	if !a.claim(key) {
		return Report{}, &Error{Key: key, Step: "claim", Class: ErrInProgress,
			Err: errors.New("this agent is already rotating the key")}
	}
	defer a.unclaim(key)
	rec, err := a.src.LoadRotation(ctx, key)
	if err != nil {
		return Report{}, &Error{Key: key, Step: "load record", Err: err}
	}
	if !rec.Step.Terminal() {
		rec, err = a.watch(ctx, key, rec)
		if err != nil {
			return Report{}, err
		}
		prevOwner := rec.Owner
		r := &run{a: a, key: key, resumed: true}
		if err := r.save(ctx, rec); err != nil {
			return Report{}, err
		}
		a.event(ctx, Event{Kind: EventResumed, Key: key, Rotation: r.rec,
			Detail: fmt.Sprintf("taken over from %s after it stayed unchanged for %v", prevOwner, a.lease)})
		return r.drive(ctx)
	}

	v, err := a.src.Fetch(ctx, key)
	if err != nil {
		return Report{}, &Error{Key: key, Step: "read", Err: err}
	}
	if !v.Pending.IsZero() {
		return Report{}, &Error{Key: key, Step: "read", Class: ErrInProgress,
			Err: fmt.Errorf("version %s is pending and no rotation record accounts for it", v.Pending.Version())}
	}
	if err := a.target.Check(ctx, v.Current); err != nil {
		var class error
		if errors.Is(err, ErrNotRotatable) {
			class = ErrNotRotatable
		}
		return Report{}, &Error{Key: key, Step: "check", Class: class, Err: err}
	}
	now := a.clock.Now()
	next := secrets.Rotation{
		ID: now.UTC().Format("20060102T150405Z") + "-" + randomID(6), Step: secrets.StepStarted,
		Started: now, From: v.Current.Version(), Revision: rec.Revision,
	}
	r := &run{a: a, key: key}
	if err := r.save(ctx, next); err != nil {
		return Report{}, err
	}
	a.event(ctx, Event{Kind: EventStep, Key: key, Rotation: r.rec})
	if err := r.crashPoint(secrets.StepStarted, true); err != nil {
		return Report{}, err
	}
	return r.drive(ctx)
}

// saveFailed turns a failed save of rec into an *Error.
func (a *Agent) saveFailed(key string, rec secrets.Rotation, err error) error {
	if errors.Is(err, secrets.ErrConflict) {
		return &Error{Key: key, Step: string(rec.Step), Class: ErrInProgress, Err: err}
	}
	if rec.Step == secrets.StepStarted && rec.Pending == "" {
		return &Error{Key: key, Step: "save record", Err: err}
	}
	return &Error{Key: key, Step: string(rec.Step), Class: ErrUnfinished, Err: err}
}

// run is one Agent's work on one rotation record.
type run struct {
	a       *Agent
	key     string
	rec     secrets.Rotation
	resumed bool
	cause   error // why the rotation is rolling back, when this run decided it
	// leaseStart is when, on the Agent's clock, the lease this run holds
	// began: just before its last save of the record that succeeded.
	leaseStart time.Time
	// overlapFrom is when, on the Agent's clock, the overlap began for this
	// run: when it promoted, or first waited on a rotation promoted by
	// another agent. Zero until then.
	overlapFrom time.Time
}

func (r *run) crashPoint(step secrets.RotationStep, recorded bool) error {
	if r.a.hook == nil {
		return nil
	}
	if err := r.a.hook(r.key, step, recorded); err != nil {
		return &Error{Key: r.key, Step: string(step), Class: ErrCrashed, Err: err}
	}
	return nil
}

// advance records step (after mutate changes the record) and renews the
// lease. The save is conditional on the revision this run last saved, so it
// also confirms that no other agent took the record over meanwhile; if one
// did, advance fails with ErrInProgress and the run stops.
func (r *run) advance(ctx context.Context, step secrets.RotationStep, mutate func(*secrets.Rotation)) error {
	if err := r.crashPoint(step, false); err != nil {
		return err
	}
	rec := r.rec.Clone()
	rec.Step = step
	if mutate != nil {
		mutate(&rec)
	}
	if err := r.save(ctx, rec); err != nil {
		return err
	}
	r.a.event(ctx, Event{Kind: EventStep, Key: r.key, Rotation: r.rec})
	return r.crashPoint(step, true)
}

func (r *run) unfinished(err error) error {
	return &Error{Key: r.key, Step: string(r.rec.Step), Class: ErrUnfinished, Err: err}
}

// drive runs the rotation from the step its record has reached to its end.
// Every step runs bounded by the lease (see bounded).
func (r *run) drive(ctx context.Context) (Report, error) {
	for {
		var err error
		switch r.rec.Step {
		case secrets.StepStarted:
			err = r.bounded(ctx, r.stage)
		case secrets.StepStaged:
			err = r.bounded(ctx, r.set)
		case secrets.StepSet:
			err = r.bounded(ctx, r.verify)
		case secrets.StepVerified:
			err = r.bounded(ctx, r.promote)
		case secrets.StepPromoted:
			err = r.wait(ctx)
		case secrets.StepOverlapped:
			err = r.bounded(ctx, r.revoke)
		case secrets.StepRollingBack:
			err = r.bounded(ctx, r.rollback)
		case secrets.StepDone:
			rep := Report{ID: r.rec.ID, From: r.rec.From, To: r.rec.Pending, Resumed: r.resumed}
			r.a.event(ctx, Event{Kind: EventSucceeded, Key: r.key, Rotation: r.rec})
			return rep, nil
		case secrets.StepRolledBack:
			cause := r.cause
			if cause == nil {
				cause = errors.New(r.rec.Cause)
			}
			r.a.event(ctx, Event{Kind: EventRolledBack, Key: r.key, Rotation: r.rec})
			return Report{}, &Error{Key: r.key, Step: string(secrets.StepRolledBack), Class: ErrRolledBack, Err: cause}
		default:
			err = &Error{Key: r.key, Step: string(r.rec.Step), Class: ErrNotRotatable,
				Err: fmt.Errorf("the rotation record is at step %q, which this agent does not know", r.rec.Step)}
		}
		if err != nil {
			var re *Error
			if !errors.As(err, &re) {
				err = r.unfinished(err)
			}
			if errors.As(err, &re) && !errors.Is(re.Class, ErrCrashed) {
				r.a.event(ctx, Event{Kind: EventFailed, Key: r.key, Rotation: r.rec, Err: err})
			}
			return Report{}, err
		}
	}
}

// fetch reads the key's versions and finds the pending version of the
// record in them (zero when it is not pending).
func (r *run) fetch(act context.Context) (secrets.Versions, secrets.Secret, error) {
	v, err := r.a.src.Fetch(act, r.key)
	if err != nil {
		if e := r.stopped(act, err); e != nil {
			return v, secrets.Secret{}, e
		}
		return v, secrets.Secret{}, r.unfinished(err)
	}
	if r.rec.Pending != "" && v.Pending.Version() == r.rec.Pending {
		return v, v.Pending, nil
	}
	return v, secrets.Secret{}, nil
}

// rollBack records that the rotation is being undone, and why.
func (r *run) rollBack(ctx context.Context, cause error) error {
	r.cause = cause
	return r.advance(ctx, secrets.StepRollingBack, func(rec *secrets.Rotation) { rec.Cause = cause.Error() })
}

// Each step below acts with act (bounded by the lease) and records its
// outcome with ctx. A failure that came from act ending stops the rotation
// unfinished (stopped), never rolls it back: it says nothing about the new
// credential.

func (r *run) stage(ctx, act context.Context) error {
	v, _, err := r.fetch(act)
	if err != nil {
		return err
	}
	if v.Current.Version() != r.rec.From {
		// Changed outside the rotation before anything was set downstream:
		// drop what this rotation may have staged, and stop.
		return r.rollBack(ctx, fmt.Errorf("%w: the current version changed from %s to %s outside the rotation", secrets.ErrConflict, r.rec.From, v.Current.Version()))
	}
	id := v.Pending.Version()
	if v.Pending.IsZero() {
		val, err := r.a.target.Next(act, v.Current)
		if err != nil {
			if e := r.stopped(act, err); e != nil {
				return e
			}
			return r.rollBack(ctx, fmt.Errorf("generate: %w", err))
		}
		id, err = r.a.src.Stage(act, r.key, secrets.StageRequest{Current: r.rec.From, Value: val, Token: r.rec.ID})
		clear(val)
		if err != nil {
			if e := r.stopped(act, err); e != nil {
				return e
			}
			if errors.Is(err, secrets.ErrConflict) || errors.Is(err, secrets.ErrPermission) || errors.Is(err, secrets.ErrInvalid) || errors.Is(err, secrets.ErrNotFound) {
				return r.rollBack(ctx, fmt.Errorf("stage: %w", err))
			}
			return r.unfinished(fmt.Errorf("stage: %w", err))
		}
	}
	// else: this rotation staged it before it stopped (the lock keeps out
	// every other one), and the record did not yet say so.
	return r.advance(ctx, secrets.StepStaged, func(rec *secrets.Rotation) { rec.Pending = id })
}

func (r *run) set(ctx, act context.Context) error {
	v, pend, err := r.fetch(act)
	if err != nil {
		return err
	}
	if pend.IsZero() || v.Current.Version() != r.rec.From {
		return r.rollBack(ctx, fmt.Errorf("%w: the store no longer holds version %s pending over %s", secrets.ErrConflict, r.rec.Pending, r.rec.From))
	}
	notes, err := r.a.target.Set(act, v.Current, pend)
	if err != nil {
		if e := r.stopped(act, err); e != nil {
			return e
		}
		return r.rollBack(ctx, fmt.Errorf("set: %w", err))
	}
	return r.advance(ctx, secrets.StepSet, func(rec *secrets.Rotation) {
		if len(notes) > 0 {
			if rec.Notes == nil {
				rec.Notes = map[string]string{}
			}
			maps.Copy(rec.Notes, notes)
		}
	})
}

func (r *run) verify(ctx, act context.Context) error {
	v, pend, err := r.fetch(act)
	if err != nil {
		return err
	}
	if pend.IsZero() || v.Current.Version() != r.rec.From {
		return r.rollBack(ctx, fmt.Errorf("%w: the store no longer holds version %s pending over %s", secrets.ErrConflict, r.rec.Pending, r.rec.From))
	}
	if err := r.a.target.Verify(act, pend); err != nil {
		if e := r.stopped(act, err); e != nil {
			return e
		}
		return r.rollBack(ctx, fmt.Errorf("verify: %w", err))
	}
	return r.advance(ctx, secrets.StepVerified, nil)
}

func (r *run) promote(ctx, act context.Context) error {
	err := r.a.src.Promote(act, r.key, r.rec.Pending, r.rec.From)
	switch {
	case err == nil:
	case r.stopped(act, err) != nil:
		return r.stopped(act, fmt.Errorf("promote: %w", err))
	case errors.Is(err, secrets.ErrConflict), errors.Is(err, secrets.ErrNotFound):
		return r.rollBack(ctx, fmt.Errorf("promote: %w", err))
	default:
		return r.unfinished(fmt.Errorf("promote: %w", err))
	}
	now := r.a.clock.Now()
	r.overlapFrom = now
	if err := r.advance(ctx, secrets.StepPromoted, func(rec *secrets.Rotation) {
		if rec.Notes == nil {
			rec.Notes = map[string]string{}
		}
		if rec.Notes[notePromotedAt] == "" {
			rec.Notes[notePromotedAt] = now.UTC().Format(time.RFC3339Nano)
		}
	}); err != nil {
		return err
	}
	r.a.event(ctx, Event{Kind: EventPromoted, Key: r.key, Rotation: r.rec})
	return nil
}

// notePromotedAt is the note that records when the new version was
// promoted, on the clock of the agent that promoted it. It is for people and
// for targets that want it (JWTKey); the Agent measures the overlap on its
// own clock, from when it promoted or took the rotation over.
const notePromotedAt = "promoted_at"

// wait waits out the overlap: from when this run promoted the new version
// or, for a rotation promoted by another agent, from when this run first
// waits on it, both on the Agent's clock. A recorded time from another
// machine's clock would shorten the overlap by however far that clock is
// behind. Past the overlap it waits, up to the deadline, while the target
// reports the old credential in use or a consumer does not serve the new
// version yet (WithConsumers); it asks again every poll interval. Nothing
// of this is kept but in the record's step: an agent that takes the
// rotation over waits again, from its takeover.
func (r *run) wait(ctx context.Context) error {
	if r.overlapFrom.IsZero() {
		r.overlapFrom = r.a.clock.Now()
	}
	end, deadline := r.overlapFrom.Add(r.a.overlap), r.overlapFrom.Add(r.a.deadline)
	for {
		now := r.a.clock.Now()
		if !now.Before(end) {
			n, waiting, err := r.stillInUse(ctx)
			if err != nil {
				return err
			}
			if n <= 0 && waiting == nil {
				break
			}
			if !r.a.clock.Now().Before(deadline) {
				if n > 0 {
					r.a.log.WarnContext(ctx, "rotation overlap deadline passed with the old credential still in use; revoking",
						"key", r.key, "rotation", r.rec.ID, "in_use", n)
				}
				if waiting != nil {
					r.a.log.WarnContext(ctx, "rotation overlap deadline passed with consumers not serving the new version; revoking",
						"key", r.key, "rotation", r.rec.ID, "consumers", waiting.Total, "waiting", len(waiting.Waiting), "why", waiting.Error())
					// The summary names a few; the servers that will fail
					// once the credential is revoked are each named here.
					for _, w := range waiting.Waiting {
						r.a.log.WarnContext(ctx, "consumer not serving the new version as the old credential is revoked",
							"key", r.key, "rotation", r.rec.ID, "consumer", w.Endpoint, "why", w.Error())
					}
				}
				break
			}
			if n > 0 {
				r.a.log.InfoContext(ctx, "rotation waits for the old credential to go out of use",
					"key", r.key, "rotation", r.rec.ID, "in_use", n)
			}
			if waiting != nil {
				r.a.log.InfoContext(ctx, "rotation waits for consumers to serve the new version",
					"key", r.key, "rotation", r.rec.ID, "consumers", waiting.Total, "waiting", len(waiting.Waiting), "why", waiting.Error())
			}
		}
		now = r.a.clock.Now()
		renewAt := r.leaseStart.Add(r.a.lease / 2)
		if !now.Before(renewAt) {
			if err := r.renew(ctx); err != nil {
				return err
			}
			renewAt = r.leaseStart.Add(r.a.lease / 2)
		}
		d := r.a.poll
		if now.Before(end) && end.Sub(now) < d {
			d = end.Sub(now)
		}
		if now.Before(deadline) && deadline.Sub(now) < d {
			d = deadline.Sub(now) // the last poll falls on the deadline, not a poll past it
		}
		if left := renewAt.Sub(now); left > 0 && left < d {
			d = left
		}
		if err := sleep(ctx, r.a.clock, d); err != nil {
			return r.unfinished(err)
		}
	}
	return r.advance(ctx, secrets.StepOverlapped, nil)
}

// stillInUse asks the target how many consumers still use the old
// credential and, with WithConsumers, which consumers do not serve the
// version current in the store yet (nil when all do), bounded by the lease
// like a step. A consumer that does not answer within the step's share of
// the lease counts as not switched; the rotation goes on waiting.
func (r *run) stillInUse(ctx context.Context) (int, *ConsumersError, error) {
	var n int
	var waiting *ConsumersError
	err := r.bounded(ctx, func(_, act context.Context) error {
		v, err := r.a.src.Fetch(act, r.key)
		if err == nil {
			n, err = r.a.target.InUse(act, v.Previous, v.Current, r.rec.Notes)
			if err != nil {
				err = fmt.Errorf("in use: %w", err)
			}
		}
		if err != nil {
			if e := r.stopped(act, err); e != nil {
				return e
			}
			return r.unfinished(err)
		}
		if r.a.consumers == nil {
			return nil
		}
		replaced := v.Previous
		if replaced.Version() != r.rec.From {
			replaced = secrets.Secret{}
		}
		if err := r.a.consumers.Check(act, r.key, v.Current, replaced); err != nil {
			if ctx.Err() != nil {
				return r.unfinished(ctx.Err())
			}
			if !errors.As(err, &waiting) {
				waiting = &ConsumersError{Key: r.key, Err: err}
			}
		}
		return nil
	})
	return n, waiting, err
}

func (r *run) revoke(ctx, act context.Context) error {
	v, err := r.a.src.Fetch(act, r.key)
	if err != nil {
		if e := r.stopped(act, err); e != nil {
			return e
		}
		return r.unfinished(err)
	}
	old := v.Previous
	if old.Version() != r.rec.From {
		old = secrets.Secret{} // not the one this rotation replaced
	}
	if err := r.a.target.Revoke(act, old, v.Current, r.rec.Notes); err != nil {
		if e := r.stopped(act, fmt.Errorf("revoke: %w", err)); e != nil {
			return e
		}
		return r.unfinished(fmt.Errorf("revoke: %w", err))
	}
	if rt, ok := r.a.target.(PreviousRetirer); ok && rt.RetirePrevious() && !old.IsZero() {
		rm, ok := r.a.src.(secrets.PreviousRemover)
		if !ok {
			return r.unfinished(fmt.Errorf("revoke: %w: the source cannot remove a previous version", ErrNotRotatable))
		}
		if err := rm.RemovePrevious(act, r.key, old.Version()); err != nil && !errors.Is(err, secrets.ErrConflict) {
			if e := r.stopped(act, fmt.Errorf("revoke: %w", err)); e != nil {
				return e
			}
			return r.unfinished(fmt.Errorf("revoke: %w", err))
		}
	}
	return r.advance(ctx, secrets.StepDone, nil)
}

func (r *run) rollback(ctx, act context.Context) error {
	v, pend, err := r.fetch(act)
	if err != nil {
		return err
	}
	if r.rec.Pending != "" && v.Current.Version() == r.rec.Pending {
		// Promoted after all (by an agent whose promote landed although
		// its step had run out of time): the store serves the new value,
		// so the rotation goes on from there, with a full overlap.
		return r.advance(ctx, secrets.StepPromoted, nil)
	}
	if r.rec.Pending != "" {
		// Restore what the store serves now, never what this agent
		// remembers: the downstream must accept the current version.
		if err := r.a.target.Restore(act, v.Current, pend); err != nil {
			if e := r.stopped(act, fmt.Errorf("restore: %w", err)); e != nil {
				return e
			}
			return r.unfinished(fmt.Errorf("restore: %w", err))
		}
	}
	if !v.Pending.IsZero() && (v.Pending.Version() == r.rec.Pending || r.rec.Pending == "") {
		if err := r.a.src.Discard(act, r.key, v.Pending.Version()); err != nil {
			if e := r.stopped(act, fmt.Errorf("discard: %w", err)); e != nil {
				return e
			}
			return r.unfinished(fmt.Errorf("discard: %w", err))
		}
	}
	return r.advance(ctx, secrets.StepRolledBack, nil)
}

// sleep waits d on clk, or until ctx ends.
func sleep(ctx context.Context, clk secrets.Clock, d time.Duration) error {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
