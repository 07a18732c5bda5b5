package vaultsource_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

// These tests run on Vault's wall clock: token TTLs are real time. They wait
// for the source's token events, never for a fixed time, and run in
// parallel, each with a Vault of its own, since they spend it waiting.

const appKey = "vault://secret/app/db#pw"

// tokenSetup starts a Vault with secret/app/db and a policy "app" that may
// read it.
func tokenSetup(t *testing.T) (*vaulttest.Server, *api.Client) {
	t.Helper()
	v := vaulttest.Start(t)
	root := v.Client(t)
	put(t, root, "secret", "app/db", map[string]any{"pw": "s3cret"})
	v.WritePolicy(t, "app", readPolicy("secret", "app/"))
	return v, root
}

// quietStore returns a Store polling every 100ms, whose warnings (a failed
// refresh is one) are collected.
func quietStore(t *testing.T, src secrets.Source, opts ...secrets.Option) (*secrets.Store, *warnings) {
	t.Helper()
	w := &warnings{}
	opts = append([]secrets.Option{secrets.WithTTL(100 * time.Millisecond), secrets.WithLogger(slog.New(w))}, opts...)
	return newStore(t, src, opts...), w
}

func noWarnings(t *testing.T, w *warnings) {
	t.Helper()
	for _, m := range w.all() {
		t.Errorf("store warned: %s", m)
	}
}

// A token with a short TTL is renewed in the background while a Store
// serves and refreshes: no new login, no failed request.
func TestTokenRenewed(t *testing.T) {
	t.Parallel()
	v, _ := tokenSetup(t)
	const ttl = 3 * time.Second
	method := appRole(t, v, "app", []string{"app"}, ttl, time.Hour)
	ev := newEvents()
	c, _ := newClient(t, v, "")
	src := newSource(t, c, vault.WithAuth(method), vault.WithTokenEvents(ev.record))
	st, warn := quietStore(t, src)
	ctx := testCtx(t)

	if _, err := st.Get(ctx, appKey); err != nil {
		t.Fatal(err)
	}
	login, ok := ev.last(vault.TokenLoggedIn)
	if !ok || login.TTL != ttl || !login.Renewable || login.Accessor == "" {
		t.Fatalf("first event: %s", ev)
	}
	loggedIn := time.Now()
	stop := readers(t, st, appKey, "s3cret", true)
	// The watcher renews at once, then at about two thirds of each lease:
	// the third renewal comes after the first lease would have run out.
	ev.waitCount(t, ctx, vault.TokenRenewed, 3)
	stop()
	if since := time.Since(loggedIn); since <= ttl {
		t.Fatalf("three renewals within %v, under the TTL of %v", since, ttl)
	}
	if n := ev.count(vault.TokenLoggedIn); n != 1 {
		t.Fatalf("%d logins, want 1: %s", n, ev)
	}
	if r, _ := ev.last(vault.TokenRenewed); r.Accessor != login.Accessor || r.TTL <= 0 {
		t.Fatalf("renewal event %+v: not the same token", r)
	}
	if ks, _ := st.Status(appKey); ks.LastError != nil || ks.Failures != 0 {
		t.Fatalf("status: %+v", ks)
	}
	noWarnings(t, warn)
}

// The client's own token (no auth method) is looked up and renewed.
func TestTokenAdoptedAndRenewed(t *testing.T) {
	t.Parallel()
	v, root := tokenSetup(t)
	ctx := testCtx(t)
	yes := true
	tok, err := root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{
		Policies: []string{"app"}, TTL: "2s", Renewable: &yes,
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	c, _ := newClient(t, v, tok.Auth.ClientToken)
	src := newSource(t, c, vault.WithTokenEvents(ev.record))
	st, warn := quietStore(t, src)
	if _, err := st.Get(ctx, appKey); err != nil {
		t.Fatal(err)
	}
	adopted, ok := ev.last(vault.TokenAdopted)
	if !ok || adopted.Accessor != tok.Auth.Accessor || adopted.TTL <= 0 || adopted.TTL > 2*time.Second || !adopted.Renewable {
		t.Fatalf("adopted: %+v; events %s", adopted, ev)
	}
	start := time.Now()
	stop := readers(t, st, appKey, "s3cret", true)
	ev.waitCount(t, ctx, vault.TokenRenewed, 3)
	stop()
	if time.Since(start) <= 2*time.Second {
		t.Fatal("renewals came faster than the TTL allows to tell")
	}
	if c.Token() != tok.Auth.ClientToken {
		t.Fatal("the caller's client token changed")
	}
	noWarnings(t, warn)
}

// A token that reaches its maximum TTL is replaced by a new AppRole login;
// the Store never serves an error meanwhile. The login follows the end of
// the token's renewals, or, when a busy machine lets the token expire before
// its watcher says so, the refusal of a read: either way a new token, and no
// failed login.
func TestTokenMaxTTLRelogin(t *testing.T) {
	t.Parallel()
	v, _ := tokenSetup(t)
	method := appRole(t, v, "app", []string{"app"}, 2*time.Second, 4*time.Second)
	ev := newEvents()
	c, _ := newClient(t, v, "")
	src := newSource(t, c, vault.WithAuth(method), vault.WithTokenEvents(ev.record))
	st, warn := quietStore(t, src)
	ctx := testCtx(t)
	if _, err := st.Get(ctx, appKey); err != nil {
		t.Fatal(err)
	}
	stop := readers(t, st, appKey, "s3cret", true)
	ev.waitCount(t, ctx, vault.TokenLoggedIn, 3) // the first login and two after a maximum TTL
	stop()
	if n := ev.count(vault.TokenLoginFailed); n != 0 {
		t.Fatalf("failed logins: %s", ev)
	}
	seen := map[string]bool{}
	ev.mu.Lock()
	for _, e := range ev.evs {
		if e.Kind == vault.TokenLoggedIn {
			if seen[e.Accessor] {
				t.Errorf("a login gave a token seen before")
			}
			seen[e.Accessor] = true
		}
	}
	ev.mu.Unlock()
	noWarnings(t, warn)
}

// Without an auth method, a token that reaches its maximum TTL is used
// until it expires, and then requests fail with ErrPermission.
func TestTokenExpiresWithoutAuth(t *testing.T) {
	t.Parallel()
	v, root := tokenSetup(t)
	ctx := testCtx(t)
	yes := true
	tok, err := root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{
		Policies: []string{"app"}, TTL: "2s", ExplicitMaxTTL: "3s", Renewable: &yes,
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	c, _ := newClient(t, v, tok.Auth.ClientToken)
	src := newSource(t, c, vault.WithTokenEvents(ev.record))
	if _, err := src.Fetch(ctx, "secret/app/db"); err != nil {
		t.Fatal(err)
	}
	ev.waitCount(t, ctx, vault.TokenRenewalEnded, 1)
	// The token expires within a second of the end of renewals; Vault's
	// clock decides when, so ask until it says so.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := src.Fetch(ctx, "secret/app/db")
		if errors.Is(err, secrets.ErrPermission) {
			break
		}
		if err != nil {
			t.Fatalf("Fetch with an expiring token: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the token never expired")
		case <-tick.C:
		}
	}
	if ev.count(vault.TokenLoggedIn) != 0 {
		t.Fatal("a login without an auth method")
	}
}
