package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	keyA = "first-signing-key-0123456789abcdef0123"
	keyB = "second-signing-key-0123456789abcdef012"
)

// upstream accepts one API key at a time, as a service does once a rotation
// has revoked the old key.
type upstream struct {
	mu  sync.Mutex
	key string
}

func (u *upstream) set(k string) { u.mu.Lock(); u.key = k; u.mu.Unlock() }

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	ok := r.Header.Get("Authorization") == "Bearer "+u.key
	u.mu.Unlock()
	if !ok {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	fmt.Fprint(w, "hello")
}

// sign signs a token with the Store's current key, as the party that holds
// the signing key does.
func sign(t *testing.T, signer *jwtkeys.Signer, aud, scope string) string {
	t.Helper()
	s, err := signer.Sign(context.Background(), jwt.MapClaims{
		"sub": "test", "aud": aud, "scope": scope, "exp": time.Now().Add(time.Hour).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func connect(t *testing.T, ctx context.Context, url, token string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "v0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		t.Fatalf("initialize: %v", err)
	}
	return c
}

func callAPI(ctx context.Context, c *client.Client) (string, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = "call_api"
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, content := range res.Content {
		if tc, ok := mcp.AsTextContent(content); ok {
			b.WriteString(tc.Text)
		}
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %s", b.String())
	}
	return b.String(), nil
}

// TestRotationMidSession drives the mcp-go server through mcp-go's client
// and rotates, in the middle of one session, the upstream API key (the
// Transport's retry inside the handler, under secrets.Call) and the JWT
// signing key (the session's token, signed with the old key, is still
// honoured as the previous key's; a token signed with the new key gets in).
func TestRotationMidSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	api := &upstream{key: "api-key-1"}
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()

	mem := memory.New()
	mem.Set("jwt", keyA)
	mem.Set("api", "api-key-1")
	store, err := secrets.New(mem, secrets.WithValidator(jwtkeys.KeyValidator(), "jwt"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String() + "/mcp"
	h, closeIdle, err := NewHandler(Config{Store: store, JWTKey: "jwt", APIKey: "api", APIURL: apiSrv.URL, Endpoint: url,
		ToolScope: map[string][]string{"call_api": {"api:call"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer closeIdle()
	srv.Config.Handler = h
	srv.Start()
	defer srv.Close()

	// Without a token: 401 naming the metadata.
	resp, err := http.Post(url, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := `resource_metadata="http://` + srv.Listener.Addr().String() + `/.well-known/oauth-protected-resource/mcp"`; resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), want) {
		t.Fatalf("no token: %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}

	signer, err := jwtkeys.NewSigner(store, "jwt")
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, ctx, url, sign(t, signer, url, "api:call"))
	defer c.Close()
	if got, err := callAPI(ctx, c); err != nil || got != "hello" {
		t.Fatalf("call_api: %q %v", got, err)
	}

	// The API key rotates: the upstream takes only the new one, the
	// backend holds it, the Store has not seen it yet.
	api.set("api-key-2")
	mem.Set("api", "api-key-2")
	if got, err := callAPI(ctx, c); err != nil || got != "hello" {
		t.Fatalf("call_api after the API key rotated: %q %v", got, err)
	}
	if v, err := store.Get(ctx, "api"); err != nil || v.Reveal() != "api-key-2" {
		t.Fatalf("the Store serves %v (%v)", v, err)
	}

	// The signing key rotates: the session's token was signed with the old
	// key, now the previous one.
	mem.Set("jwt", keyB)
	if err := store.Refresh(ctx, "jwt"); err != nil {
		t.Fatal(err)
	}
	if got, err := callAPI(ctx, c); err != nil || got != "hello" {
		t.Fatalf("call_api with a token of the previous key: %q %v", got, err)
	}
	c2 := connect(t, ctx, url, sign(t, signer, url, "api:call"))
	defer c2.Close()
	if got, err := callAPI(ctx, c2); err != nil || got != "hello" {
		t.Fatalf("call_api with a token of the new key: %q %v", got, err)
	}

	// A token without the tool's scope is refused the tool.
	c3 := connect(t, ctx, url, sign(t, signer, url, "other"))
	defer c3.Close()
	if _, err := callAPI(ctx, c3); err == nil {
		t.Fatal("a token without api:call called call_api")
	}
}
