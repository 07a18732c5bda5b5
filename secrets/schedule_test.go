package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"

	"github.com/rotorhq/rotor/secrets"
)

func TestStaleWhileRevalidate(t *testing.T) {
	f := newFixture(t, secrets.WithJitter(0))
	f.src.Set("k", "old")
	f.get("k")
	f.src.Set("k", "new")
	release := f.src.hold("k")
	defer release()

	f.clock.Advance(time.Minute) // the TTL
	f.src.waitFetches(t, "k", 2) // one background refresh, held at the gate

	for i := 0; i < 100; i++ {
		if got := f.get("k").Reveal(); got != "old" {
			t.Fatalf("during the refresh Get = %q, want the old value", got)
		}
	}
	if c := f.src.count("k"); c != 2 {
		t.Fatalf("fetches = %d, want the first load and one refresh", c)
	}
	release()
	f.waitRound()
	if got := f.get("k").Reveal(); got != "new" {
		t.Fatalf("after the refresh Get = %q, want new", got)
	}
}

func TestJitterSpreadsRefresh(t *testing.T) {
	f := newFixture(t, secrets.WithTTL(10*time.Minute), secrets.WithJitter(0.2))
	f.src.Set("k", "v")
	f.get("k")
	// With the random fraction fixed at 0.5, the refresh comes 0.5·0.2·TTL early.
	want := epoch.Add(10*time.Minute - time.Minute)
	if got := f.status("k").NextRefresh; !got.Equal(want) {
		t.Fatalf("NextRefresh = %v, want %v", got, want)
	}
}

func TestBackoffSchedule(t *testing.T) {
	f := newFixture(t, secrets.WithBackoff(time.Second, 8*time.Second))
	f.src.Set("k", "good")
	f.get("k")
	f.src.fail("k", fmt.Errorf("throttled: %w", secrets.ErrTransient))

	f.advanceTo(f.status("k").NextRefresh)
	// Full jitter with the random fraction at 0.5: half of min(8s, 1s·2ⁿ⁻¹).
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, w := range want {
		f.waitRound()
		st := f.status("k")
		if st.Failures != i+1 {
			t.Fatalf("after failure %d: Failures = %d", i+1, st.Failures)
		}
		if !errors.Is(st.LastError, secrets.ErrTransient) {
			t.Fatalf("LastError = %v, want ErrTransient", st.LastError)
		}
		if got := st.NextRefresh.Sub(f.clock.Now()); got != w {
			t.Fatalf("after failure %d: retry in %v, want %v", i+1, got, w)
		}
		if got := f.get("k").Reveal(); got != "good" {
			t.Fatalf("during the outage Get = %q, want the last good value", got)
		}
		if i == len(want)-1 {
			f.src.fail("k", nil) // heal before the next attempt starts
		}
		f.advanceTo(st.NextRefresh)
	}
	// Healing resets the schedule.
	f.waitRound()
	st := f.status("k")
	if st.Failures != 0 || st.LastError != nil {
		t.Fatalf("after recovery: Failures %d, LastError %v", st.Failures, st.LastError)
	}
	if got := st.NextRefresh.Sub(f.clock.Now()); got != time.Minute-3*time.Second {
		t.Fatalf("after recovery the next poll is in %v, want the jittered TTL", got)
	}
	f.src.fail("k", secrets.ErrTransient)
	f.advanceTo(st.NextRefresh)
	f.waitRound()
	if got := f.status("k").NextRefresh.Sub(f.clock.Now()); got != 500*time.Millisecond {
		t.Fatalf("first failure after a recovery retries in %v, want 500ms", got)
	}
}

// TestSchedulerWakes: a failed first load, forgotten and read again while a long-TTL key keeps
// the scheduler asleep, is still retried when its backoff passes; a notice
// during a held first load refreshes at once after it.
func TestSchedulerWakes(t *testing.T) {
	f := newFixture(t, secrets.WithTTL(time.Hour), secrets.WithBackoff(time.Second, time.Minute))
	f.src.Set("long", "l")
	f.get("long")
	f.src.fail("k", secrets.ErrTransient)
	if _, err := f.store.Get(f.ctx(), "k"); err == nil {
		t.Fatal("want failure")
	}
	f.store.Forget("k")
	if _, err := f.store.Get(f.ctx(), "k"); err == nil {
		t.Fatal("want failure")
	}
	n := f.src.count("k")
	f.src.fail("k", nil)
	f.src.Set("k", "v")
	f.advanceTo(f.status("k").NextRefresh)
	f.waitRound()
	if f.src.count("k") != n+1 || f.get("k").Reveal() != "v" {
		t.Fatalf("retry missed: fetches %d", f.src.count("k"))
	}
}

// hintSrc answers with a refresh hint a fixed time after the clock's now.
type hintSrc struct {
	clock interface{ Now() time.Time }
	in    atomic.Int64 // a time.Duration
	n     atomic.Int64
}

func (h *hintSrc) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	h.n.Add(1)
	v := secrets.Versions{Current: secrets.NewSecretString(key, "v1", "value")}
	v.RefreshBy = h.clock.Now().Add(time.Duration(h.in.Load()))
	return v, nil
}

// TestRefreshByBringsThePollForward: a source's refresh hint (a lease to
// renew) is honoured before the TTL, and a hint already past costs one fetch
// per minimum backoff, not a busy loop.
func TestRefreshByBringsThePollForward(t *testing.T) {
	clk := fakeclock.New(epoch)
	src := &hintSrc{clock: clk}
	src.in.Store(int64(10 * time.Second))
	st, err := secrets.New(src, secrets.WithClock(clk), secrets.WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Get(ctx, "lease"); err != nil {
		t.Fatal(err)
	}
	s, _ := st.Status("lease")
	if want := epoch.Add(10 * time.Second); !s.NextRefresh.Equal(want) {
		t.Fatalf("next refresh at %v, want the hint %v", s.NextRefresh, want)
	}
	if err := clk.WaitTimerAt(ctx, epoch.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	eventually(t, "the hinted refresh", func() bool { return src.n.Load() == 2 })

	// A hint in the past: the next refresh comes a minimum backoff later.
	src.in.Store(int64(-time.Minute))
	if err := st.Refresh(ctx, "lease"); err != nil {
		t.Fatal(err)
	}
	s, _ = st.Status("lease")
	if want := clk.Now().Add(secrets.DefaultBackoffMin); !s.NextRefresh.Equal(want) {
		t.Fatalf("next refresh at %v, want a minimum backoff from now (%v)", s.NextRefresh, want)
	}
}
