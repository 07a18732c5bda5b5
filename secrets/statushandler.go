package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// StatusDocument is the JSON document StatusHandler serves. It holds version
// ids, times and error classes, never a value or an error's text.
type StatusDocument struct {
	// Healthy is Health's verdict: every key that matters can be served.
	Healthy bool `json:"healthy"`
	// Time is the Store's clock when the document was made.
	Time time.Time          `json:"time"`
	Keys []KeyStatusSummary `json:"keys"`
}

// KeyStatusSummary is one key's entry in a StatusDocument: KeyStatus in a
// form fit for JSON.
type KeyStatusSummary struct {
	Key             string    `json:"key"`
	Source          string    `json:"source"`
	Loaded          bool      `json:"loaded"`
	Version         string    `json:"version,omitempty"`
	PreviousVersion string    `json:"previous_version,omitempty"`
	PendingVersion  string    `json:"pending_version,omitempty"`
	FetchedAt       time.Time `json:"fetched_at,omitzero"`
	AgeSeconds      float64   `json:"age_seconds"`
	Stale           bool      `json:"stale"`
	NextRefresh     time.Time `json:"next_refresh,omitzero"`
	Failures        int       `json:"failures"`
	// LastErrorClass names the class of the last failure (see ErrorClass),
	// "" after a success.
	LastErrorClass string    `json:"last_error_class,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	Required       bool      `json:"required,omitempty"`
}

// ErrorClass names the class of err for reports that must not carry an
// error's text: "not_found", "permission", "transient", "invalid",
// "rejected", "stale", "closed", "canceled", "other", or "" for nil.
func ErrorClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrPermission):
		return "permission"
	case errors.Is(err, ErrStale):
		return "stale"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrTransient):
		return "transient"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

// StatusDocument returns the document StatusHandler serves.
func (s *Store) StatusDocument() StatusDocument {
	doc := StatusDocument{Time: s.clock.Now(), Keys: []KeyStatusSummary{}}
	doc.Healthy = s.Health(context.Background()) == nil
	for _, st := range s.Statuses() {
		doc.Keys = append(doc.Keys, KeyStatusSummary{
			Key:             st.Key,
			Source:          st.Source,
			Loaded:          st.Loaded,
			Version:         st.Version,
			PreviousVersion: st.PreviousVersion,
			PendingVersion:  st.PendingVersion,
			FetchedAt:       st.FetchedAt,
			AgeSeconds:      st.Age.Seconds(),
			Stale:           st.Stale,
			NextRefresh:     st.NextRefresh,
			Failures:        st.Failures,
			LastErrorClass:  ErrorClass(st.LastError),
			LastErrorAt:     st.LastErrorAt,
			Required:        st.Required,
		})
	}
	return doc
}

// StatusHandler returns an http.Handler that reports the Store's state as a
// StatusDocument in JSON: per key, the version ids served, when they were
// fetched, their age, whether they are stale and the class of the last
// failure; never a value or an error's text. It answers 200 when Health
// finds every key that matters servable and 503 otherwise, so one endpoint
// serves both a readiness probe and a fleet-wide check that every instance
// serves a new version before the old one is revoked. It does no I/O
// besides writing the response, and answers only GET and HEAD.
//
// Key names and version ids tell an observer which secrets a server uses
// and when they rotate: serve the handler on an address only operators
// reach.
func (s *Store) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		doc := s.StatusDocument()
		body, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			http.Error(w, "status unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !doc.Healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		if r.Method == http.MethodGet {
			_, _ = w.Write(append(body, '\n'))
		}
	})
}
