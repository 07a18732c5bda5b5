package secrets

import (
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
	resp, err := t.base.RoundTrip(t.withCredential(req, cred))
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
	retry := req.Clone(ctx)
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry.Body = body
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return t.base.RoundTrip(t.withCredential(retry, fresh))
}

func (t *Transport) withCredential(req *http.Request, cred Secret) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set(t.header, t.prefix+cred.Reveal())
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
