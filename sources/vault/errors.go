package vault

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/internal/keyquote"
	"github.com/rotorhq/rotor/secrets"
)

// opError is the error the source returns: a one-line message of bounded
// length that names the operation and the Vault path, never a value, and a
// chain that holds the class sentinel of package secrets and the cause (an
// *api.ResponseError, a *url.Error, a context error), for errors.Is and
// errors.As.
type opError struct {
	msg  string
	errs []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.errs }

// newError builds an opError. class may be nil (a canceled context is not
// classified); detail and cause may be empty.
func newError(class error, op, path, detail string, cause error) *opError {
	var b strings.Builder
	b.WriteString("vault: ")
	b.WriteString(op)
	if path != "" {
		b.WriteString(" ")
		b.WriteString(keyquote.Quote(path))
	}
	b.WriteString(": ")
	var errs []error
	if class != nil {
		b.WriteString(class.Error())
		errs = append(errs, class)
		if detail != "" {
			b.WriteString(": ")
		}
	}
	b.WriteString(detail)
	if cause != nil {
		errs = append(errs, cause)
	}
	return &opError{msg: b.String(), errs: errs}
}

func errClosed() error {
	return newError(nil, "use", "", "source closed", secrets.ErrClosed)
}

// classOf maps an HTTP status from Vault onto a class of failure.
func classOf(status int) error {
	switch {
	case status == http.StatusNotFound:
		return secrets.ErrNotFound
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return secrets.ErrPermission
	case status == http.StatusRequestTimeout, status == http.StatusPreconditionFailed,
		status == http.StatusTooManyRequests:
		// 412: a performance standby has not caught up with the index the
		// client asked for; 429: a rate limit quota, or a standby.
		return secrets.ErrTransient
	case status == http.StatusNotImplemented:
		return secrets.ErrInvalid
	case status >= 500:
		// 500, 502, 504; 503: sealed, standby, or unavailable.
		return secrets.ErrTransient
	}
	return secrets.ErrInvalid
}

// classify turns an error of the api package into an opError. op and path
// name what was attempted ("read", "secret/data/mcp/db"). An opError passes
// through unchanged.
func classify(ctx context.Context, op, path string, err error) error {
	if err == nil {
		return nil
	}
	var oe *opError
	if errors.As(err, &oe) {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return newError(nil, op, path, "context canceled", context.Canceled)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return newError(secrets.ErrTransient, op, path, "deadline exceeded", context.DeadlineExceeded)
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		return newError(classOf(re.StatusCode), op, path, describe(re), re)
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		// Their messages may quote bytes of the response, which may hold a
		// value: left out, cause and all.
		return newError(secrets.ErrInvalid, op, path, "undecodable response", nil)
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return newError(secrets.ErrTransient, op, path, causeText(err), err)
	}
	return newError(secrets.ErrInvalid, op, path, causeText(err), err)
}

// loginError classifies a failed login. Vault refuses bad credentials with
// 400 (AppRole) or 403, and an auth method may fail before asking Vault (a
// missing service account token): all of that is ErrPermission. Vault being
// unavailable stays ErrTransient.
func loginError(ctx context.Context, err error) error {
	c := classify(ctx, "log in", "", err)
	if errors.Is(c, secrets.ErrInvalid) || errors.Is(c, secrets.ErrNotFound) {
		var re *api.ResponseError
		if errors.As(err, &re) {
			return newError(secrets.ErrPermission, "log in", "", describe(re), re)
		}
		var oe *opError
		if !errors.As(err, &oe) {
			return newError(secrets.ErrPermission, "log in", "", causeText(err), err)
		}
	}
	return c
}

// describe renders a Vault error response on one line: the status and
// Vault's messages. A body that was not JSON (from a proxy, say) is left out.
func describe(re *api.ResponseError) string {
	s := "HTTP " + strconv.Itoa(re.StatusCode)
	if re.RawError {
		return s + " (response body not JSON)"
	}
	var msgs []string
	for _, m := range re.Errors {
		if m = oneLine(m); m != "" {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) > 0 {
		s += ": " + strings.Join(msgs, "; ")
	}
	return keyquote.Line(s, maxCause)
}

// maxCause is the most bytes of a cause's message (Vault's messages, an
// error of the api package or of net/http) that an error of this package
// repeats. Such messages may echo the request: a URL holds the path, of any
// length.
const maxCause = 400

// causeText renders the message of a cause on one line of at most maxCause
// bytes.
func causeText(err error) string { return keyquote.Line(oneLine(err.Error()), maxCause) }

// oneLine collapses runs of white space (Vault's multi-error messages span
// lines) into single spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// statusOf returns the HTTP status of a Vault error response, or 0.
func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}
