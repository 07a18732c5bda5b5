package rotate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
)

// slowSetDB is a fakeDB whose first Set is slow: it is entered, then takes
// effect only when released, as an ALTER ROLE stuck behind a lock or a
// connect to a host that answers late would. Like them (and as Target
// requires), it honours ctx: when ctx ends first, it returns without
// effect, as a canceled statement does.
type slowSetDB struct {
	*fakeDB
	once    sync.Once
	entered chan struct{}
	release chan struct{}
	cause   error // why the slow Set's ctx ended, once it did
}

func newSlowSetDB(db *fakeDB) *slowSetDB {
	return &slowSetDB{fakeDB: db, entered: make(chan struct{}), release: make(chan struct{})}
}

func (d *slowSetDB) Set(ctx context.Context, cur, pending secrets.Secret) (map[string]string, error) {
	first := false
	d.once.Do(func() { first = true })
	if first {
		close(d.entered)
		select {
		case <-d.release:
		case <-ctx.Done():
			d.mu.Lock()
			d.cause = context.Cause(ctx)
			d.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	return d.fakeDB.Set(ctx, cur, pending)
}

// firstAct is a fakeDB that records when (on clk) an agent first acted on
// it: set, verified or restored.
type firstAct struct {
	*fakeDB
	clk  *fakeclock.Clock
	once sync.Once
	at   time.Time
}

func (d *firstAct) acted() { d.once.Do(func() { d.at = d.clk.Now() }) }

func (d *firstAct) Set(ctx context.Context, cur, pending secrets.Secret) (map[string]string, error) {
	d.acted()
	return d.fakeDB.Set(ctx, cur, pending)
}

func (d *firstAct) Verify(ctx context.Context, pending secrets.Secret) error {
	d.acted()
	return d.fakeDB.Verify(ctx, pending)
}

func (d *firstAct) Restore(ctx context.Context, cur, pending secrets.Secret) error {
	d.acted()
	return d.fakeDB.Restore(ctx, cur, pending)
}

// checkNoSplitBrain asserts the end state after every run returned: the
// downstream accepts what the store serves as current, or its pending
// version.
func checkNoSplitBrain(t *testing.T, src interface {
	Fetch(context.Context, string) (secrets.Versions, error)
}, db *fakeDB) {
	t.Helper()
	v, err := src.Fetch(ctxT(t), "db")
	if err != nil {
		t.Fatal(err)
	}
	if db.get() != v.Current.Reveal() && db.get() != v.Pending.Reveal() {
		t.Fatalf("split brain: the downstream accepts neither the store's current value (version %s) nor a pending one (pending %q): consumers are locked out",
			v.Current.Version(), v.Pending.Version())
	}
}

// TestAStuckStepEndsBeforeAnotherAgentMayTakeOver: agent A is inside Set
// (stuck) when its lease runs out; agent B, watching the record, takes the
// rotation over, and its verify fails, so it rolls back (downstream
// restored to the current value, pending discarded). A's Set must not land
// after that: it runs under a context that ends three quarters of a lease
// after A's last save, a quarter of a lease before B, which counts a full
// lease from when it first read the record, may act. A stops unfinished;
// the database and the store agree.
func TestAStuckStepEndsBeforeAnotherAgentMayTakeOver(t *testing.T) {
	src, db, clk := setup(t)
	slow := newSlowSetDB(db)
	a := newAgent(t, src, slow, clk, "a")
	aDone := make(chan error, 1)
	go func() { _, err := a.Rotate(ctxT(t), "db"); aDone <- err }()
	<-slow.entered
	enteredAt := clk.Now() // A saved the record (renewed its lease) just before Set

	db.mu.Lock()
	db.failVerify = true
	db.mu.Unlock()
	bdb := &firstAct{fakeDB: db, clk: clk}
	b := newAgent(t, src, bdb, clk, "b")
	_, errB := runClocked(t, clk, func() (rotate.Report, error) { return b.Rotate(ctxT(t), "db") })
	if !errors.Is(errB, rotate.ErrRolledBack) {
		t.Fatalf("B: err = %v, want ErrRolledBack", errB)
	}
	if got := bdb.at.Sub(enteredAt); got < time.Minute {
		close(slow.release)
		t.Fatalf("B acted downstream %v after A's last save, before a full lease (1m)", got)
	}
	errA := <-aDone // A's Set returns only when its context ends: release is never closed before
	close(slow.release)
	if !errors.Is(errA, rotate.ErrUnfinished) || !strings.Contains(errA.Error(), "share of the lease") {
		t.Fatalf("A: err = %v, want ErrUnfinished saying the step ran out of its share of the lease", errA)
	}
	if slow.cause == nil || !strings.Contains(slow.cause.Error(), "share of the lease") {
		t.Fatalf("A's Set ended with cause %v, want the end of its share of the lease", slow.cause)
	}
	checkNoSplitBrain(t, src, db)
	checkAgree(t, src, db, "db")
}

// TestOneAgentRotatesAKeyOneAtATime: one Agent ("safe for concurrent use")
// is asked to rotate the same key twice at once (an operator's "rotate now"
// clicked twice, a schedule and a manual run). The second call returns
// ErrInProgress at once, changing nothing, instead of driving the
// downstream beside the first; the first finishes (here: rolls back).
func TestOneAgentRotatesAKeyOneAtATime(t *testing.T) {
	src, db, clk := setup(t)
	slow := newSlowSetDB(db)
	a := newAgent(t, src, slow, clk, "a")
	first := make(chan error, 1)
	go func() { _, err := a.Rotate(ctxT(t), "db"); first <- err }()
	<-slow.entered

	db.mu.Lock()
	db.failVerify = true
	db.mu.Unlock()
	before, _ := src.LoadRotation(ctxT(t), "db")
	_, err2 := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") })
	if !errors.Is(err2, rotate.ErrInProgress) {
		t.Errorf("second concurrent Rotate of one key on one Agent: err = %v, want ErrInProgress", err2)
	}
	if after, _ := src.LoadRotation(ctxT(t), "db"); after.Revision != before.Revision {
		t.Error("the second Rotate changed the record")
	}
	close(slow.release)
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return rotate.Report{}, <-first }); !errors.Is(err, rotate.ErrRolledBack) {
		t.Fatalf("first: err = %v, want ErrRolledBack", err)
	}
	checkAgree(t, src, db, "db")
	// A later Rotate on the same Agent runs.
	db.mu.Lock()
	db.failVerify = false
	db.mu.Unlock()
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
		t.Fatal(err)
	}
	checkAgree(t, src, db, "db")
}

// TestAnAgentOfTheSameNameWatchesTheLeaseToo: an agent that stopped
// part-way is started again as a new process under the same owner name. A
// name does not prove that the earlier process stopped, so the new one is
// kept out for a lease like any other agent, and then takes over.
func TestAnAgentOfTheSameNameWatchesTheLeaseToo(t *testing.T) {
	src, db, clk := setup(t)
	crash := func(_ string, s secrets.RotationStep, recorded bool) error {
		if s == secrets.StepSet && recorded {
			return errors.New("injected crash")
		}
		return nil
	}
	a := newAgent(t, src, db, clk, "a", rotate.WithStepHook(crash))
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); !errors.Is(err, rotate.ErrCrashed) {
		t.Fatal(err)
	}
	again := newAgent(t, src, db, clk, "a")
	keptOut(t, clk, src, "db", func(ctx context.Context) (rotate.Report, error) { return again.Rotate(ctx, "db") })
	rep, err := runClocked(t, clk, func() (rotate.Report, error) { return again.Rotate(ctxT(t), "db") })
	if err != nil || !rep.Resumed {
		t.Fatalf("after the lease: %+v, %v", rep, err)
	}
	checkAgree(t, src, db, "db")
}

// TestAWatcherBacksOffWhenTheHolderSaves: an agent watching a held record
// returns ErrInProgress, changing nothing, as soon as the holder saves the
// record again (a renewal: the holder is alive), however little time has
// passed.
func TestAWatcherBacksOffWhenTheHolderSaves(t *testing.T) {
	src, db, clk := setup(t)
	crash := func(_ string, s secrets.RotationStep, recorded bool) error {
		if s == secrets.StepStaged && recorded {
			return errors.New("stop here; the test renews the lease in its place")
		}
		return nil
	}
	a := newAgent(t, src, db, clk, "a", rotate.WithStepHook(crash))
	if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); !errors.Is(err, rotate.ErrCrashed) {
		t.Fatal(err)
	}
	b := newAgent(t, src, db, clk, "b")
	var errB error
	done := make(chan struct{})
	go func() { defer close(done); _, errB = b.Rotate(ctxT(t), "db") }()
	if !awaitWait(t, clk, done) {
		t.Fatalf("B returned before watching: %v", errB)
	}
	rec, err := src.LoadRotation(ctxT(t), "db")
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := src.SaveRotation(ctxT(t), "db", rec) // what A's renewal does
	if err != nil {
		t.Fatal(err)
	}
	boundsOf(clk).advanceToWait(time.Time{})
	<-done
	if !errors.Is(errB, rotate.ErrInProgress) {
		t.Fatalf("B: err = %v, want ErrInProgress", errB)
	}
	if now, _ := src.LoadRotation(ctxT(t), "db"); now.Revision != renewed.Revision || now.Owner != "a" {
		t.Fatal("B changed the record")
	}
}

// skewed is a clock off base by off, sharing its timers.
type skewed struct {
	base *fakeclock.Clock
	off  time.Duration
}

func (s skewed) Now() time.Time                         { return s.base.Now().Add(s.off) }
func (s skewed) NewTimer(d time.Duration) secrets.Timer { return s.base.NewTimer(d) }

// revokeClock records, on the reference clock, when Revoke runs.
type revokeClock struct {
	*fakeDB
	clk       *fakeclock.Clock
	mu        sync.Mutex
	revokedAt time.Time
}

func (d *revokeClock) Revoke(ctx context.Context, old, cur secrets.Secret, notes map[string]string) error {
	d.mu.Lock()
	d.revokedAt = d.clk.Now()
	d.mu.Unlock()
	return d.fakeDB.Revoke(ctx, old, cur, notes)
}

// TestClockSkewShortensNeitherLeaseNorOverlap: agent A promotes and dies;
// agent B, whose clock is 45 s ahead of or behind A's (lease 1 min, TTL
// 10 s, overlap 30 s), takes the rotation over only after a full lease of
// reference time since A's last save, and revokes the old credential no
// sooner than the overlap after the promotion: both are measured on B's
// own clock, never by comparing A's recorded times with it.
func TestClockSkewShortensNeitherLeaseNorOverlap(t *testing.T) {
	for _, off := range []time.Duration{45 * time.Second, -45 * time.Second} {
		t.Run(fmt.Sprintf("skew=%v", off), func(t *testing.T) {
			src, db, clk := setup(t)
			target := &revokeClock{fakeDB: db, clk: clk}
			var promotedAt time.Time
			crash := func(_ string, s secrets.RotationStep, recorded bool) error {
				if s == secrets.StepPromoted && recorded {
					promotedAt = clk.Now()
					return errors.New("injected crash")
				}
				return nil
			}
			a := newAgent(t, src, target, clk, "a", rotate.WithStepHook(crash))
			if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); !errors.Is(err, rotate.ErrCrashed) {
				t.Fatalf("A: %v", err)
			}
			var tookOver time.Time
			b, err := rotate.New(src, target, 10*time.Second, rotate.WithClock(skewed{clk, off}), rotate.WithBoundsClock(boundsOf(clk)),
				rotate.WithLogger(quiet()), rotate.WithOwner("b"), rotate.WithPollInterval(time.Second), rotate.WithLease(time.Minute),
				rotate.WithNotify(func(_ context.Context, e rotate.Event) {
					if e.Kind == rotate.EventResumed {
						tookOver = clk.Now()
					}
				}))
			if err != nil {
				t.Fatal(err)
			}
			// B tries until it may take over, as Run would.
			for {
				_, err := runClocked(t, clk, func() (rotate.Report, error) { return b.Rotate(ctxT(t), "db") })
				if err == nil {
					break
				}
				if !errors.Is(err, rotate.ErrInProgress) {
					t.Fatal(err)
				}
				clk.Advance(time.Second)
			}
			if got := tookOver.Sub(promotedAt); got < time.Minute {
				t.Errorf("B took the rotation over %v (reference time) after A's last save, before the lease of 1m", got)
			}
			if got := target.revokedAt.Sub(promotedAt); got < 30*time.Second {
				t.Errorf("the old credential was revoked %v (reference time) after the promotion, before the overlap of 3 × TTL (30s)", got)
			}
			checkAgree(t, src, db, "db")
		})
	}
}
