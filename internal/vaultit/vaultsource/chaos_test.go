package vaultsource_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

// Sealing the Vault under a serving Store: the last good value is served,
// the status says ErrTransient, the client's retries stay short; after the
// unseal the Store recovers by itself.
func TestChaosSealed(t *testing.T) {
	v, root := tokenSetup(t)
	method := appRole(t, v, "app", []string{"app"}, time.Hour, 2*time.Hour)
	c, _ := newClient(t, v, "")
	src := newSource(t, c, vault.WithAuth(method))
	// A second source, which no Store polls, to count requests.
	pc, reqs := newClient(t, v, "")
	probe := newSource(t, pc, vault.WithAuth(method))
	st, _ := quietStore(t, src, secrets.WithTTL(50*time.Millisecond), secrets.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	ctx := testCtx(t)
	if _, err := st.Get(ctx, appKey); err != nil {
		t.Fatal(err)
	}
	known, err := probe.Fetch(ctx, "secret/app/db")
	if err != nil {
		t.Fatal(err)
	}
	stop := readers(t, st, appKey, "s3cret", false)

	v.Seal(t)
	ks := waitStatus(t, ctx, st, appKey, "a transient failure", func(ks secrets.KeyStatus) bool {
		return errors.Is(ks.LastError, secrets.ErrTransient)
	})
	if !strings.Contains(ks.LastError.Error(), "503") {
		t.Errorf("status error %v does not tell of the 503", ks.LastError)
	}
	// One retry, not the two of the caller's client.
	reqs.take()
	r := probe.FetchIfChanged(ctx, secrets.Request{Key: "secret/app/db", Known: known})
	if !errors.Is(r.Err, secrets.ErrTransient) {
		t.Fatalf("poll of a sealed Vault: %v", r.Err)
	}
	wantRequests(t, "a poll of a sealed Vault", reqs.take(),
		"GET /v1/secret/metadata/app/db", "GET /v1/secret/metadata/app/db")
	if pc.MaxRetries() != 2 {
		t.Fatalf("the caller's client retries %d times now", pc.MaxRetries())
	}
	if got, err := st.Get(ctx, appKey); err != nil || got.Reveal() != "s3cret" {
		t.Fatalf("Get while sealed: %v", err)
	}

	v.Unseal(t)
	waitStatus(t, ctx, st, appKey, "recovery", func(ks secrets.KeyStatus) bool {
		return ks.LastError == nil && ks.Failures == 0
	})
	stop()

	// And it sees rotations again.
	sub := st.Subscribe()
	defer sub.Close()
	put(t, root, "secret", "app/db", map[string]any{"pw": "rotated"})
	for {
		if got, _ := st.Get(ctx, appKey); got.Reveal() == "rotated" {
			break
		}
		if _, err := sub.Next(ctx); err != nil {
			t.Fatalf("no rotation after the unseal: %v", err)
		}
	}
}

// Revoking the source's token: the next request is refused, the source logs
// in again and retries, and neither Get nor Refresh ever fails. Concurrent
// requests refused for one token share one login.
func TestChaosRevoked(t *testing.T) {
	v, root := tokenSetup(t)
	method := appRole(t, v, "app", []string{"app"}, time.Hour, 2*time.Hour)
	ev := newEvents()
	c, _ := newClient(t, v, "")
	src := newSource(t, c, vault.WithAuth(method), vault.WithTokenEvents(ev.record))
	st, warn := quietStore(t, src)
	ctx := testCtx(t)
	if _, err := st.Get(ctx, appKey); err != nil {
		t.Fatal(err)
	}
	first, _ := ev.last(vault.TokenLoggedIn)

	stop := readers(t, st, appKey, "s3cret", true)
	if err := root.Auth().Token().RevokeAccessorWithContext(ctx, first.Accessor); err != nil {
		t.Fatal(err)
	}
	ev.waitCount(t, ctx, vault.TokenLoggedIn, 2)
	stop()
	second, _ := ev.last(vault.TokenLoggedIn)
	if second.Accessor == first.Accessor {
		t.Fatal("logged in to the revoked token")
	}
	noWarnings(t, warn)

	// Eight requests refused at once: one login.
	if err := root.Auth().Token().RevokeAccessorWithContext(ctx, second.Accessor); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := src.Fetch(ctx, "secret/app/db"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Fetch after a revocation: %v", err)
	}
	if n := ev.count(vault.TokenLoggedIn); n != 3 {
		t.Fatalf("%d logins after the second revocation, want 3 in all: %s", n, ev)
	}
}

// A policy that denies the path: ErrPermission, the value is kept, and no
// login is made (the token is fine); restoring the policy restores reads.
func TestChaosPolicyDenies(t *testing.T) {
	v, _ := tokenSetup(t)
	method := appRole(t, v, "app", []string{"app"}, time.Hour, 2*time.Hour)
	ev := newEvents()
	c, _ := newClient(t, v, "")
	src := newSource(t, c, vault.WithAuth(method), vault.WithTokenEvents(ev.record))
	st, _ := quietStore(t, src, secrets.WithTTL(time.Hour))
	ctx := testCtx(t)
	if _, err := st.Get(ctx, appKey); err != nil {
		t.Fatal(err)
	}

	v.WritePolicy(t, "app", `
path "secret/data/app/*"     { capabilities = ["deny"] }
path "secret/metadata/app/*" { capabilities = ["deny"] }
`)
	err := st.Refresh(ctx, appKey)
	if !errors.Is(err, secrets.ErrPermission) {
		t.Fatalf("Refresh under a denying policy: %v", err)
	}
	if !strings.Contains(err.Error(), "secret/metadata/app/db") {
		t.Errorf("the error does not name the refused path: %v", err)
	}
	if got, err := st.Get(ctx, appKey); err != nil || got.Reveal() != "s3cret" {
		t.Fatalf("Get under a denying policy: %v", err)
	}
	if ks, _ := st.Status(appKey); !errors.Is(ks.LastError, secrets.ErrPermission) {
		t.Fatalf("status: %+v", ks)
	}
	if n := ev.count(vault.TokenLoggedIn); n != 1 {
		t.Fatalf("a denial caused a login: %s", ev)
	}

	v.WritePolicy(t, "app", readPolicy("secret", "app/"))
	if err := st.Refresh(ctx, appKey); err != nil {
		t.Fatalf("Refresh after the policy is restored: %v", err)
	}
	if ks, _ := st.Status(appKey); ks.LastError != nil {
		t.Fatalf("status after recovery: %+v", ks)
	}
}
