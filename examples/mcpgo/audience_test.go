package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// TestTokenForAnotherAudienceIsRefused: a token the same issuer signed for
// another service (its aud names that service) gets 401: the MCP
// specification's "MCP servers MUST validate that tokens presented to them
// were specifically issued for their use" (RFC 8707 audience). NewHandler's
// Verifier requires aud to name Config.Endpoint.
func TestTokenForAnotherAudienceIsRefused(t *testing.T) {
	store, srv := serveExample(t, map[string][]string{"call_api": {"api:call"}})
	signer, err := jwtkeys.NewSigner(store, "jwt")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Sign(context.Background(), jwt.MapClaims{"sub": "alice", "scope": "api:call",
		"aud": "https://billing.example.com/api", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(initialize))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token whose audience is another service: %s, want 401", resp.Status)
	}
}

// serveExample serves the example's handler over a memory source holding a
// signing key and an API key, at srv.URL+"/mcp"; everything stops when the
// test ends.
func serveExample(t *testing.T, scopes map[string][]string) (*secrets.Store, *httptest.Server) {
	t.Helper()
	src := memory.New()
	src.Set("jwt", keyA)
	src.Set("api", "k")
	store, err := secrets.New(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	h, closeIdle, err := NewHandler(Config{Store: store, JWTKey: "jwt", APIKey: "api", APIURL: srv.URL + "/nowhere",
		Endpoint: srv.URL + "/mcp", ToolScope: scopes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeIdle)
	mux.Handle("/", h)
	return store, srv
}
