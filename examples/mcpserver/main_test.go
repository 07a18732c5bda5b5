package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/secrets"
)

func TestMain(m *testing.M) {
	if args := os.Getenv("ROTOR_MCPSERVER_ARGS"); args != "" {
		// Run as the server itself, for TestStdio and TestSignalStopsCluster.
		os.Args = append([]string{"mcpserver"}, strings.Fields(args)...)
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for the server and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func connect(ctx context.Context, url, token string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v0"}, nil)
	return c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             url,
		HTTPClient:           &http.Client{Transport: bearer{token}},
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, nil)
}

func TestHTTPWithRotatingJWTKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, options{httpAddr: "127.0.0.1:0", ttl: time.Minute},
			slog.New(slog.DiscardHandler), out, ready)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, out)
	}
	printed := out.String()
	token := strings.TrimSpace(regexp.MustCompile(`(?m)^  (ey\S+)$`).FindString(printed))
	dir := regexp.MustCompile(`edit the files in (\S+),`).FindStringSubmatch(printed)
	if token == "" || dir == nil {
		t.Fatalf("no token or directory in the output:\n%s", printed)
	}
	if !strings.Contains(printed, "db_whoami is disabled") {
		t.Fatalf("the output does not say the database tool is disabled:\n%s", printed)
	}

	if _, err := connect(ctx, url, "not-a-token"); err == nil {
		t.Fatal("a bad token was let in")
	}
	checkProtectedResource(t, ctx, url, dir[1])
	cs, err := connect(ctx, url, token)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "call_api"})
	if err != nil || res.IsError {
		t.Fatalf("call_api: %v %+v", err, res)
	}
	body, _ := json.Marshal(res.StructuredContent)
	if !strings.Contains(string(body), "hello from the demo API") {
		t.Fatalf("call_api answered %s", body)
	}

	// Rotate the JWT key: a token signed with the new key is accepted once
	// the server has seen the file change, and the old token still is,
	// within the grace window.
	newKey := []byte("a-new-signing-key-for-the-test-0123456789")
	path := filepath.Join(dir[1], "jwt_signing_key")
	if err := os.WriteFile(path+".tmp", newKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "after-rotation", Audience: jwt.ClaimStrings{url}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	})
	tok.Header["kid"] = secrets.ContentVersion(newKey)
	signed, err := tok.SignedString(newKey)
	if err != nil {
		t.Fatal(err)
	}
	// The server learns of the change from its file watch; each try is a
	// real request, bounded by the test's deadline.
	for {
		cs2, err := connect(ctx, url, signed)
		if err == nil {
			cs2.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("a token signed with the new key was never accepted: %v", err)
		}
	}
	cs3, err := connect(ctx, url, token)
	if err != nil {
		t.Fatalf("the old token was refused within the grace window: %v", err)
	}
	cs3.Close()
}

func signWith(t *testing.T, key []byte, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = secrets.ContentVersion(key)
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// checkProtectedResource: the server behind the SDK's RequireBearerToken
// answers a request without a token with 401 and a WWW-Authenticate that
// names the metadata URL, serves the metadata there (and at the root), and
// answers a token without a tool's scope with 403 insufficient_scope, while
// a token without any scope claim may call every tool.
func checkProtectedResource(t *testing.T, ctx context.Context, url, dir string) {
	t.Helper()
	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"call_api","arguments":{}}}`
	post := func(token string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(call))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	base := strings.TrimSuffix(url, "/mcp")
	metaURL := base + "/.well-known/oauth-protected-resource/mcp"
	resp := post("")
	cs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if resp.StatusCode != http.StatusUnauthorized || err != nil || len(cs) != 1 || cs[0].Params["resource_metadata"] != metaURL {
		t.Fatalf("no token: %s %q", resp.Status, resp.Header.Values("WWW-Authenticate"))
	}
	for _, m := range []struct{ url, resource string }{{metaURL, url}, {base + "/.well-known/oauth-protected-resource", base}} {
		prm, err := oauthex.GetProtectedResourceMetadata(ctx, m.url, m.resource, http.DefaultClient)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(prm.ScopesSupported, " ") != "api:call db:read" {
			t.Fatalf("metadata at %s: %+v", m.url, prm)
		}
	}

	key, err := os.ReadFile(filepath.Join(dir, "jwt_signing_key"))
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	resp = post(signWith(t, key, jwt.MapClaims{"sub": "narrow", "aud": url, "exp": exp, "scope": "db:read"}))
	cs, err = oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if resp.StatusCode != http.StatusForbidden || err != nil || len(cs) != 1 ||
		cs[0].Params["error"] != "insufficient_scope" || cs[0].Params["scope"] != "api:call" || cs[0].Params["resource_metadata"] != metaURL {
		t.Fatalf("a token without call_api's scope: %s %q", resp.Status, resp.Header.Values("WWW-Authenticate"))
	}
	for _, claims := range []jwt.MapClaims{
		{"sub": "wide", "aud": url, "exp": exp, "scope": "api:call"},
		{"sub": "unscoped", "aud": url, "exp": exp},
	} {
		if resp := post(signWith(t, key, claims)); resp.StatusCode != http.StatusOK {
			t.Fatalf("%v: %s", claims["sub"], resp.Status)
		}
	}
}

func TestStdio(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "ROTOR_MCPSERVER_ARGS=-stdio")
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v0"}, nil)
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for _, tool := range []string{"call_api", "db_whoami"} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool})
		if err != nil || res.IsError {
			t.Fatalf("%s over stdio: %v %+v", tool, err, res)
		}
	}
}

// TestNoTokenPrintedOnOwnCredentials: a token is printed by default on the
// embedded demo credentials only; on credentials of one's own (-secrets) it
// takes -print-token.
func TestNoTokenPrintedOnOwnCredentials(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"jwt_signing_key": "an-hmac-key-of-at-least-thirty-two-bytes!",
		"api_key":         "own-api-key",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	token := regexp.MustCompile(`(?m)^  ey\S+$`)
	for _, tc := range []struct {
		name  string
		print tristate
		want  bool
	}{{"default", tristate{}, false}, {"asked", tristate{set: true, on: true}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			out := &syncBuffer{}
			ready := make(chan string, 1)
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, options{httpAddr: "127.0.0.1:0", ttl: time.Minute, secretsDir: dir, printToken: tc.print},
					slog.New(slog.DiscardHandler), out, ready)
			}()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("run: %v\n%s", err, out)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v", err)
			}
			if got := token.MatchString(out.String()); got != tc.want {
				t.Fatalf("token printed: %v, want %v:\n%s", got, tc.want, out)
			}
		})
	}
}
