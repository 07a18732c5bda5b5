package fleet

import (
	"context"
	"log/slog"
	"time"
)

// A signalOutcome is how the reload that a signal started ended, as
// ReloadOnSignal logs it once its retries are over: reloaded, or failed.
type signalOutcome struct {
	at time.Time
	ok bool
}

// signalLog is the slog.Handler of one Store's logger. It keeps the final
// outcomes of the reloads that ReloadOnSignal starts, which the library
// reports through the Store's logger: a record that carries the signal, at
// Info when the reload succeeded, at Warn when it failed; a Warn record that
// also says when it retries ("retry_in") is an attempt, not an outcome.
// Everything else is dropped.
type signalLog struct {
	f  *fleet
	in *instance
}

func (h *signalLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *signalLog) Handle(_ context.Context, r slog.Record) error {
	var signal, retry bool
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "signal":
			signal = true
		case "retry_in":
			retry = true
		}
		return true
	})
	if !signal || retry {
		return nil
	}
	now := time.Now()
	h.f.event(func() {
		h.in.signals = append(h.in.signals, signalOutcome{at: now, ok: r.Level < slog.LevelWarn})
	})
	return nil
}

func (h *signalLog) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h *signalLog) WithGroup(string) slog.Handler { return h }
