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
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// Defaults of the Agent's options.
const (
	// DefaultLease is how long a rotation record, once saved, keeps other
	// agents out: two minutes. The Agent renews it while it waits.
	DefaultLease = 2 * time.Minute
	// DefaultPollInterval is how often the Agent asks the target, during
	// the overlap, whether the old credential is still in use: 10 seconds.
	DefaultPollInterval = 10 * time.Second
	// MinOverlapFactor is the shortest overlap the Agent accepts, in units
	// of the consumers' TTL: a consumer polling every TTL may be a full TTL
	// late, and a failed poll retried costs another.
	MinOverlapFactor = 3
)

// An Agent rotates keys of one source into one target. It is safe for
// concurrent use; rotations of one key are kept one at a time by the rotation
// record in the store, across agents, processes and machines, not by the
// Agent.
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
	log        *slog.Logger
	owner      string
	notify     []func(context.Context, Event)
	hook       func(key string, step secrets.RotationStep, recorded bool) error
	maxAge     time.Duration
	jitter     time.Duration
	retry      time.Duration
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
// old credential is still in use (PostgreSQL sessions of the old role): the
// Agent waits past the overlap until nothing uses it, but no longer than
// this after the promotion, and then revokes it anyway, with a warning.
// Default: four times the overlap. It must not be shorter than the overlap.
func WithOverlapDeadline(d time.Duration) Option {
	return func(a *Agent) error { a.deadline = d; return nil }
}

// WithPollInterval sets how often the Agent asks the target whether the old
// credential is still in use (default DefaultPollInterval).
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
// (default DefaultLease). It must be longer than any one step takes (a
// login, an ALTER ROLE): an agent whose lease ran out mid-step finds its next
// save refused and stops, and the agent that took over redoes the step.
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
// runs (default: host name, process id and a random part). Two agents must
// not share one.
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
// earlier agent left part-way, whose lease has run out. It returns when the
// rotation is done (the old credential revoked, after the overlap), or
// rolled back, or cannot go on.
//
// Errors are *Error: ErrInProgress when another agent holds the key
// (nothing changed), ErrNotRotatable when the source or the value cannot be
// rotated (nothing changed), ErrRolledBack when the new value failed and the
// rotation was undone, ErrUnfinished when the store or the downstream failed
// part-way (the record says where; the next Rotate, by any agent, after the
// lease, resumes), a nil class when nothing was started (the store or the
// downstream could not be read). When a rotation was resumed and rolled
// back, Rotate returns ErrRolledBack too.
//
// Rotate may be called for different keys at once. It blocks through the
// overlap; cancel ctx to stop waiting (the record keeps the rotation, which a
// later Rotate finishes).
func (a *Agent) Rotate(ctx context.Context, key string) (Report, error) {
	rec, err := a.src.LoadRotation(ctx, key)
	if err != nil {
		return Report{}, &Error{Key: key, Step: "load record", Err: err}
	}
	now := a.clock.Now()
	if !rec.Step.Terminal() {
		if rec.Locked(now) && rec.Owner != a.owner {
			return Report{}, &Error{Key: key, Step: string(rec.Step), Class: ErrInProgress,
				Err: fmt.Errorf("rotation %s held by %s until %s", rec.ID, rec.Owner, rec.Expires.UTC().Format(time.RFC3339))}
		}
		prevOwner := rec.Owner
		rec.Owner, rec.Expires, rec.Updated = a.owner, now.Add(a.lease), now
		saved, err := a.src.SaveRotation(ctx, key, rec)
		if err != nil {
			return Report{}, a.saveFailed(key, rec, err)
		}
		a.event(ctx, Event{Kind: EventResumed, Key: key, Rotation: saved, Detail: "taken over from " + prevOwner})
		r := &run{a: a, key: key, rec: saved, resumed: true}
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
	next := secrets.Rotation{
		ID: now.UTC().Format("20060102T150405Z") + "-" + randomID(6), Step: secrets.StepStarted,
		Owner: a.owner, Expires: now.Add(a.lease), Started: now, Updated: now,
		From: v.Current.Version(), Revision: rec.Revision,
	}
	saved, err := a.src.SaveRotation(ctx, key, next)
	if err != nil {
		return Report{}, a.saveFailed(key, next, err)
	}
	r := &run{a: a, key: key, rec: saved}
	a.event(ctx, Event{Kind: EventStep, Key: key, Rotation: saved})
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
// lease.
func (r *run) advance(ctx context.Context, step secrets.RotationStep, mutate func(*secrets.Rotation)) error {
	if err := r.crashPoint(step, false); err != nil {
		return err
	}
	rec := r.rec.Clone()
	now := r.a.clock.Now()
	rec.Step, rec.Updated = step, now
	rec.Expires = now.Add(r.a.lease)
	if step.Terminal() {
		rec.Expires = time.Time{}
	}
	if mutate != nil {
		mutate(&rec)
	}
	saved, err := r.a.src.SaveRotation(ctx, r.key, rec)
	if err != nil {
		return r.a.saveFailed(r.key, rec, err)
	}
	r.rec = saved
	r.a.event(ctx, Event{Kind: EventStep, Key: r.key, Rotation: saved})
	return r.crashPoint(step, true)
}

// renew saves the record unchanged but for its lease, when less than half
// of the lease is left.
func (r *run) renew(ctx context.Context) error {
	now := r.a.clock.Now()
	if r.rec.Expires.Sub(now) > r.a.lease/2 {
		return nil
	}
	rec := r.rec.Clone()
	rec.Expires, rec.Updated = now.Add(r.a.lease), now
	saved, err := r.a.src.SaveRotation(ctx, r.key, rec)
	if err != nil {
		return r.a.saveFailed(r.key, rec, err)
	}
	r.rec = saved
	return nil
}

func (r *run) unfinished(err error) error {
	return &Error{Key: r.key, Step: string(r.rec.Step), Class: ErrUnfinished, Err: err}
}

// drive runs the rotation from the step its record has reached to its end.
func (r *run) drive(ctx context.Context) (Report, error) {
	for {
		var err error
		switch r.rec.Step {
		case secrets.StepStarted:
			err = r.stage(ctx)
		case secrets.StepStaged:
			err = r.set(ctx)
		case secrets.StepSet:
			err = r.verify(ctx)
		case secrets.StepVerified:
			err = r.promote(ctx)
		case secrets.StepPromoted:
			err = r.wait(ctx)
		case secrets.StepOverlapped:
			err = r.revoke(ctx)
		case secrets.StepRollingBack:
			err = r.rollback(ctx)
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
func (r *run) fetch(ctx context.Context) (secrets.Versions, secrets.Secret, error) {
	v, err := r.a.src.Fetch(ctx, r.key)
	if err != nil {
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

func (r *run) stage(ctx context.Context) error {
	v, err := r.a.src.Fetch(ctx, r.key)
	if err != nil {
		return r.unfinished(err)
	}
	if v.Current.Version() != r.rec.From {
		// Changed outside the rotation before anything was set downstream:
		// drop what this rotation may have staged, and stop.
		return r.rollBack(ctx, fmt.Errorf("%w: the current version changed from %s to %s outside the rotation", secrets.ErrConflict, r.rec.From, v.Current.Version()))
	}
	id := v.Pending.Version()
	if v.Pending.IsZero() {
		val, err := r.a.target.Next(ctx, v.Current)
		if err != nil {
			return r.rollBack(ctx, fmt.Errorf("generate: %w", err))
		}
		id, err = r.a.src.Stage(ctx, r.key, secrets.StageRequest{Current: r.rec.From, Value: val, Token: r.rec.ID})
		clear(val)
		if err != nil {
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

func (r *run) set(ctx context.Context) error {
	v, pend, err := r.fetch(ctx)
	if err != nil {
		return err
	}
	if pend.IsZero() || v.Current.Version() != r.rec.From {
		return r.rollBack(ctx, fmt.Errorf("%w: the store no longer holds version %s pending over %s", secrets.ErrConflict, r.rec.Pending, r.rec.From))
	}
	notes, err := r.a.target.Set(ctx, v.Current, pend)
	if err != nil {
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

func (r *run) verify(ctx context.Context) error {
	v, pend, err := r.fetch(ctx)
	if err != nil {
		return err
	}
	if pend.IsZero() || v.Current.Version() != r.rec.From {
		return r.rollBack(ctx, fmt.Errorf("%w: the store no longer holds version %s pending over %s", secrets.ErrConflict, r.rec.Pending, r.rec.From))
	}
	if err := r.a.target.Verify(ctx, pend); err != nil {
		if ctx.Err() != nil {
			return r.unfinished(err)
		}
		return r.rollBack(ctx, fmt.Errorf("verify: %w", err))
	}
	return r.advance(ctx, secrets.StepVerified, nil)
}

func (r *run) promote(ctx context.Context) error {
	err := r.a.src.Promote(ctx, r.key, r.rec.Pending, r.rec.From)
	switch {
	case err == nil:
	case errors.Is(err, secrets.ErrConflict), errors.Is(err, secrets.ErrNotFound):
		return r.rollBack(ctx, fmt.Errorf("promote: %w", err))
	default:
		return r.unfinished(fmt.Errorf("promote: %w", err))
	}
	now := r.a.clock.Now()
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

// notePromotedAt is the note that records when the new version was promoted,
// from which the overlap is measured by whichever agent waits it out.
const notePromotedAt = "promoted_at"

func (r *run) wait(ctx context.Context) error {
	promoted, err := time.Parse(time.RFC3339Nano, r.rec.Notes[notePromotedAt])
	if err != nil {
		promoted = r.rec.Updated
	}
	end, deadline := promoted.Add(r.a.overlap), promoted.Add(r.a.deadline)
	for {
		now := r.a.clock.Now()
		if !now.Before(end) {
			v, err := r.a.src.Fetch(ctx, r.key)
			if err != nil {
				return r.unfinished(err)
			}
			n, err := r.a.target.InUse(ctx, v.Previous, v.Current, r.rec.Notes)
			if err != nil {
				return r.unfinished(fmt.Errorf("in use: %w", err))
			}
			if n <= 0 {
				break
			}
			if !now.Before(deadline) {
				r.a.log.WarnContext(ctx, "rotation overlap deadline passed with the old credential still in use; revoking",
					"key", r.key, "rotation", r.rec.ID, "in_use", n)
				break
			}
			r.a.log.InfoContext(ctx, "rotation waits for the old credential to go out of use",
				"key", r.key, "rotation", r.rec.ID, "in_use", n)
		}
		if err := r.renew(ctx); err != nil {
			return err
		}
		d := r.a.poll
		if now.Before(end) && end.Sub(now) < d {
			d = end.Sub(now)
		}
		if left := r.rec.Expires.Sub(now) / 2; left > 0 && left < d {
			d = left
		}
		if err := sleep(ctx, r.a.clock, d); err != nil {
			return r.unfinished(err)
		}
	}
	return r.advance(ctx, secrets.StepOverlapped, nil)
}

func (r *run) revoke(ctx context.Context) error {
	v, err := r.a.src.Fetch(ctx, r.key)
	if err != nil {
		return r.unfinished(err)
	}
	old := v.Previous
	if old.Version() != r.rec.From {
		old = secrets.Secret{} // not the one this rotation replaced
	}
	if err := r.a.target.Revoke(ctx, old, v.Current, r.rec.Notes); err != nil {
		return r.unfinished(fmt.Errorf("revoke: %w", err))
	}
	if rt, ok := r.a.target.(PreviousRetirer); ok && rt.RetirePrevious() && !old.IsZero() {
		rm, ok := r.a.src.(secrets.PreviousRemover)
		if !ok {
			return r.unfinished(fmt.Errorf("revoke: %w: the source cannot remove a previous version", ErrNotRotatable))
		}
		if err := rm.RemovePrevious(ctx, r.key, old.Version()); err != nil && !errors.Is(err, secrets.ErrConflict) {
			return r.unfinished(fmt.Errorf("revoke: %w", err))
		}
	}
	return r.advance(ctx, secrets.StepDone, nil)
}

func (r *run) rollback(ctx context.Context) error {
	v, pend, err := r.fetch(ctx)
	if err != nil {
		return err
	}
	if r.rec.Pending != "" && v.Current.Version() == r.rec.Pending {
		// Promoted after all (by an agent whose lease ran out): the store
		// serves the new value, so the rotation goes on from there.
		return r.advance(ctx, secrets.StepPromoted, nil)
	}
	if r.rec.Pending != "" {
		// Restore what the store serves now, never what this agent
		// remembers: the downstream must accept the current version.
		if err := r.a.target.Restore(ctx, v.Current, pend); err != nil {
			return r.unfinished(fmt.Errorf("restore: %w", err))
		}
	}
	if !v.Pending.IsZero() && (v.Pending.Version() == r.rec.Pending || r.rec.Pending == "") {
		if err := r.a.src.Discard(ctx, r.key, v.Pending.Version()); err != nil {
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
