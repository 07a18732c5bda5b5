package secrets

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
)

// A CallOption configures Call and WrapTool.
type CallOption func(*callConfig)

type callConfig struct {
	isAuth func(error) bool
	keys   []string
}

// RefreshKeys names keys to refresh after an authentication failure besides
// those the call read through its View: credentials read elsewhere, such as
// the password a connection pool reads in its BeforeConnect hook.
func RefreshKeys(keys ...string) CallOption {
	return func(c *callConfig) { c.keys = append(c.keys, keys...) }
}

// RetryOn sets the test that tells an authentication failure, after which the
// call is retried once with refreshed credentials. The default is IsAuthError.
func RetryOn(isAuthFailure func(error) bool) CallOption {
	return func(c *callConfig) {
		if isAuthFailure != nil {
			c.isAuth = isAuthFailure
		}
	}
}

// Call runs fn with a View of s in its context (see ViewFrom), so that every
// credential fn reads comes from one snapshot. When fn fails with an
// authentication error (see RetryOn), Call refreshes the keys fn read; if
// any of them now serves another version, it runs fn once more with a fresh
// View and returns that result, whatever it is. Otherwise it returns fn's
// first error.
//
// The refresh bypasses the TTL, so the first authentication failure after a
// quiet spell always reads the source again, however recently the key was
// polled: a rotation may have come just after the poll. Further failures
// force at most one refresh of a key per minimum backoff (see WithBackoff),
// so that a credential revoked but not yet rotated costs the backend one
// fetch a second, not one per call; a failure that finds a forced refresh of
// its key under way waits for that refresh and then checks for a new
// version.
//
// When the refresh finds nothing newer, Call waits for a newer version of
// those keys, up to the Store's auth wait (see WithAuthWait, default 5
// seconds) and no longer than ctx allows, and retries if one comes. The
// failure also counts against the version that failed: a candidate rejected
// by the validators is validated again, and a pending version of the value
// (Versions.Pending) becomes current if it passes them.
//
// This covers the window of a rotation in which the backend has already
// dropped the old credential but the Store does not yet hold the new one,
// in either order: the store updated a moment after the database, or
// before it, its candidate rejected until the database took it.
func Call(ctx context.Context, s *Store, fn func(ctx context.Context) error, opts ...CallOption) error {
	_, _, err := WrapTool(s, func(ctx context.Context, _ struct{}, _ struct{}) (struct{}, struct{}, error) {
		return struct{}{}, struct{}{}, fn(ctx)
	}, opts...)(ctx, struct{}{}, struct{}{})
	return err
}

// WrapTool wraps a tool handler in the way Call wraps a function: one
// consistent View of s per call, and one retry with refreshed credentials
// after an authentication failure, waiting for them as Call does. Its shape is that of the MCP Go SDK's
// typed tool handler, func(ctx, *mcp.CallToolRequest, In) (*mcp.CallToolResult,
// Out, error), so it fits mcp.AddTool directly without this package importing
// the SDK:
//
//	mcp.AddTool(server, tool, secrets.WrapTool(store, queryHandler))
//
// Inside the handler, read credentials with secrets.ViewFrom(ctx, store), or
// name those read elsewhere with RefreshKeys.
func WrapTool[Req, In, Res, Out any](s *Store, h func(context.Context, Req, In) (Res, Out, error), opts ...CallOption) func(context.Context, Req, In) (Res, Out, error) {
	cfg := callConfig{isAuth: IsAuthError}
	for _, o := range opts {
		o(&cfg)
	}
	return func(ctx context.Context, req Req, in In) (Res, Out, error) {
		v := s.View()
		res, out, err := h(ContextWithView(ctx, v), req, in)
		if err == nil || !cfg.isAuth(err) {
			return res, out, err
		}
		keys := append(v.Keys(), cfg.keys...)
		if len(keys) == 0 {
			return res, out, err
		}
		// Retry if the credentials changed, whether by the refresh, a
		// concurrent one, a refresh of some keys when others failed, or
		// the rotation's other half landing during the wait.
		if !s.afterAuthFailure(ctx, v, keys, s.cfg.authWait) {
			return res, out, err
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "secrets: retrying with refreshed credentials", slog.Any("keys", keys))
		// The retry is the call's last try: a Transport inside it may
		// refresh, but does not wait a second time.
		retry := s.View()
		retry.waited = true
		return h(ContextWithView(ctx, retry), req, in)
	}
}

// IsAuthError reports whether err is an authentication failure that fresher
// credentials may cure: a PostgreSQL error with SQLSTATE 28P01 (invalid
// password) or 28000 (invalid authorization), or an HTTP 401.
func IsAuthError(err error) bool {
	return IsPostgresAuthError(err) || IsHTTPUnauthorized(err)
}

// IsPostgresAuthError reports whether err, or an error it wraps, has an
// SQLState method (as pgconn.PgError and lib/pq's Error do) returning 28P01
// or 28000.
func IsPostgresAuthError(err error) bool {
	var e interface{ SQLState() string }
	if !errors.As(err, &e) {
		return false
	}
	switch e.SQLState() {
	case "28P01", "28000":
		return true
	}
	return false
}

// IsHTTPUnauthorized reports whether err, or an error it wraps, has a
// StatusCode method returning 401, as a *StatusError does.
func IsHTTPUnauthorized(err error) bool {
	var e interface{ StatusCode() int }
	return errors.As(err, &e) && e.StatusCode() == http.StatusUnauthorized
}

// A StatusError reports an HTTP response whose status was not a success. It
// holds the status only, never the request's or the response's headers.
type StatusError struct {
	Code   int
	Status string // as in http.Response.Status
}

// CheckResponse returns a *StatusError for a response whose status is not 2xx
// and nil otherwise.
func CheckResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &StatusError{Code: resp.StatusCode, Status: resp.Status}
}

// Error returns the status line, as "http: 401 Unauthorized".
func (e *StatusError) Error() string { return "http: " + e.Status }

// StatusCode returns the HTTP status code.
func (e *StatusError) StatusCode() int { return e.Code }
