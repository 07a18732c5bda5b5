package mcpauth_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/rotorhq/rotor/jwtkeys/mcpauth"
)

func TestMetadataURL(t *testing.T) {
	cases := []struct{ resource, want string }{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		{"https://mcp.example.com/a/b/", "https://mcp.example.com/.well-known/oauth-protected-resource/a/b/"}, // RFC 9728 §3.1: only a slash after the host goes
		{"https://mcp.example.com", "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{"https://mcp.example.com/", "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{"http://127.0.0.1:8080/mcp?tenant=1", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp?tenant=1"},
	}
	for _, c := range cases {
		got, err := (&mcpauth.Resource{URL: c.resource}).MetadataURL()
		if err != nil || got != c.want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", c.resource, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "/mcp", "mcp.example.com/mcp", "ftp://h/mcp", "https://h/mcp#x", "https://h/mcp#", "http://[::1"} {
		r := &mcpauth.Resource{URL: bad}
		if _, err := r.MetadataURL(); err == nil {
			t.Errorf("MetadataURL(%q) did not fail", bad)
		}
		if _, err := r.Handler(nil, nil, http.NotFoundHandler()); err == nil {
			t.Errorf("Handler with URL %q did not fail", bad)
		}
	}
}

// resourceFixture is an MCP server on the SDK, with two tools, served
// behind Resource.Handler.
type resourceFixture struct {
	*fixture
	res    *mcpauth.Resource
	srv    *httptest.Server
	called chan string
}

func newResourceFixture(t *testing.T, allowUnscoped, httpCheck bool) *resourceFixture {
	t.Helper()
	rf := &resourceFixture{fixture: newFixture(t, "jwt", nil), called: make(chan string, 16)}
	server := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "v0"}, nil)
	for _, name := range []string{"open", "call_api"} {
		mcp.AddTool(server, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, struct{}, error) {
			rf.called <- name
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ran " + name}}}, struct{}{}, nil
		})
	}
	mux := http.NewServeMux()
	rf.srv = httptest.NewServer(mux)
	t.Cleanup(rf.srv.Close)
	rf.res = &mcpauth.Resource{
		URL:                  rf.srv.URL + "/mcp",
		AuthorizationServers: []string{"https://auth.example.com"},
		ToolScopes:           map[string][]string{"call_api": {"api:call"}},
		AllowUnscoped:        allowUnscoped,
		Name:                 "test server",
	}
	server.AddReceivingMiddleware(rf.res.ToolScopeMiddleware())
	mh := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	var h http.Handler
	var err error
	if httpCheck {
		h, err = rf.res.Handler(mcpauth.TokenVerifier(rf.verifier), nil, mh)
	} else {
		// Only the SDK's middleware and the server-side check.
		h = auth.RequireBearerToken(mcpauth.TokenVerifier(rf.verifier), nil)(mh)
	}
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", h)
	return rf
}

type bearerRT struct{ token string }

func (b bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func (rf *resourceFixture) connect(t *testing.T, token string) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v0"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: rf.res.URL, HTTPClient: &http.Client{Transport: bearerRT{token}},
		DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	return cs
}

// post sends one JSON-RPC body to the MCP endpoint.
func (rf *resourceFixture) post(t *testing.T, token, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, rf.res.URL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := rf.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
}

func challengeOf(t *testing.T, h http.Header) map[string]string {
	t.Helper()
	cs, err := oauthex.ParseWWWAuthenticate(h.Values("WWW-Authenticate"))
	if err != nil || len(cs) != 1 || cs[0].Scheme != "bearer" {
		t.Fatalf("WWW-Authenticate %q: %+v %v", h.Values("WWW-Authenticate"), cs, err)
	}
	return cs[0].Params
}

const callAPI = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"call_api","arguments":{}}}`

// TestResource: the 401 names the metadata, the metadata is served where
// it names it (and at the root), and a token without a tool's scope gets a
// 403 a client can step up from; one with it calls the tool.
func TestResource(t *testing.T) {
	rf := newResourceFixture(t, false, true)
	metaURL, _ := rf.res.MetadataURL()
	if want := rf.srv.URL + "/.well-known/oauth-protected-resource/mcp"; metaURL != want {
		t.Fatalf("MetadataURL = %q, want %q", metaURL, want)
	}

	code, _, h := rf.post(t, "", callAPI)
	if code != http.StatusUnauthorized || challengeOf(t, h)["resource_metadata"] != metaURL {
		t.Fatalf("no token: %d %v", code, h)
	}
	code, _, h = rf.post(t, canary, callAPI)
	if code != http.StatusUnauthorized || challengeOf(t, h)["resource_metadata"] != metaURL {
		t.Fatalf("bad token: %d %v", code, h)
	}

	// The metadata, fetched and checked as the SDK's OAuth client does.
	ctx := context.Background()
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, metaURL, rf.res.URL, rf.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(prm.AuthorizationServers, " ") != "https://auth.example.com" ||
		strings.Join(prm.ScopesSupported, " ") != "api:call" ||
		strings.Join(prm.BearerMethodsSupported, " ") != "header" || prm.ResourceName != "test server" {
		t.Fatalf("metadata = %+v", prm)
	}
	root, err := oauthex.GetProtectedResourceMetadata(ctx, rf.srv.URL+mcpauth.WellKnownPath, rf.srv.URL, rf.srv.Client())
	if err != nil || strings.Join(root.ScopesSupported, " ") != "api:call" {
		t.Fatalf("root metadata: %+v %v", root, err)
	}
	resp, err := rf.srv.Client().Get(rf.srv.URL + mcpauth.WellKnownPath + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("metadata of another path: %s", resp.Status)
	}

	// A token without the tool's scope: 403 insufficient_scope; with it,
	// the tool runs. A tool that needs no scope runs for both.
	narrow := rf.sign(t, claims(jwt.MapClaims{"scope": "tools:list"}))
	code, body, h := rf.post(t, narrow, callAPI)
	p := challengeOf(t, h)
	if code != http.StatusForbidden || p["error"] != "insufficient_scope" || p["scope"] != "api:call" || p["resource_metadata"] != metaURL {
		t.Fatalf("narrow token: %d %q %v", code, body, h)
	}
	if !strings.Contains(body, `"call_api" needs api:call`) {
		t.Fatalf("403 body %q", body)
	}
	batch := `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},` + callAPI + `]`
	if code, _, _ := rf.post(t, narrow, batch); code != http.StatusForbidden {
		t.Fatalf("a batch with the call got %d", code)
	}
	cs := rf.connect(t, narrow)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "open"}); err != nil {
		t.Fatalf("a tool that needs no scope: %v", err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "call_api"}); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("call_api with the narrow token: %v", err)
	}
	wide := rf.sign(t, claims(jwt.MapClaims{"scope": "tools:list api:call"}))
	res, err := rf.connect(t, wide).CallTool(ctx, &mcp.CallToolParams{Name: "call_api"})
	if err != nil || res.IsError {
		t.Fatalf("call_api with the scope: %v %+v", err, res)
	}
	if got := drain(rf.called); strings.Join(got, " ") != "open call_api" {
		t.Fatalf("tools that ran: %v", got)
	}
}

func drain(c chan string) []string {
	var out []string
	for {
		select {
		case s := <-c:
			out = append(out, s)
		default:
			return out
		}
	}
}

// TestResourceUnscoped: where the token carries scopes, they are checked;
// a token with no scope claim at all is let through only with
// AllowUnscoped, and an empty scope claim is a claim.
func TestResourceUnscoped(t *testing.T) {
	for _, allow := range []bool{false, true} {
		rf := newResourceFixture(t, allow, true)
		cases := []struct {
			name   string
			claims jwt.MapClaims
			ok     bool
		}{
			{"no scope claim", nil, allow},
			{"empty scope claim", jwt.MapClaims{"scope": ""}, false},
			{"empty scp claim", jwt.MapClaims{"scp": []string{}}, false},
			{"scp with the scope", jwt.MapClaims{"scp": []string{"api:call"}}, true},
		}
		for _, c := range cases {
			code, body, _ := rf.post(t, rf.sign(t, claims(c.claims)), callAPI)
			if (code == http.StatusOK) != c.ok || code != http.StatusOK && code != http.StatusForbidden {
				t.Errorf("AllowUnscoped=%v, %s: %d %q", allow, c.name, code, body)
			}
		}
	}
}

// TestToolScopeMiddleware: without the HTTP check, the server-side
// middleware still refuses the call, as a JSON-RPC error, and lets a token
// with the scope through.
func TestToolScopeMiddleware(t *testing.T) {
	rf := newResourceFixture(t, false, false)
	ctx := context.Background()
	narrow := rf.sign(t, claims(jwt.MapClaims{"scope": "other"}))
	_, err := rf.connect(t, narrow).CallTool(ctx, &mcp.CallToolParams{Name: "call_api"})
	if err == nil || !strings.Contains(err.Error(), mcpauth.ErrInsufficientScope.Error()) || !strings.Contains(err.Error(), "api:call") {
		t.Fatalf("call_api with the narrow token: %v", err)
	}
	code, body, _ := rf.post(t, narrow, callAPI)
	var msg struct {
		Error struct{ Message string } `json:"error"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &msg) != nil || !strings.Contains(msg.Error.Message, "insufficient scope") {
		t.Fatalf("raw call: %d %q", code, body)
	}
	res, err := rf.connect(t, rf.sign(t, claims(jwt.MapClaims{"scope": "api:call"}))).CallTool(ctx, &mcp.CallToolParams{Name: "call_api"})
	if err != nil || res.IsError {
		t.Fatalf("call_api with the scope: %v %+v", err, res)
	}
}
