package secrets

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// firingClock is a Clock whose time never moves and whose new timers have
// fired already: a spread wait ends at once. A timer reset does not fire
// again, and no background refresh comes due: the Store's scheduler takes
// its timer's first firing as a nudge to look, and finds nothing due.
type firingClock struct{ sigClock }

func (firingClock) NewTimer(time.Duration) Timer {
	t := &firedTimer{ch: make(chan time.Time, 1)}
	t.ch <- time.Time{}
	return t
}

type firedTimer struct{ ch chan time.Time }

func (t *firedTimer) C() <-chan time.Time      { return t.ch }
func (t *firedTimer) Stop() bool               { return false }
func (t *firedTimer) Reset(time.Duration) bool { return false }

// TestSignalDuringSpreadJoins: a signal waiting in the channel when a
// spread reload starts (it arrived during the wait) is taken by that
// reload: none is left to start another.
func TestSignalDuringSpreadJoins(t *testing.T) {
	src := newSigSource("1")
	st, err := New(src, WithClock(firingClock{}), WithReloadSpread(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := sigCtx(t)
	if _, err := st.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	ch := make(chan os.Signal, 1)
	ch <- syscall.SIGHUP // arrived during the wait
	if !st.reloadOnSignal(ctx, ch, syscall.SIGHUP) {
		t.Fatal("reloadOnSignal gave up")
	}
	if n := len(ch); n != 0 {
		t.Fatalf("%d signal(s) left for another reload after the spread reload began", n)
	}
	if n := src.count(); n != 2 {
		t.Fatalf("%d fetches, want the first load and one reload", n)
	}
}
