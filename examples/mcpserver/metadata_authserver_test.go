package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// TestMetadataNamesAnAuthorizationServer: the MCP specification
// (Authorization Server Discovery) says the Protected Resource Metadata
// "MUST include the authorization_servers field containing at least one
// authorization server", and the official Go SDK's OAuth client refuses
// metadata without one. The default run, the one the README's Inspector
// command uses, names the placeholder demoAuthServer; -authorization-server
// replaces it.
func TestMetadataNamesAnAuthorizationServer(t *testing.T) {
	url, _ := startDemo(t, options{httpAddr: "127.0.0.1:0", ttl: time.Minute})
	meta := strings.TrimSuffix(url, "/mcp") + "/.well-known/oauth-protected-resource/mcp"
	prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), meta, url, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	if len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != demoAuthServer {
		t.Fatalf("the metadata lists %q, want the placeholder %q", prm.AuthorizationServers, demoAuthServer)
	}

	url, _ = startDemo(t, options{httpAddr: "127.0.0.1:0", ttl: time.Minute, authServers: "https://a.example.com, https://b.example.com"})
	meta = strings.TrimSuffix(url, "/mcp") + "/.well-known/oauth-protected-resource/mcp"
	prm, err = oauthex.GetProtectedResourceMetadata(context.Background(), meta, url, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(prm.AuthorizationServers, " ") != "https://a.example.com https://b.example.com" {
		t.Fatalf("-authorization-server: the metadata lists %q", prm.AuthorizationServers)
	}
}
