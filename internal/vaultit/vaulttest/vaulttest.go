// Package vaulttest runs a real HashiCorp Vault server inside the test process.
//
// The server is Vault's own core (github.com/hashicorp/vault/vault), initialised
// with an in-memory storage backend and a Shamir seal, unsealed, and served by
// Vault's own HTTP handler on a loopback port. Clients talk to it over real
// HTTP with github.com/hashicorp/vault/api, exactly as they would to a
// production Vault; nothing is mocked.
//
// Quick start:
//
//	v := vaulttest.Start(t)                    // stopped by t.Cleanup
//	c := v.Client(t)                           // root token
//	v.MountKV(t, "kv", 2)
//	_, err := c.KVv2("kv").Put(ctx, "app/db", map[string]any{"password": "s3cret"})
//
// What the server looks like after Start, decided to match `vault server -dev`:
//
//   - secret/ is a KV version 2 engine (the bare Vault test core mounts KV v1
//     there; Start replaces it).
//   - The AppRole auth method is compiled in but not enabled; EnableAppRole
//     enables it at auth/approle/ on first use.
//   - Only the root token exists; its value is in RootToken.
//   - The database secrets engine and its PostgreSQL plugin are compiled in,
//     the plugin as a builtin (as production Vault ships it), but not
//     mounted; MountDatabase mounts the engine and ConnectPostgres points it
//     at a PostgreSQL server.
//
// The core logs at hclog's Error level into t.Log, so `go test` shows its logs
// only for a failing test or with -v.
//
// This package lives in its own module (github.com/rotorhq/rotor/internal/vaultit)
// so that the Vault server and its large dependency tree never reach the
// go.mod of github.com/rotorhq/rotor.
//
// Concurrency: a Server may be used from several goroutines and subtests. Seal
// and Unseal change the state every client sees; tests that call them should
// not share their Server with parallel tests.
package vaulttest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/internalshared/configutil"
	"github.com/hashicorp/vault/vault"

	vaulthttp "github.com/hashicorp/vault/http"
)

// Server is a running in-process Vault server. Create it with Start; it stops
// when the test that started it ends.
type Server struct {
	// Addr is the server's base URL, of the form http://127.0.0.1:PORT. Set it
	// as api.Config.Address (or VAULT_ADDR) to reach the server.
	Addr string

	// RootToken is the root token of the server. It never expires and is
	// allowed everything.
	RootToken string

	core       *vault.Core
	unsealKeys [][]byte

	mu             sync.Mutex // guards approleEnabled
	approleEnabled bool
}

// Start starts a Vault server, initialised and unsealed, listening on a free
// port of 127.0.0.1, and registers a t.Cleanup that stops the HTTP listener and
// then shuts the core down, waiting for both. Start fails the test with
// t.Fatal if the server does not come up.
func Start(t testing.TB) *Server {
	t.Helper()

	// Registered first so that it runs last, after the core has shut down:
	// from then on the core's stray log lines are dropped instead of reaching
	// a finished test's t.Log (which would panic).
	logOut := &testLogWriter{t: t}
	t.Cleanup(logOut.stop)
	logger := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name:   "vault",
		Level:  hclog.Error,
		Output: logOut,
	})

	core, keys, rootToken := newCore(t, logger)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("vaulttest: listen on loopback: %v", err)
	}
	srv := &http.Server{
		Handler: vaulthttp.Handler.Handler(&vault.HandlerProperties{
			Core: core,
			ListenerConfig: &configutil.Listener{
				Type:    "tcp",
				Address: ln.Addr().String(),
			},
		}),
		ErrorLog:          logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // always http.ErrServerClosed once Shutdown has begun
	}()
	// Runs before the core's own cleanup (cleanups run last-in first-out), so
	// no request is in flight when the core shuts down.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Logf("vaulttest: graceful HTTP shutdown: %v; closing connections", err)
			_ = srv.Close()
		}
		<-served
	})

	s := &Server{
		Addr:       "http://" + ln.Addr().String(),
		RootToken:  rootToken,
		core:       core,
		unsealKeys: keys,
	}
	s.MountKV(t, "secret", 2)
	return s
}

// Client returns a new API client for the server, authenticated with the root
// token. Its retries are disabled (api.Client.SetMaxRetries(0)) so that a
// failure, such as a 503 from a sealed server, is reported at once; its idle
// connections are closed by t.Cleanup. The VAULT_* environment variables of
// the test process do not change its address, token or namespace.
func (s *Server) Client(t testing.TB) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		t.Fatalf("vaulttest: default client config: %v", cfg.Error)
	}
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("vaulttest: new client: %v", err)
	}
	c.SetToken(s.RootToken)
	c.ClearNamespace()
	t.Cleanup(cfg.HttpClient.CloseIdleConnections)
	return c
}

// MountKV mounts a KV secrets engine of the given version (1 or 2) at path,
// for example "kv" or "team/kv". Whatever was mounted at path before is
// unmounted first, with its data. A KV v2 engine is ready for writes when
// MountKV returns.
func (s *Server) MountKV(t testing.TB, path string, version int) {
	t.Helper()
	if version != 1 && version != 2 {
		t.Fatalf("vaulttest: MountKV(%q): version %d, want 1 or 2", path, version)
	}
	path = strings.Trim(path, "/")
	c := s.Client(t)
	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatalf("vaulttest: list mounts: %v", err)
	}
	if _, ok := mounts[path+"/"]; ok {
		if err := c.Sys().Unmount(path); err != nil {
			t.Fatalf("vaulttest: unmount %q: %v", path, err)
		}
	}
	err = c.Sys().Mount(path, &api.MountInput{
		Type:    "kv",
		Options: map[string]string{"version": fmt.Sprint(version)},
	})
	if err != nil {
		t.Fatalf("vaulttest: mount KV v%d at %q: %v", version, path, err)
	}
}

// WritePolicy creates or replaces the ACL policy name with the HCL text hcl.
func (s *Server) WritePolicy(t testing.TB, name, hcl string) {
	t.Helper()
	if err := s.Client(t).Sys().PutPolicy(name, hcl); err != nil {
		t.Fatalf("vaulttest: write policy %q: %v", name, err)
	}
}

// EnableAppRole makes sure the AppRole auth method is enabled at
// auth/approle/, creates or replaces the role named role, and returns the
// role's RoleID and a new SecretID. A login with them (POST
// auth/approle/login) yields a token that carries policies (plus "default"),
// lives tokenTTL and can be renewed up to tokenMaxTTL. A zero duration leaves
// Vault's default (the mount's TTLs: 768h for the test core). The SecretID
// itself never expires and can be used any number of times.
func (s *Server) EnableAppRole(t testing.TB, role string, policies []string, tokenTTL, tokenMaxTTL time.Duration) (roleID, secretID string) {
	t.Helper()
	c := s.Client(t)

	s.mu.Lock()
	if !s.approleEnabled {
		err := c.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"})
		if err != nil {
			s.mu.Unlock()
			t.Fatalf("vaulttest: enable approle auth: %v", err)
		}
		s.approleEnabled = true
	}
	s.mu.Unlock()

	rolePath := "auth/approle/role/" + role
	_, err := c.Logical().Write(rolePath, map[string]any{
		"token_policies": policies,
		"token_ttl":      int64(tokenTTL / time.Second),
		"token_max_ttl":  int64(tokenMaxTTL / time.Second),
	})
	if err != nil {
		t.Fatalf("vaulttest: write approle role %q: %v", role, err)
	}

	r, err := c.Logical().Read(rolePath + "/role-id")
	if err != nil || r == nil {
		t.Fatalf("vaulttest: read role-id of %q: %v", role, errOrEmpty(err))
	}
	roleID, _ = r.Data["role_id"].(string)

	r, err = c.Logical().Write(rolePath+"/secret-id", nil)
	if err != nil || r == nil {
		t.Fatalf("vaulttest: create secret-id of %q: %v", role, errOrEmpty(err))
	}
	secretID, _ = r.Data["secret_id"].(string)

	if roleID == "" || secretID == "" {
		t.Fatalf("vaulttest: approle role %q: empty role_id or secret_id", role)
	}
	return roleID, secretID
}

// Seal seals the server through its API (PUT sys/seal) and returns once the
// core is sealed. While sealed, every request but a few sys/ endpoints fails
// with HTTP 503 Service Unavailable. Storage is kept: Unseal brings back every
// mount, policy, token and secret.
func (s *Server) Seal(t testing.TB) {
	t.Helper()
	if err := s.Client(t).Sys().Seal(); err != nil {
		t.Fatalf("vaulttest: seal: %v", err)
	}
	if !s.core.Sealed() {
		t.Fatal("vaulttest: core still unsealed after sys/seal")
	}
}

// Unseal unseals the server through its API (PUT sys/unseal, once per key
// share) and returns once the core serves requests again. Unsealing a server
// that is not sealed does nothing.
func (s *Server) Unseal(t testing.TB) {
	t.Helper()
	c := s.Client(t)
	var st *api.SealStatusResponse
	var err error
	for _, key := range s.unsealKeys {
		st, err = c.Sys().Unseal(hex.EncodeToString(key))
		if err != nil {
			t.Fatalf("vaulttest: unseal: %v", err)
		}
		if !st.Sealed {
			break
		}
	}
	if st == nil || st.Sealed || s.core.Sealed() {
		t.Fatal("vaulttest: core still sealed after every key share")
	}
}

func errOrEmpty(err error) error {
	if err != nil {
		return err
	}
	return errors.New("empty response")
}

// testLogWriter forwards the core's log lines to t.Logf until stop is called.
type testLogWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
