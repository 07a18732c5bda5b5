package main

import (
	"encoding/json"
	"testing"
)

// TestMetadataNamesAnAuthorizationServer: the MCP authorization specification
// requires the protected-resource metadata to name at least one
// authorization server; without one configured, the example names a
// placeholder that never resolves.
func TestMetadataNamesAnAuthorizationServer(t *testing.T) {
	_, srv := serveExample(t, nil)
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
