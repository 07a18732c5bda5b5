package secrets

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// signalNotify and signalStop are os/signal's, replaced in tests.
var (
	signalNotify = signal.Notify
	signalStop   = signal.Stop
)

// ReloadOnSignal reloads store whenever the process receives one of sigs
// (SIGHUP when none is given), until ctx ends, the Store closes or stop is
// called. It is the only way the library installs a signal handler, and it is
// opt-in.
//
// Signals do not queue. A signal that arrives while no reload runs starts
// one; the signals that arrive while a reload runs cost one more reload
// between them, started when the running one ends. Until ReloadOnSignal
// stops, every signal is thus followed by a reload that starts after it
// arrived, and reads what was changed before it was sent. A burst of signals
// that all arrive while the reload started by the first of them runs costs
// two reloads, however many signals it holds; a signal that arrives once the
// second has begun costs a third. A signal arrives when os/signal hands it
// over, which may be some time after it was sent: how a burst of real
// signals splits between reloads depends on the scheduler.
//
// With WithReloadSpread, each reload first waits a random part of the
// spread window on the Store's clock; the signals that arrive during that
// wait join the reload that waits, and cost nothing more.
//
// A reload that fails only because the backend throttled or was unavailable
// (every key that failed, failed with ErrTransient) is tried again, up to
// four times, each after the Store's failure backoff (WithBackoff: the n-th
// retry waits a random time below min·2ⁿ⁻¹, at most max) on its clock; the
// signals that arrive during such a wait join the retry. A reload that
// fails otherwise (a key not found, refused, rejected by a validator) is
// not retried: the next signal, or the background refresh of the keys that
// failed, tries again. Waits end, without a reload, when ctx ends, the
// Store closes or stop is called.
//
// The outcome of each reload is logged through the Store's logger. stop
// stops relaying the signals and waits for the goroutine to return; it is
// safe to call more than once. Once it returns, or once ctx has ended or the
// Store has closed, the signals are delivered as they were before the call
// (to other handlers registered with os/signal, or to the default action).
func ReloadOnSignal(ctx context.Context, store *Store, sigs ...os.Signal) (stop func()) {
	if len(sigs) == 0 {
		sigs = []os.Signal{syscall.SIGHUP}
	}
	ch := make(chan os.Signal, 1)
	signalNotify(ch, sigs...)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signalStop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-store.ctx.Done():
				return
			case sig := <-ch:
				if !store.reloadOnSignal(ctx, ch, sig) {
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signalStop(ch)
			cancel()
			<-done
		})
	}
}

// signalRetries bounds the retries of a reload started by a signal that
// failed only with ErrTransient.
const signalRetries = 4

// reloadOnSignal runs the reload that sig asked for: it waits its part of
// the spread window, takes in the signals that arrived meanwhile, reloads,
// retries a reload that failed only with ErrTransient after the Store's
// backoff, up to signalRetries times, and logs the outcome. It reports false
// when ctx ended or the Store closed while it waited.
func (s *Store) reloadOnSignal(ctx context.Context, ch <-chan os.Signal, sig os.Signal) bool {
	if w := s.cfg.reloadSpread; w > 0 {
		d := time.Duration(s.rand() * float64(w))
		t := s.clock.NewTimer(d)
		s.log.LogAttrs(ctx, slog.LevelDebug, "secrets: reload on signal spread",
			slog.String("signal", sig.String()), slog.Duration("wait", d))
		if !s.wait(ctx, t) {
			return false
		}
	}
	for attempt := 1; ; attempt++ {
		// A wait that saw its timer fire may have missed the end of ctx
		// or of the Store: no reload starts after either.
		if ctx.Err() != nil || s.ctx.Err() != nil {
			return false
		}
		// A signal that arrived during a wait is served by the reload
		// about to start, which starts after it.
		select {
		case <-ch:
		default:
		}
		err := s.Reload(ctx)
		switch {
		case err == nil:
			s.log.LogAttrs(ctx, slog.LevelInfo, "secrets: reloaded on signal",
				slog.String("signal", sig.String()), slog.Int("attempts", attempt))
			return true
		case ctx.Err() != nil:
			return true
		case attempt > signalRetries || !onlyTransient(err):
			s.log.LogAttrs(ctx, slog.LevelWarn, "secrets: reload on signal failed",
				slog.String("signal", sig.String()), slog.Int("attempts", attempt), slog.String("error", err.Error()))
			return true
		}
		d := s.backoff(attempt)
		t := s.clock.NewTimer(d)
		s.log.LogAttrs(ctx, slog.LevelWarn, "secrets: reload on signal failed; retrying",
			slog.String("signal", sig.String()), slog.Int("attempts", attempt),
			slog.Duration("retry_in", d), slog.String("error", err.Error()))
		if !s.wait(ctx, t) {
			return false
		}
	}
}

// onlyTransient reports whether err is a reload's failure of one key or
// more, each with ErrTransient: the same reload may succeed later.
func onlyTransient(err error) bool {
	var re *ReloadError
	if !errors.As(err, &re) {
		return false
	}
	n := 0
	for _, ke := range re.Errors {
		if ke == nil {
			continue
		}
		if !errors.Is(ke, ErrTransient) {
			return false
		}
		n++
	}
	return n > 0
}

// wait waits for t, armed on the Store's clock, to fire. It stops t and
// reports false, at once, when ctx ends or the Store closes first.
func (s *Store) wait(ctx context.Context, t Timer) bool {
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}
