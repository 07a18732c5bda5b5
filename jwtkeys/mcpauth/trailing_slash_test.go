package mcpauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/rotorhq/rotor/jwtkeys/mcpauth"
)

// TestTrailingSlashMetadataWhereClientsLook: for a resource whose path
// ends in a slash, RFC 9728 section 3.1 removes only a slash that follows
// the host ("any terminating slash (/) following the host component"), so
// the metadata of https://h/mcp/ is at /.well-known/oauth-protected-resource/mcp/,
// which is also where the official Go SDK's OAuth client looks when it
// falls back from the header (the well-known path + the resource path with
// its trailing slash). MetadataURL names that URL, and it is served there.
func TestTrailingSlashMetadataWhereClientsLook(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res := &mcpauth.Resource{URL: srv.URL + "/mcp/", AuthorizationServers: []string{"https://auth.example.com"}}
	h, err := res.MetadataHandler()
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(mcpauth.WellKnownPath, h)
	mux.Handle(mcpauth.WellKnownPath+"/", h)
	where := srv.URL + mcpauth.WellKnownPath + "/mcp/"
	if got, err := res.MetadataURL(); err != nil || got != where {
		t.Fatalf("MetadataURL = %q, %v; want %q", got, err, where)
	}
	prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), where, res.URL, srv.Client())
	if err != nil {
		t.Fatalf("metadata of %s not found where RFC 9728 and the SDK client put it (%s): %v", res.URL, where, err)
	}
	if prm.Resource != res.URL {
		t.Fatalf("resource = %q, want %q", prm.Resource, res.URL)
	}
}
