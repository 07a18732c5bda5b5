// Package mcpauth adapts a jwtkeys.Verifier to the bearer-token middleware of
// the official MCP Go SDK (github.com/modelcontextprotocol/go-sdk/auth), so
// that an MCP server accepts tokens signed with a rotating key:
//
//	verifier, _ := jwtkeys.NewVerifier(store, "jwt-signing-key", jwtkeys.WithAudience("mcp"))
//	protect := auth.RequireBearerToken(mcpauth.TokenVerifier(verifier),
//		&auth.RequireBearerTokenOptions{Scopes: []string{"tools:call"}})
//	http.Handle("/mcp", protect(mcp.NewStreamableHTTPHandler(getServer, nil)))
//
// A verified token fills the SDK's TokenInfo: UserID from sub, Scopes from
// the scope claim (a space-separated string, RFC 8693 and RFC 9068) and the
// scp claim (a string or an array of strings, as several identity providers
// write it), Expiration from exp. Scopes is nil when the token has neither
// claim. The middleware then checks the required scopes (403 when one is
// missing) and the expiration.
//
// The MCP authorization specification makes an MCP server an OAuth 2.0
// protected resource. A Resource does that part: it serves the resource's
// metadata (RFC 9728) at its well-known URL, puts the metadata URL in the
// 401's WWW-Authenticate header (through the SDK's RequireBearerToken), and
// checks the scopes each tool needs, answering 403 with
// error="insufficient_scope" so that a client can ask for more:
//
//	res := &mcpauth.Resource{
//		URL:                  "https://mcp.example.com/mcp",
//		AuthorizationServers: []string{"https://auth.example.com"},
//		ToolScopes:           map[string][]string{"query_orders": {"orders:read"}},
//	}
//	server.AddReceivingMiddleware(res.ToolScopeMiddleware())
//	h, err := res.Handler(mcpauth.TokenVerifier(verifier), nil, mcp.NewStreamableHTTPHandler(getServer, nil))
//	http.ListenAndServe(":8080", h) // /mcp, and /.well-known/oauth-protected-resource/mcp
//
// A token that fails verification yields an error that wraps
// auth.ErrInvalidToken, so the client gets a 401 (with a WWW-Authenticate
// header when the options name resource metadata or scopes) and a body such
// as "invalid token: token is expired". The body
// names the reason only, never the token's content. When the keys themselves
// are unavailable (the secret is missing, unreadable or holds no usable key),
// the error does not wrap auth.ErrInvalidToken and the client gets a 500
// "token verification unavailable": the token is not at fault, and a 401
// would send every client back to its authorization server during a
// secrets outage, to come back with a new token that fails the same way. In
// both cases the error wraps the *jwtkeys.Error, whose Reason a logging
// middleware can record.
//
// This package exists so that jwtkeys itself does not import the MCP SDK.
package mcpauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/rotorhq/rotor/jwtkeys"
)

// TokenVerifier returns an auth.TokenVerifier for auth.RequireBearerToken
// that verifies bearer tokens with v and describes them as an
// auth.TokenInfo. It is safe for concurrent use, as v is.
func TokenVerifier(v *jwtkeys.Verifier) auth.TokenVerifier {
	return func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		var c claims
		if _, err := v.VerifyClaims(ctx, token, &c); err != nil {
			if errors.Is(err, jwtkeys.ErrKeyUnavailable) {
				return nil, &UnavailableError{Err: err}
			}
			return nil, &InvalidTokenError{Err: err}
		}
		info := &auth.TokenInfo{UserID: c.Subject, Scopes: c.scopes}
		if c.ExpiresAt != nil {
			info.Expiration = c.ExpiresAt.Time
		}
		return info, nil
	}
}

// An InvalidTokenError reports a token that failed verification. It wraps
// auth.ErrInvalidToken, which makes RequireBearerToken answer 401, and the
// *jwtkeys.Error that says why.
type InvalidTokenError struct {
	Err error // a *jwtkeys.Error
}

// Error returns "invalid token: " and the reason, such as "token is
// expired". The middleware sends it to the client; it holds nothing of the
// token.
func (e *InvalidTokenError) Error() string {
	var je *jwtkeys.Error
	if errors.As(e.Err, &je) && je.Reason.Err() != nil {
		return auth.ErrInvalidToken.Error() + ": " + je.Reason.Err().Error()
	}
	return auth.ErrInvalidToken.Error()
}

// Unwrap returns auth.ErrInvalidToken and the cause.
func (e *InvalidTokenError) Unwrap() []error { return []error{auth.ErrInvalidToken, e.Err} }

// An UnavailableError reports that no token could be verified because the
// keys are unavailable (jwtkeys.ErrKeyUnavailable). RequireBearerToken
// answers 500.
type UnavailableError struct {
	Err error // a *jwtkeys.Error
}

// Error returns a fixed message: the cause names the secret, which a client
// need not learn.
func (e *UnavailableError) Error() string { return "token verification unavailable" }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// claims are the registered claims plus the scope claims. Validate, which
// golang-jwt runs after the signature has been checked, parses the scopes.
type claims struct {
	jwt.RegisteredClaims
	Scope json.RawMessage `json:"scope,omitempty"`
	Scp   json.RawMessage `json:"scp,omitempty"`

	scopes []string
}

var errScopeType = errors.New("scope claim is neither a string nor an array of strings")

// Validate parses scope and scp into c.scopes, without duplicates. The
// scopes are nil when the token has neither claim, and not nil (maybe
// empty) when it has one: Resource.AllowUnscoped tells the two apart.
func (c *claims) Validate() error {
	c.scopes = nil
	for _, raw := range []json.RawMessage{c.Scope, c.Scp} {
		list, err := parseScopes(raw)
		if err != nil {
			return err
		}
		if c.scopes == nil && len(raw) > 0 && string(raw) != "null" {
			c.scopes = []string{}
		}
		for _, s := range list {
			if !contains(c.scopes, s) {
				c.scopes = append(c.scopes, s)
			}
		}
	}
	return nil
}

func parseScopes(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.Fields(s), nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		out := list[:0]
		for _, s := range list {
			if s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
	return nil, errScopeType
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
