package mcpauth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/rotorhq/rotor/jwtkeys"
	"github.com/rotorhq/rotor/jwtkeys/mcpauth"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	keyA   = "A-0123456789abcdef0123456789abcd"
	keyB   = "B-0123456789abcdef0123456789abcd"
	canary = "CANARY7x"
)

type fixture struct {
	src      *memory.Source
	store    *secrets.Store
	signer   *jwtkeys.Signer
	verifier *jwtkeys.Verifier
	srv      *httptest.Server
}

// newFixture serves a handler behind RequireBearerToken on a loopback
// listener. The middleware checks expiration with time.Now, so the fixture
// runs on the system clock; no test waits on it.
func newFixture(t *testing.T, key string, opts *auth.RequireBearerTokenOptions) *fixture {
	t.Helper()
	f := &fixture{src: memory.New()}
	f.src.Set("jwt", keyA)
	st, err := secrets.New(f.src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.store = st
	if f.signer, err = jwtkeys.NewSigner(st, "jwt"); err != nil {
		t.Fatal(err)
	}
	if f.verifier, err = jwtkeys.NewVerifier(st, key, jwtkeys.WithAudience("mcp")); err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := auth.TokenInfoFromContext(r.Context())
		fmt.Fprintf(w, "%s %v", info.UserID, info.Scopes)
	})
	f.srv = httptest.NewServer(auth.RequireBearerToken(mcpauth.TokenVerifier(f.verifier), opts)(h))
	t.Cleanup(f.srv.Close)
	return f
}

// get sends a request with the given Authorization header ("" for none).
func (f *fixture) get(t *testing.T, authz string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(body)), resp.Header
}

func claims(extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "aud": "mcp", "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (f *fixture) sign(t *testing.T, c jwt.Claims) string {
	t.Helper()
	tok, err := f.signer.Sign(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func hs256(t *testing.T, key string, c jwt.Claims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRequireBearerToken(t *testing.T) {
	f := newFixture(t, "jwt", &auth.RequireBearerTokenOptions{
		Scopes:              []string{"tools:call"},
		ResourceMetadataURL: "https://mcp.example/.well-known/oauth-protected-resource",
	})
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(jwt.MapClaims{"scope": "tools:call"})).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		authz string
		code  int
		body  string
	}{
		{"good token", "Bearer " + f.sign(t, claims(jwt.MapClaims{"scope": "tools:list tools:call"})), 200, "alice [tools:list tools:call]"},
		{"scp array", "Bearer " + f.sign(t, claims(jwt.MapClaims{"scp": []string{"tools:call", "x"}})), 200, "alice [tools:call x]"},
		{"scope and scp", "Bearer " + f.sign(t, claims(jwt.MapClaims{"scope": "tools:call", "scp": "tools:call y"})), 200, "alice [tools:call y]"},
		{"lower-case scheme", "bearer " + f.sign(t, claims(jwt.MapClaims{"scope": "tools:call"})), 200, "alice [tools:call]"},
		{"no token", "", 401, "no bearer token"},
		{"not bearer", "Basic YWxpY2U6cHc=", 401, "no bearer token"},
		{"garbage", "Bearer " + canary, 401, "invalid token: token is malformed"},
		{"wrong key", "Bearer " + hs256(t, keyB, claims(jwt.MapClaims{"scope": "tools:call"})), 401, "invalid token: token signature is invalid"},
		{"alg none", "Bearer " + none, 401, "invalid token: token algorithm is not accepted"},
		{"expired", "Bearer " + f.sign(t, claims(jwt.MapClaims{"scope": "tools:call", "exp": time.Now().Add(-time.Hour).Unix()})), 401, "invalid token: token is expired"},
		{"wrong audience", "Bearer " + f.sign(t, claims(jwt.MapClaims{"scope": "tools:call", "aud": canary})), 401, "invalid token: token has the wrong audience"},
		{"scope of the wrong type", "Bearer " + f.sign(t, claims(jwt.MapClaims{"scope": 7})), 401, "invalid token: token claims are invalid"},
		{"missing scope", "Bearer " + f.sign(t, claims(jwt.MapClaims{"scope": "tools:list"})), 403, "insufficient scope"},
		{"no scope", "Bearer " + f.sign(t, claims(nil)), 403, "insufficient scope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body, h := f.get(t, tc.authz)
			if code != tc.code || body != tc.body {
				t.Fatalf("got %d %q, want %d %q", code, body, tc.code, tc.body)
			}
			if code == 401 && !strings.Contains(h.Get("WWW-Authenticate"), "resource_metadata=") {
				t.Fatalf("401 without resource metadata: %v", h)
			}
			if strings.Contains(body, canary) {
				t.Fatalf("body echoes the token: %q", body)
			}
		})
	}
}

// TestRotationOverHTTP: a token signed before a rotation still gets in
// during the grace period, and the Verifier counts it.
func TestRotationOverHTTP(t *testing.T) {
	f := newFixture(t, "jwt", nil)
	before := "Bearer " + f.sign(t, claims(nil))
	f.src.Set("jwt", keyB)
	if err := f.store.Refresh(context.Background(), "jwt"); err != nil {
		t.Fatal(err)
	}
	after := "Bearer " + f.sign(t, claims(nil))
	for _, authz := range []string{before, after} {
		if code, body, _ := f.get(t, authz); code != 200 {
			t.Fatalf("got %d %q", code, body)
		}
	}
	if st := f.verifier.Stats(); st.VerifiedPrevious != 1 || st.VerifiedCurrent != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestKeyUnavailable: with no usable key, clients get a 500 that names
// nothing internal, not a 401.
func TestKeyUnavailable(t *testing.T) {
	f := newFixture(t, "missing-secret", nil)
	code, body, _ := f.get(t, "Bearer "+f.sign(t, claims(nil)))
	if code != 500 || body != "token verification unavailable" {
		t.Fatalf("got %d %q", code, body)
	}
}

// TestTokenVerifier calls the adapter directly and checks every field.
func TestTokenVerifier(t *testing.T) {
	f := newFixture(t, "jwt", nil)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tok := f.sign(t, claims(jwt.MapClaims{"exp": exp.Unix(), "scope": "a b a", "scp": []string{"b", "c", ""}}))
	tv := mcpauth.TokenVerifier(f.verifier)
	info, err := tv(context.Background(), tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.UserID != "alice" || !info.Expiration.Equal(exp) || strings.Join(info.Scopes, " ") != "a b c" {
		t.Fatalf("info = %+v", info)
	}

	_, err = tv(context.Background(), tok+"x", nil)
	var ite *mcpauth.InvalidTokenError
	if !errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, jwtkeys.ErrSignature) && !errors.Is(err, jwtkeys.ErrMalformed) || !errors.As(err, &ite) {
		t.Fatalf("err = %v", err)
	}

	missing, _ := jwtkeys.NewVerifier(f.store, "missing-secret")
	_, err = mcpauth.TokenVerifier(missing)(context.Background(), tok, nil)
	var ue *mcpauth.UnavailableError
	if errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, jwtkeys.ErrKeyUnavailable) || !errors.Is(err, secrets.ErrNotFound) || !errors.As(err, &ue) {
		t.Fatalf("err = %v", err)
	}
}
