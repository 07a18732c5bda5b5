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
// Scope claims are read as RFC 6749 section 3.3 writes them: scope tokens
// of the characters %x21 / %x23-5B / %x5D-7E, separated by the space
// character (%x20) only (repeated spaces are tolerated); an element of an
// array is one scope token, without a space. A claim that holds
// any other character (a tab, a no-break space, U+3000, a quote) is
// malformed and grants nothing: the token counts as having a scope claim,
// an empty one, rather than having some of what the claim seems to say. A
// scope or scp claim that is JSON null is likewise a claim that grants
// nothing, not an absent claim. A claim of another type (a number, an
// object) makes the token invalid (401).
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
// empty) when it has one, even a null or malformed one: Resource.AllowUnscoped
// tells the two apart.
func (c *claims) Validate() error {
	c.scopes = nil
	for _, raw := range []json.RawMessage{c.Scope, c.Scp} {
		list, err := parseScopes(raw)
		if err != nil {
			return err
		}
		if c.scopes == nil && len(raw) > 0 {
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

// parseScopes returns the scope tokens of a scope or scp claim: none for an
// absent, null or malformed claim (see the package doc), an error for a
// claim that is neither a string nor an array of strings.
func parseScopes(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if !validScopes(s) {
			return nil, nil
		}
		return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		out := list[:0]
		for _, s := range list {
			if strings.Contains(s, " ") || !validScopes(s) {
				return nil, nil
			}
			if s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
	return nil, errScopeType
}

// validScopes says whether s holds only scope-token characters (NQCHAR,
// RFC 6749 appendix A) and the space that separates them.
func validScopes(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != ' ' && (c < 0x21 || c == '"' || c == '\\' || c > 0x7e) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
