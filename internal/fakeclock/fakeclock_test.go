package fakeclock_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/internal/fakeclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fired(tm interface{ C() <-chan time.Time }) bool {
	select {
	case <-tm.C():
		return true
	default:
		return false
	}
}

func TestTimerFiresOnlyWhenDue(t *testing.T) {
	c := fakeclock.New(t0)
	tm := c.NewTimer(time.Minute)
	c.Advance(59 * time.Second)
	if fired(tm) {
		t.Fatal("fired early")
	}
	c.Advance(time.Second)
	if !fired(tm) {
		t.Fatal("did not fire at its deadline")
	}
	if !c.Now().Equal(t0.Add(time.Minute)) {
		t.Fatalf("Now = %v", c.Now())
	}
}

func TestStopAndReset(t *testing.T) {
	c := fakeclock.New(t0)
	tm := c.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop of an armed timer returned false")
	}
	c.Advance(time.Hour)
	if fired(tm) {
		t.Fatal("a stopped timer fired")
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a stopped timer returned true")
	}
	c.Advance(time.Second)
	// Reset drains a value nobody took, as time.Timer does.
	tm.Reset(time.Minute)
	if fired(tm) {
		t.Fatal("Reset left a stale value in the channel")
	}
	if got := c.Timers(); len(got) != 1 || !got[0].Equal(c.Now().Add(time.Minute)) {
		t.Fatalf("Timers = %v", got)
	}
	tm.Reset(0)
	if !fired(tm) {
		t.Fatal("Reset(0) did not fire at once")
	}
}

func TestWaitTimerAt(t *testing.T) {
	c := fakeclock.New(t0)
	done := make(chan error, 1)
	go func() { done <- c.WaitTimerAt(context.Background(), t0.Add(time.Minute)) }()
	c.NewTimer(time.Minute)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.WaitTimerAt(ctx, t0.Add(time.Hour)); err == nil {
		t.Fatal("WaitTimerAt ignored its context")
	}
}
