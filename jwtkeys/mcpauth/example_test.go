package mcpauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/jwtkeys/mcpauth"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// An MCP endpoint behind RequireBearerToken, with tokens verified against a
// rotating key. In a server, the handler would be
// mcp.NewStreamableHTTPHandler.
func Example() {
	ctx := context.Background()
	src := memory.New()
	src.Set("jwt-signing-key", "first-key-0123456789abcdef0123456789")
	store, err := secrets.New(src)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	verifier, err := jwtkeys.NewVerifier(store, "jwt-signing-key", jwtkeys.WithAudience("mcp"))
	if err != nil {
		panic(err)
	}
	protect := auth.RequireBearerToken(mcpauth.TokenVerifier(verifier),
		&auth.RequireBearerTokenOptions{Scopes: []string{"tools:call"}})
	mcpHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello", auth.TokenInfoFromContext(r.Context()).UserID)
	})
	srv := httptest.NewServer(protect(mcpHandler))
	defer srv.Close()

	// A token from the party that holds the signing key.
	signer, _ := jwtkeys.NewSigner(store, "jwt-signing-key")
	token, _ := signer.Sign(ctx, jwt.MapClaims{
		"sub":   "alice",
		"aud":   "mcp",
		"scope": "tools:list tools:call",
		"exp":   time.Now().Add(time.Hour).Unix(),
	})

	for _, authz := range []string{"Bearer " + token, "Bearer " + token + "x", ""} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// 200
	// 401
	// 401
}
