package mcpauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/rotorhq/rotor/jwtkeys/mcpauth"
)

// TestResourceURLNeverPanics: Resource.URL is configuration (the example
// takes it from -url); a URL that url.Parse accepts gives a Handler and a
// MetadataHandler or an error, never a panic (DESIGN: "never panics on
// input"), as it did when its path became an http.ServeMux pattern, where a
// space, a brace or the well-known path itself make Handle panic. A URL
// under the well-known path is an error; the others are served at their
// path.
func TestResourceURLNeverPanics(t *testing.T) {
	for _, u := range []string{
		"https://mcp.example.com/my mcp",                  // space: "METHOD PATH" pattern syntax
		"https://mcp.example.com/mcp/{tenant",             // unbalanced wildcard brace
		"https://mcp.example.com/mcp/{tenant}/{tenant}",   // duplicate wildcard name
		"https://mcp.example.com" + mcpauth.WellKnownPath, // conflicts with the metadata route
	} {
		t.Run(u, func(t *testing.T) {
			if _, err := url.Parse(u); err != nil {
				t.Skipf("url.Parse refuses it: %v", err)
			}
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Handler panicked on Resource.URL %q: %v", u, r)
				}
			}()
			r := &mcpauth.Resource{URL: u}
			if _, err := r.MetadataHandler(); (err != nil) != strings.Contains(u, mcpauth.WellKnownPath) {
				t.Errorf("MetadataHandler: %v", err)
			}
			h, err := r.Handler(func(context.Context, string, *http.Request) (*auth.TokenInfo, error) { return nil, nil }, nil, http.NotFoundHandler())
			if strings.Contains(u, mcpauth.WellKnownPath) {
				if err == nil {
					t.Errorf("Handler accepted a resource under %s", mcpauth.WellKnownPath)
				}
				return
			}
			if err != nil {
				t.Fatalf("Handler: %v", err)
			}
			parsed, _ := url.Parse(u)
			req := httptest.NewRequest(http.MethodPost, parsed.EscapedPath(), nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("a request without a token to %s: %d, want 401", parsed.EscapedPath(), w.Code)
			}
		})
	}
}
