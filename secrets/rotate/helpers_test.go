package rotate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeDB is a downstream that accepts one password at a time, as a
// database role does.
type fakeDB struct {
	mu         sync.Mutex
	accepted   string
	inUse      int
	failVerify bool
	down       bool
	revoked    int
	seq        int
}

var errDown = errors.New("fakedb: connection refused")

func (d *fakeDB) Check(_ context.Context, cur secrets.Secret) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return errDown
	}
	if cur.Reveal() != d.accepted {
		return fmt.Errorf("%w: refused", rotate.ErrNotRotatable)
	}
	return nil
}

func (d *fakeDB) Next(context.Context, secrets.Secret) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	return fmt.Appendf(nil, "pw-%d-%d", d.seq, time.Now().UnixNano()), nil
}

func (d *fakeDB) Set(_ context.Context, _, pending secrets.Secret) (map[string]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return nil, errDown
	}
	d.accepted = pending.Reveal()
	return map[string]string{"role": "app"}, nil
}

func (d *fakeDB) Verify(_ context.Context, pending secrets.Secret) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return errDown
	}
	if d.failVerify || d.accepted != pending.Reveal() {
		return errors.New("fakedb: probe failed")
	}
	return nil
}

func (d *fakeDB) Restore(_ context.Context, current, _ secrets.Secret) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return errDown
	}
	d.accepted = current.Reveal()
	return nil
}

func (d *fakeDB) InUse(context.Context, secrets.Secret, secrets.Secret, map[string]string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inUse, nil
}

func (d *fakeDB) Revoke(context.Context, secrets.Secret, secrets.Secret, map[string]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.revoked++
	return nil
}

func (d *fakeDB) get() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.accepted
}

// boundsClock is the clock the Agents of a test time the ends of their
// steps' contexts on (rotate.WithBoundsClock): the test's fake clock itself,
// keeping a record of which of its armed timers are such ends. runClocked
// and keptOut move the clock to the waits of the code under test only,
// never to the end of a step, which on a fake clock takes no time; the
// clock still passes a step's end when a wait lies beyond it, as time
// passes for a step that is stuck.
type boundsClock struct {
	*fakeclock.Clock
	mu     sync.Mutex
	bounds map[*boundTimer]time.Time // armed step ends and their deadlines
}

var boundsClocks sync.Map // *fakeclock.Clock → *boundsClock

func boundsOf(clk *fakeclock.Clock) *boundsClock {
	b, _ := boundsClocks.LoadOrStore(clk, &boundsClock{Clock: clk, bounds: map[*boundTimer]time.Time{}})
	return b.(*boundsClock)
}

func (b *boundsClock) NewTimer(d time.Duration) secrets.Timer {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &boundTimer{Timer: b.Clock.NewTimer(d), b: b}
	b.bounds[t] = b.Clock.Now().Add(d)
	return t
}

type boundTimer struct {
	secrets.Timer
	b *boundsClock
}

func (t *boundTimer) Stop() bool {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	delete(t.b.bounds, t)
	return t.Timer.Stop()
}

func (t *boundTimer) Reset(d time.Duration) bool {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	t.b.bounds[t] = t.b.Clock.Now().Add(d)
	return t.Timer.Reset(d)
}

// waitsLocked returns the deadlines of the armed timers that are not step
// ends, earliest first.
func (b *boundsClock) waitsLocked() []time.Time {
	now := b.Clock.Now()
	skip := map[time.Time]int{}
	for _, d := range b.bounds {
		if d.After(now) { // a bound at or before now has fired
			skip[d]++
		}
	}
	var out []time.Time
	for _, d := range b.Clock.Timers() {
		if skip[d] > 0 {
			skip[d]--
			continue
		}
		out = append(out, d)
	}
	return out
}

func (b *boundsClock) waits() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waitsLocked()
}

// advanceToWait moves the clock to the earliest wait, if it is before
// limit (zero: no limit), and reports whether it did.
func (b *boundsClock) advanceToWait(limit time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ws := b.waitsLocked()
	if len(ws) == 0 || !limit.IsZero() && !ws[0].Before(limit) {
		return false
	}
	b.Clock.Advance(max(0, ws[0].Sub(b.Clock.Now())))
	return true
}

// awaitWait blocks until a wait is armed on clk (true) or done is closed
// (false).
func awaitWait(t *testing.T, clk *fakeclock.Clock, done <-chan struct{}) bool {
	t.Helper()
	b := boundsOf(clk)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	waited := make(chan error, 1)
	go func() {
		waited <- clk.WaitFor(ctx, func([]time.Time) bool { return len(b.waits()) > 0 })
	}()
	select {
	case <-done:
		cancel()
		<-waited
		return false
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
		return true
	}
}

// runClocked runs fn while advancing clk to each wait that fn arms, so that
// waits on the fake clock pass without any sleep.
func runClocked[T any](t *testing.T, clk *fakeclock.Clock, fn func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	var r result
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.v, r.err = fn()
	}()
	for awaitWait(t, clk, done) {
		boundsOf(clk).advanceToWait(time.Time{})
	}
	return r.v, r.err
}

// keptOut runs rot, a Rotate of key that finds the record held, and moves
// the clock from wait to wait while less than a lease (one minute, as
// newAgent sets it) has passed; then it cancels rot. rot must not have
// returned before, must return ErrInProgress, and must have left the record
// as it was.
func keptOut(t *testing.T, clk *fakeclock.Clock, src secrets.RotationRecorder, key string, rot func(context.Context) (rotate.Report, error)) {
	t.Helper()
	before, err := src.LoadRotation(ctxT(t), key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var rotErr error
	done := make(chan struct{})
	start := clk.Now()
	go func() { defer close(done); _, rotErr = rot(ctx) }()
	for {
		if !awaitWait(t, clk, done) {
			t.Fatalf("another agent, within the lease, returned at once: %v", rotErr)
		}
		if !boundsOf(clk).advanceToWait(start.Add(time.Minute)) {
			break
		}
	}
	cancel()
	<-done
	if !errors.Is(rotErr, rotate.ErrInProgress) {
		t.Fatalf("another agent, within the lease: err = %v, want ErrInProgress", rotErr)
	}
	after, err := src.LoadRotation(ctxT(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if after.Revision != before.Revision || after.Owner != before.Owner {
		t.Fatalf("another agent, within the lease, changed the record (owner %s, was %s)", after.Owner, before.Owner)
	}
}

// checkAgree asserts the end state of a rotation: nothing pending, no lock,
// and the downstream accepting what the store serves.
func checkAgree(t *testing.T, src *memory.Source, db *fakeDB, key string) secrets.Versions {
	t.Helper()
	v, err := src.Fetch(ctxT(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Pending.IsZero() {
		t.Fatalf("a version is still pending: %s", v.Pending.Version())
	}
	if got := db.get(); got != v.Current.Reveal() {
		t.Fatal("the downstream does not accept the store's current value")
	}
	rec, err := src.LoadRotation(ctxT(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Step.Terminal() {
		t.Fatalf("the rotation record is at step %q", rec.Step)
	}
	return v
}

func newAgent(t *testing.T, src secrets.Source, target rotate.Target, clk *fakeclock.Clock, owner string, opts ...rotate.Option) *rotate.Agent {
	t.Helper()
	opts = append([]rotate.Option{rotate.WithClock(clk), rotate.WithBoundsClock(boundsOf(clk)), rotate.WithLogger(quiet()),
		rotate.WithOwner(owner), rotate.WithPollInterval(time.Second), rotate.WithLease(time.Minute)}, opts...)
	a, err := rotate.New(src, target, 10*time.Second, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
