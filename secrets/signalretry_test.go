package secrets_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
)

// signalLog is a slog.Handler that hands on the records ReloadOnSignal
// logs, so that a test can follow its steps.
type signalLog chan slog.Record

func (signalLog) Enabled(context.Context, slog.Level) bool { return true }
func (l signalLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "on signal") {
		l <- r.Clone()
	}
	return nil
}
func (l signalLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l signalLog) WithGroup(string) slog.Handler      { return l }

// next returns the next record, its message and its attributes.
func (l signalLog) next(t *testing.T) (string, map[string]slog.Value) {
	t.Helper()
	select {
	case r := <-l:
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value
			return true
		})
		return r.Message, attrs
	case <-spreadCtx(t).Done():
		t.Fatal("ReloadOnSignal logged nothing more")
	}
	return "", nil
}

var errThrottled = fmt.Errorf("%w: throttled", secrets.ErrTransient)

// retryStore returns a Store over src for the retry tests: backoff from 1 s
// to 1 min, random fraction 0.5, so that the n-th retry waits
// 0.5 s · 2ⁿ⁻¹; with its reload events and ReloadOnSignal's log.
func retryStore(t *testing.T, src secrets.Source) (*secrets.Store, *fakeclock.Clock, <-chan secrets.ReloadEvent, signalLog) {
	t.Helper()
	logs := make(signalLog, 64)
	st, clk, reloads := spreadStore(t, src, 0.5,
		secrets.WithBackoff(time.Second, time.Minute), secrets.WithLogger(slog.New(logs)))
	return st, clk, reloads, logs
}

// TestSignalReloadRetriesThrottling: a signalled reload that the backend
// throttles is tried again after the Store's backoff, on its clock, and the
// retry applies the new value.
func TestSignalReloadRetriesThrottling(t *testing.T) {
	deliver, _ := secrets.FakeSignals(t)
	src := newCtl()
	src.Set("k", "one")
	st, clk, reloads, logs := retryStore(t, src)
	ctx := spreadCtx(t)
	if _, err := st.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	src.fail("k", errThrottled)
	src.Set("k", "two")
	stop := secrets.ReloadOnSignal(context.Background(), st)
	defer stop()
	deliver(syscall.SIGHUP)

	if e := nextReload(t, reloads); e.Err == nil {
		t.Fatal("the throttled reload succeeded")
	}
	msg, attrs := logs.next(t)
	if msg != "secrets: reload on signal failed; retrying" || attrs["retry_in"].Duration() != 500*time.Millisecond {
		t.Fatalf("after a throttled reload: %q %v, want a retry in 500ms", msg, attrs)
	}
	src.fail("k", nil)
	clk.Advance(500 * time.Millisecond)
	if e := nextReload(t, reloads); e.Err != nil {
		t.Fatalf("the retry failed: %v", e.Err)
	}
	if msg, attrs := logs.next(t); msg != "secrets: reloaded on signal" || attrs["attempts"].Int64() != 2 {
		t.Fatalf("after the retry: %q %v", msg, attrs)
	}
	if got, err := st.Get(ctx, "k"); err != nil || got.Reveal() != "two" {
		t.Fatalf("after the retry Get = %q, %v", got.Reveal(), err)
	}
}

// TestSignalReloadRetriesBounded: a backend that keeps throttling costs the
// first reload and four retries, each after a backoff twice the last
// (0.5 s, 1 s, 2 s, 4 s with this fraction), and then ReloadOnSignal gives
// up until the next signal.
func TestSignalReloadRetriesBounded(t *testing.T) {
	deliver, _ := secrets.FakeSignals(t)
	src := newCtl()
	src.Set("k", "one")
	st, clk, reloads, logs := retryStore(t, src)
	ctx := spreadCtx(t)
	if _, err := st.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	src.fail("k", errThrottled)
	stop := secrets.ReloadOnSignal(context.Background(), st)
	defer stop()
	deliver(syscall.SIGHUP)

	wait := 500 * time.Millisecond
	for attempt := 1; attempt <= 4; attempt++ {
		if e := nextReload(t, reloads); e.Err == nil {
			t.Fatalf("attempt %d succeeded", attempt)
		}
		msg, attrs := logs.next(t)
		if msg != "secrets: reload on signal failed; retrying" || attrs["retry_in"].Duration() != wait || attrs["attempts"].Int64() != int64(attempt) {
			t.Fatalf("after attempt %d: %q %v, want a retry in %v", attempt, msg, attrs, wait)
		}
		clk.Advance(wait)
		wait *= 2
	}
	if e := nextReload(t, reloads); e.Err == nil {
		t.Fatal("attempt 5 succeeded")
	}
	msg, attrs := logs.next(t)
	if msg != "secrets: reload on signal failed" || attrs["attempts"].Int64() != 5 {
		t.Fatalf("after attempt 5: %q %v, want it to give up", msg, attrs)
	}
	if !strings.Contains(attrs["error"].String(), "throttled") {
		t.Fatalf("the last error %q does not say why", attrs["error"].String())
	}
	stop()
	select {
	case e := <-reloads:
		t.Fatalf("a reload after giving up: %+v", e)
	default:
	}
}

// TestSignalReloadNoRetryOfLastingFailure: a reload that fails for a
// reason a retry cannot cure (here, permission) is not retried.
func TestSignalReloadNoRetryOfLastingFailure(t *testing.T) {
	deliver, _ := secrets.FakeSignals(t)
	src := newCtl()
	src.Set("k", "one")
	st, _, reloads, logs := retryStore(t, src)
	ctx := spreadCtx(t)
	if _, err := st.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	src.fail("k", fmt.Errorf("%w: denied", secrets.ErrPermission))
	stop := secrets.ReloadOnSignal(context.Background(), st)
	defer stop()
	deliver(syscall.SIGHUP)
	nextReload(t, reloads)
	if msg, attrs := logs.next(t); msg != "secrets: reload on signal failed" || attrs["attempts"].Int64() != 1 {
		t.Fatalf("after a refused reload: %q %v, want no retry", msg, attrs)
	}
}

// TestSignalReloadRetryWaitEnds: stop during a retry's backoff ends the
// wait at once; no reload follows.
func TestSignalReloadRetryWaitEnds(t *testing.T) {
	deliver, stopped := secrets.FakeSignals(t)
	src := newCtl()
	src.Set("k", "one")
	st, _, reloads, logs := retryStore(t, src)
	ctx := spreadCtx(t)
	if _, err := st.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	src.fail("k", errThrottled)
	stop := secrets.ReloadOnSignal(context.Background(), st)
	deliver(syscall.SIGHUP)
	nextReload(t, reloads)
	if msg, _ := logs.next(t); msg != "secrets: reload on signal failed; retrying" {
		t.Fatalf("got %q, want a retry", msg)
	}
	stop()
	<-stopped
	select {
	case e := <-reloads:
		t.Fatalf("a reload after stop: %+v", e)
	default:
	}
	if n := src.count("k"); n != 2 {
		t.Fatalf("%d fetches, want the first load and the throttled reload", n)
	}
}
