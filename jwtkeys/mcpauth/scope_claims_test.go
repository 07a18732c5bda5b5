package mcpauth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// TestScopeClaimsGrantOnlyWellFormedScopes: scope claims that are not a
// plain RFC 6749 scope list grant nothing, even under AllowUnscoped (as both
// examples run), so call_api (which needs api:call) gets 403:
//
//   - "scope": null (and "scp": null) is a scope claim that grants
//     nothing, not an absent claim (which AllowUnscoped lets through).
//   - RFC 6749 section 3.3 separates scope tokens with SP (%x20) only, and
//     a scope token is NQCHAR (no tab, no non-ASCII): a claim holding a
//     tab, a no-break space or U+3000 is malformed and grants nothing, not
//     the two scopes "other" and "api:call" that strings.Fields would read.
//
// A well-formed claim, "other api:call", still calls the tool.
func TestScopeClaimsGrantOnlyWellFormedScopes(t *testing.T) {
	rf := newResourceFixture(t, true, true) // AllowUnscoped, as both examples
	cases := []struct {
		name   string
		claims jwt.MapClaims
	}{
		{"scope null", jwt.MapClaims{"scope": nil}},
		{"scp null", jwt.MapClaims{"scp": nil}},
		{"scope with NBSP", jwt.MapClaims{"scope": "other\u00a0api:call"}},
		{"scope with tab", jwt.MapClaims{"scope": "other\tapi:call"}},
		{"scope with ideographic space", jwt.MapClaims{"scope": "other\u3000api:call"}},
		{"scp array with a tab", jwt.MapClaims{"scp": []string{"other\tapi:call"}}},
		{"scp array with a space", jwt.MapClaims{"scp": []string{"other api:call"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := rf.sign(t, claimsRaw(c.claims))
			code, body, _ := rf.post(t, tok, callAPI)
			if ran := drain(rf.called); strings.Contains(strings.Join(ran, " "), "call_api") {
				t.Errorf("call_api (needs api:call) ran: %d %q", code, body)
			}
			if code != http.StatusForbidden {
				t.Errorf("status %d %q, want 403 (a scope claim that grants nothing)", code, body)
			}
		})
	}
	tok := rf.sign(t, claimsRaw(jwt.MapClaims{"scope": "other  api:call"}))
	if code, body, _ := rf.post(t, tok, callAPI); code != http.StatusOK {
		t.Fatalf("a well-formed scope claim: %d %q", code, body)
	}
	if ran := drain(rf.called); !strings.Contains(strings.Join(ran, " "), "call_api") {
		t.Fatalf("call_api did not run with scope api:call: %q", ran)
	}
}

// claimsRaw is claims, but a nil value is kept, as JSON null.
func claimsRaw(extra jwt.MapClaims) jwt.MapClaims {
	c := claims(nil)
	for k, v := range extra {
		c[k] = v
	}
	return c
}
