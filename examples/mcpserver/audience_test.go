package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rotorhq/rotor/examples/mcpserver/server"
)

// startDemo runs the server on the embedded demo credentials without the
// demo database and returns its endpoint and credential directory.
func startDemo(t *testing.T, o options) (url, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, slog.New(slog.DiscardHandler), out, ready) }()
	t.Cleanup(func() {
		cancel()
		<-done
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	select {
	case url = <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("run: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`edit the files in (\S+),`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no directory in the output:\n%s", out)
	}
	return url, m[1]
}

func postCallAPI(t *testing.T, url, token string) *http.Response {
	t.Helper()
	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"call_api","arguments":{}}}`
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(call))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestTokenForAnotherAudienceIsRefused: the MCP authorization specification
// (Token Audience Binding and Validation; RFC 8707) says an MCP server MUST
// validate that a token was issued for it, and refuse one whose audience is
// another resource. A token signed with the server's key for another
// service gets 401, one without aud too, and the printed demo token, whose
// aud is the endpoint's URL, calls the tool.
func TestTokenForAnotherAudienceIsRefused(t *testing.T) {
	url, dir := startDemo(t, options{httpAddr: "127.0.0.1:0", ttl: time.Minute})
	key, err := os.ReadFile(filepath.Join(dir, "jwt_signing_key"))
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	other := signWith(t, key, jwt.MapClaims{"sub": "alice", "exp": exp, "scope": server.AllScopes,
		"aud": "https://billing.example.com/api"})
	if resp := postCallAPI(t, url, other); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token whose audience is another service: %s, want 401", resp.Status)
	}
	none := signWith(t, key, jwt.MapClaims{"sub": "alice", "exp": exp, "scope": server.AllScopes})
	if resp := postCallAPI(t, url, none); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a token without aud: %s, want 401", resp.Status)
	}
	own := signWith(t, key, jwt.MapClaims{"sub": "alice", "exp": exp, "scope": server.AllScopes, "aud": url})
	if resp := postCallAPI(t, url, own); resp.StatusCode != http.StatusOK {
		t.Fatalf("a token for this server: %s, want 200", resp.Status)
	}
}
