package secrets

import (
	"fmt"
	"io"
	"net/http"
)

// A Transport is an http.RoundTripper that puts a credential from a Store on
// every request: by default as "Authorization: Bearer <value>". When the
// server answers 401 Unauthorized, the Transport refreshes the key and, if
// the Store then serves another version and the request can be sent again
// (it has no body, or http.Request.GetBody is set, as it is for requests made
// by http.NewRequest with a bytes or strings reader), sends it once more with
// the new credential. Otherwise the 401 response is returned as it is. The
// refresh is forced as Call forces it: the first 401 after a quiet spell
// always reads the source again, and further ones at most once per the
// Store's minimum backoff (waiting for a forced refresh already under way),
// so a revoked credential does not send every request to the backend. When
// the refresh finds nothing newer, the request waits for a newer credential
// as Call does (see WithAuthWait); inside a wrapped call, a wait that ran
// out is not repeated by the call around it.
//
// Inside a call wrapped by WrapTool or Call, the credential comes from the
// call's View (see ViewFrom), so a request and the handler around it see the
// same version.
type Transport struct {
	store  *Store
	key    string
	header string
	prefix string
	base   http.RoundTripper
}

// A TransportOption configures a Transport.
type TransportOption func(*Transport)

// WithHeader sets the header the credential goes in and the text put before
// it: WithHeader("X-Api-Key", "") sends the bare value. The default is
// WithHeader("Authorization", "Bearer ").
func WithHeader(name, prefix string) TransportOption {
	return func(t *Transport) { t.header, t.prefix = http.CanonicalHeaderKey(name), prefix }
}

// WithBase sets the RoundTripper that sends the requests (default
// http.DefaultTransport).
func WithBase(rt http.RoundTripper) TransportOption {
	return func(t *Transport) {
		if rt != nil {
			t.base = rt
		}
	}
}

// NewTransport returns a Transport that authenticates with the secret at key.
func NewTransport(store *Store, key string, opts ...TransportOption) *Transport {
	t := &Transport{store: store, key: key, header: "Authorization", prefix: "Bearer ", base: http.DefaultTransport}
	for _, o := range opts {
		o(t)
	}
	return t
}

// RoundTrip sends req with the credential set, and once more after a 401 if
// the credential has since changed. It does not modify req.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	view := ViewFrom(ctx, t.store)
	cred, err := view.Get(ctx, t.key)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	authed, err := t.withCredential(req, cred)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base.RoundTrip(authed)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil // cannot be replayed
	}
	// The Store may hold a newer credential already; if not, refresh it,
	// at most once per minimum backoff whatever the rate of 401s, and wait
	// for one.
	if !t.store.afterAuthFailure(ctx, view, []string{t.key}, t.store.cfg.authWait) {
		return resp, nil
	}
	fresh, err := t.store.Get(ctx, t.key)
	if err != nil || fresh.sameAs(cred) {
		return resp, nil
	}
	retry, err := t.withCredential(req, fresh)
	if err != nil {
		// The new version cannot be sent either: the caller learns why
		// rather than get the old credential's 401.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		closeBody(req)
		return nil, err
	}
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry.Body = body
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return t.base.RoundTrip(retry)
}

// withCredential returns a copy of req with the credential in the header.
// A value that a header field cannot carry (a line break, as an editor
// leaves at the end of a file, or another control character) is not sent:
// net/http would refuse the request with "invalid header field value" and
// name neither the key nor the cause. Nor is a credential that begins or
// ends with a space or a tab: net/http trims such white space from the
// field value on the wire (RFC 9110 section 5.5), so the upstream would
// see another credential and answer 401, with nothing to say why. The
// error wraps ErrInvalid, names the key and the header, and holds nothing
// of the value.
func (t *Transport) withCredential(req *http.Request, cred Secret) (*http.Request, error) {
	v := t.prefix + cred.Reveal()
	why := headerValueProblem(v)
	if why == "" {
		why = edgeSpaceProblem(cred.Reveal())
	}
	if why != "" {
		return nil, &Error{Op: "transport", Key: t.key, Err: fmt.Errorf(
			"%w: the value cannot go into the %s header: it holds %s", ErrInvalid, t.header, why)}
	}
	r := req.Clone(req.Context())
	r.Header.Set(t.header, v)
	return r, nil
}

// headerValueProblem says why v cannot be a header field value (RFC 9110
// section 5.5: no control character but horizontal tab), or returns "". It
// names the offending byte's class, never its position or the text around
// it.
func headerValueProblem(v string) string {
	for i := 0; i < len(v); i++ {
		b := v[i]
		if (b >= 0x20 && b != 0x7f) || b == '\t' {
			continue
		}
		switch {
		case (b == '\n' || b == '\r') && i >= len(v)-2 && trailingLineEnd(v[i:]):
			return "a trailing newline (as an editor writes at the end of a file; remove it, or trim it where the value is read)"
		case b == '\n' || b == '\r':
			return "a line break"
		default:
			return fmt.Sprintf("the control character 0x%02x", b)
		}
	}
	return ""
}

// edgeSpaceProblem says why a credential that begins or ends with a space
// or a tab cannot go into a header as it is, or returns "". It names the
// white space, never the value.
func edgeSpaceProblem(v string) string {
	if v == "" {
		return ""
	}
	name := func(b byte) string {
		if b == '\t' {
			return "a tab"
		}
		return "a space"
	}
	const trimmed = " (net/http trims it from a header value, and the upstream would get another credential; remove it, or trim it where the value is read)"
	if b := v[len(v)-1]; b == ' ' || b == '\t' {
		return "trailing white space, " + name(b) + trimmed
	}
	if b := v[0]; b == ' ' || b == '\t' {
		return "leading white space, " + name(b) + trimmed
	}
	return ""
}

func trailingLineEnd(s string) bool { return s == "\n" || s == "\r\n" || s == "\r" }

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
