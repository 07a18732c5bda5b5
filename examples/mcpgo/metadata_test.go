package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// TestMetadataNamesAnAuthorizationServer: the MCP authorization specification
// requires the protected-resource metadata to name at least one
// authorization server; without one configured, the example names a
// placeholder that never resolves.
func TestMetadataNamesAnAuthorizationServer(t *testing.T) {
	src := memory.New()
	src.Set("jwt", keyA)
	src.Set("api", "k")
	store, err := secrets.New(src)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	h, closeIdle, err := NewHandler(Config{Store: store, JWTKey: "jwt", APIKey: "api", APIURL: srv.URL + "/nowhere",
		Endpoint: srv.URL + "/mcp"})
	if err != nil {
		t.Fatal(err)
	}
	defer closeIdle()
	mux.Handle("/", h)
	resp, err := srv.Client().Get(srv.URL + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	if md.Resource != srv.URL+"/mcp" || len(md.AuthorizationServers) == 0 {
		t.Fatalf("metadata %+v: want the resource and at least one authorization server", md)
	}
}
