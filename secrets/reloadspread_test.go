package secrets_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
)

// spreadStore returns a Store over src on a fake clock, with the given
// options, whose random fraction is always frac, and a channel that
// receives each reload's event.
func spreadStore(t *testing.T, src secrets.Source, frac float64, opts ...secrets.Option) (*secrets.Store, *fakeclock.Clock, <-chan secrets.ReloadEvent) {
	t.Helper()
	clk := fakeclock.New(epoch)
	reloads := make(chan secrets.ReloadEvent, 64)
	opts = append([]secrets.Option{
		secrets.WithClock(clk),
		secrets.WithTTL(time.Hour),
		secrets.WithObserver(secrets.Observer{Reload: func(e secrets.ReloadEvent) { reloads <- e }}),
	}, opts...)
	st, err := secrets.New(src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	secrets.SetRand(st, func() float64 { return frac })
	t.Cleanup(func() { st.Close() })
	return st, clk, reloads
}

// spreadCtx bounds a test's waits: its deadline only turns a hang into a
// failure.
func spreadCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func nextReload(t *testing.T, reloads <-chan secrets.ReloadEvent) secrets.ReloadEvent {
	t.Helper()
	select {
	case e := <-reloads:
		return e
	case <-spreadCtx(t).Done():
		t.Fatal("no reload")
	}
	return secrets.ReloadEvent{}
}

// TestReloadSpreadDelaysSignalledReload: with a spread window of 10 minutes
// and a random fraction of 0.25, the reload a signal asks for starts 2m30s
// later on the Store's clock, not before; the signals that arrive during
// the wait join it, so the burst costs one reload, which reads the value
// set during the wait.
func TestReloadSpreadDelaysSignalledReload(t *testing.T) {
	deliver, _ := secrets.FakeSignals(t)
	src := newCtl()
	src.Set("k", "one")
	st, clk, reloads := spreadStore(t, src, 0.25, secrets.WithReloadSpread(10*time.Minute))
	ctx := spreadCtx(t)
	if _, err := st.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	stop := secrets.ReloadOnSignal(context.Background(), st)
	defer stop()

	start := clk.Now()
	deliver(syscall.SIGHUP)
	if err := clk.WaitTimerAt(ctx, start.Add(150*time.Second)); err != nil {
		t.Fatalf("no wait of 2m30s armed: %v (timers %v)", err, clk.Timers())
	}
	src.Set("k", "two")
	for i := 0; i < 100; i++ {
		deliver(syscall.SIGHUP)
	}
	clk.Advance(150*time.Second - time.Nanosecond)
	if n := src.count("k"); n != 1 {
		t.Fatalf("%d fetches before the spread wait ended, want only the first load", n)
	}
	clk.Advance(time.Nanosecond)
	if e := nextReload(t, reloads); e.Err != nil || e.Changed != 1 {
		t.Fatalf("reload after the wait: %+v", e)
	}
	if got, err := st.Get(ctx, "k"); err != nil || got.Reveal() != "two" {
		t.Fatalf("after the reload Get = %q, %v", got.Reveal(), err)
	}
	stop()
	if n := src.count("k"); n != 2 {
		t.Fatalf("a signal and 100 more during the spread wait cost %d reloads, want 1", n-1)
	}
}

// TestReloadSpreadLeavesReloadAlone: an explicit Reload is not delayed by
// the spread window; the clock never moves in this test.
func TestReloadSpreadLeavesReloadAlone(t *testing.T) {
	src := newCtl()
	src.Set("k", "one")
	st, _, _ := spreadStore(t, src, 0.99, secrets.WithReloadSpread(time.Hour))
	ctx := spreadCtx(t)
	if _, err := st.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	src.Set("k", "two")
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Get(ctx, "k"); got.Reveal() != "two" {
		t.Fatal("Reload did not apply the new value at once")
	}
}

// TestReloadSpreadEnds: stop, the end of ReloadOnSignal's context and Close
// each end a spread wait at once, without the clock moving: no reload
// follows, and the signals are given back.
func TestReloadSpreadEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(cancel context.CancelFunc, st *secrets.Store, stop func())
	}{
		{"stop", func(_ context.CancelFunc, _ *secrets.Store, stop func()) { stop() }},
		{"context", func(cancel context.CancelFunc, _ *secrets.Store, _ func()) { cancel() }},
		{"close", func(_ context.CancelFunc, st *secrets.Store, _ func()) { st.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deliver, stopped := secrets.FakeSignals(t)
			src := newCtl()
			src.Set("k", "one")
			st, clk, _ := spreadStore(t, src, 0.5, secrets.WithReloadSpread(time.Minute))
			ctx := spreadCtx(t)
			if _, err := st.Get(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			sctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := secrets.ReloadOnSignal(sctx, st)
			deliver(syscall.SIGHUP)
			if err := clk.WaitTimerAt(ctx, clk.Now().Add(30*time.Second)); err != nil {
				t.Fatalf("no spread wait armed: %v", err)
			}
			tc.end(cancel, st, stop)
			select {
			case <-stopped:
			case <-ctx.Done():
				t.Fatal("the wait did not end")
			}
			stop()
			if n := src.count("k"); n != 1 {
				t.Fatalf("%d fetches: a reload ran after the wait was ended", n)
			}
		})
	}
}

// TestReloadSpreadNegative: a negative window is refused.
func TestReloadSpreadNegative(t *testing.T) {
	if _, err := secrets.New(newCtl(), secrets.WithReloadSpread(-time.Second)); err == nil {
		t.Fatal("WithReloadSpread(-1s) accepted")
	}
}
