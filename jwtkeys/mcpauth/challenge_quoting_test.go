package mcpauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/rotorhq/rotor/jwtkeys/mcpauth"
)

// TestChallengeNamesTheMetadataURLAsClientsReadIt: the WWW-Authenticate
// header's parameters are RFC 9110 quoted-strings, never Go's %q (whose
// \uXXXX or \xNN a client reads as the letters after the backslash), and
// the metadata URL in them is ASCII: a resource URL whose query holds a
// no-break space and a byte that is not UTF-8 (url.URL.String keeps the
// query as given) yields a percent-encoded MetadataURL, which a client
// parsing the header as the SDK client does reads back exactly, from the
// 401 (the SDK's RequireBearerToken, fed by Resource) and from Resource's
// own 403. The 403's scope parameter carries a quote and a backslash
// escaped.
func TestChallengeNamesTheMetadataURLAsClientsReadIt(t *testing.T) {
	rf := newResourceFixture(t, false, true)
	// Rebuild the Resource on the same server with a query holding a
	// no-break space and a byte that is not UTF-8.
	odd := rf.srv.URL + "/mcp?tenant=a\u00a0b&x=\xff"
	res := &mcpauth.Resource{URL: odd, ToolScopes: map[string][]string{"call_api": {"api:call", `q"b\s`}}, AuthorizationServers: []string{"https://auth.example.com"}}
	meta, err := res.MetadataURL()
	if err != nil {
		t.Fatalf("MetadataURL: %v", err)
	}
	h, err := res.Handler(mcpauth.TokenVerifier(rf.verifier), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	narrow := rf.sign(t, claims(jwt.MapClaims{"scope": "other"}))
	for _, c := range []struct {
		name, token string
		code        int
	}{{"401", "", http.StatusUnauthorized}, {"403", narrow, http.StatusForbidden}} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(callAPI))
			req.Header.Set("Content-Type", "application/json")
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.code)
			}
			cs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
			if err != nil || len(cs) != 1 {
				t.Fatalf("WWW-Authenticate %q: %v", resp.Header.Values("WWW-Authenticate"), err)
			}
			if strings.ContainsFunc(meta, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '"' || r == '\\' }) {
				t.Fatalf("MetadataURL %q is not plain ASCII", meta)
			}
			if want := `api:call q"b\s`; c.code == http.StatusForbidden && cs[0].Params["scope"] != want {
				t.Fatalf("a client reads scope %q from %q, want %q", cs[0].Params["scope"], resp.Header.Get("WWW-Authenticate"), want)
			}
			if got := cs[0].Params["resource_metadata"]; got != meta {
				t.Fatalf("a client reads resource_metadata %q from %q; the metadata URL is %q",
					got, resp.Header.Get("WWW-Authenticate"), meta)
			}
		})
	}
}
