package rotate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// An EventKind says what an Event reports.
type EventKind string

// The kinds of Event.
const (
	// EventStep: a step was recorded (Event.Rotation.Step says which).
	EventStep EventKind = "step"
	// EventResumed: the Agent took over a rotation left part-way.
	EventResumed EventKind = "resumed"
	// EventPromoted: the new version is current; consumers should pick it
	// up now (a Store's Refresh, a SIGHUP).
	EventPromoted EventKind = "promoted"
	// EventSucceeded: the rotation finished; the old credential is revoked.
	EventSucceeded EventKind = "succeeded"
	// EventRolledBack: the rotation was undone; Rotation.Cause says why.
	EventRolledBack EventKind = "rolled-back"
	// EventFailed: the rotation stopped part-way (Err says why) and waits
	// for the next run to finish or undo it.
	EventFailed EventKind = "failed"
)

// An Event is what the Agent reports to its logger and its WithNotify
// functions. It holds the key, the rotation record (version ids, step,
// owner) and an error message, never a value.
type Event struct {
	Kind     EventKind
	Key      string
	Rotation secrets.Rotation
	Detail   string // a short note, for EventResumed
	Err      error  // for EventFailed
}

// Text returns a one-line summary of e, as a chat message would show it.
func (e Event) Text() string {
	r := e.Rotation
	base := fmt.Sprintf("rotation %s of %s", r.ID, keyquote.Quote(e.Key))
	switch e.Kind {
	case EventSucceeded:
		return fmt.Sprintf("%s succeeded: version %s replaced %s", base, r.Pending, r.From)
	case EventRolledBack:
		return fmt.Sprintf("%s rolled back, version %s stays current: %s", base, r.From, r.Cause)
	case EventFailed:
		msg := "unknown error"
		if e.Err != nil {
			msg = e.Err.Error()
		}
		return fmt.Sprintf("%s stopped at step %s and will be resumed: %s", base, r.Step, msg)
	case EventPromoted:
		return fmt.Sprintf("%s promoted version %s", base, r.Pending)
	case EventResumed:
		return fmt.Sprintf("%s resumed at step %s (%s)", base, r.Step, e.Detail)
	}
	return fmt.Sprintf("%s reached step %s", base, r.Step)
}

// event logs e and passes it to the notify functions.
func (a *Agent) event(ctx context.Context, e Event) {
	level := slog.LevelInfo
	switch e.Kind {
	case EventRolledBack:
		level = slog.LevelWarn
	case EventFailed:
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("event", string(e.Kind)), slog.String("key", e.Key),
		slog.String("rotation", e.Rotation.ID), slog.String("step", string(e.Rotation.Step)),
		slog.String("from", e.Rotation.From), slog.String("to", e.Rotation.Pending),
	}
	if e.Rotation.Cause != "" {
		attrs = append(attrs, slog.String("cause", e.Rotation.Cause))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	a.log.LogAttrs(ctx, level, "rotation "+string(e.Kind), attrs...)
	for _, fn := range a.notify {
		fn(ctx, e)
	}
}

// Webhook returns a notify function (for WithNotify) that POSTs a JSON
// message to url on the outcomes of a rotation: succeeded, rolled back and
// failed. The message has a "text" field, so a Slack (or Mattermost, or
// Discord /slack) incoming webhook shows it as is, and the key, rotation id,
// outcome, step and version ids as fields; never a value. Each POST is
// bounded by timeout; a failed POST is logged by logger and not retried.
// client nil means http.DefaultClient; logger nil means slog.Default().
func Webhook(url string, client *http.Client, timeout time.Duration, logger *slog.Logger) func(context.Context, Event) {
	if client == nil {
		client = http.DefaultClient
	}
	if logger == nil {
		logger = slog.Default()
	}
	return func(ctx context.Context, e Event) {
		switch e.Kind {
		case EventSucceeded, EventRolledBack, EventFailed:
		default:
			return
		}
		body, _ := json.Marshal(webhookMessage{
			Text: e.Text(), Key: e.Key, Rotation: e.Rotation.ID, Outcome: string(e.Kind),
			Step: string(e.Rotation.Step), From: e.Rotation.From, To: e.Rotation.Pending, Cause: e.Rotation.Cause,
		})
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			logger.ErrorContext(ctx, "rotation webhook: the URL cannot be used")
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			// A webhook URL is itself a credential (Slack's holds a token):
			// log the cause without it.
			var ue *neturl.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			logger.ErrorContext(ctx, "rotation webhook failed", "key", e.Key, "error", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			logger.ErrorContext(ctx, "rotation webhook refused", "key", e.Key, "status", resp.StatusCode)
		}
	}
}

type webhookMessage struct {
	Text     string `json:"text"`
	Key      string `json:"key"`
	Rotation string `json:"rotation"`
	Outcome  string `json:"outcome"`
	Step     string `json:"step"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Cause    string `json:"cause,omitempty"`
}
