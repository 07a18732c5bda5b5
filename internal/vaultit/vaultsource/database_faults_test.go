package vaultsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

// callAs runs one secrets.Call that logs in with the pair the Store serves
// for key, as a pool's BeforeConnect would, retrying once after an
// authentication failure.
func (e *dbEnv) callAs(ctx context.Context, st *secrets.Store, key string) error {
	return secrets.Call(ctx, st, func(ctx context.Context) error {
		s, err := secrets.ViewFrom(ctx, st).Get(ctx, key)
		if err != nil {
			return err
		}
		var p pair
		if err := json.Unmarshal(s.Bytes(), &p); err != nil {
			return err
		}
		return e.loginAs(ctx, p)
	}, secrets.RetryOn(secrets.IsPostgresAuthError))
}

// Vault sealed when a lease is due for renewal: the refresh fails with
// secrets.ErrTransient, the Store keeps serving the pair, which still logs
// in; once Vault is unsealed, the retry renews the same lease.
func TestDatabaseSealedDuringRenewal(t *testing.T) {
	e := startDB(t)
	e.v.DynamicRole(t, "database", "app", "pg", time.Hour, 3*time.Hour)
	ctx := testCtx(t)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := fakeclock.New(t0)
	st, _, log := dynamicStore(t, e, e.appToken(t, false), clk)
	a, err := st.Get(ctx, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	p := pairOf(t, a)

	e.v.Seal(t)
	advanceTo(t, ctx, clk, st, dynKey, t0.Add(40*time.Minute))
	ks, _ := st.Status(dynKey)
	if !errors.Is(ks.LastError, secrets.ErrTransient) || ks.Failures != 1 {
		t.Fatalf("status after the renewal met a sealed Vault: failures %d, error %v; want one, ErrTransient", ks.Failures, ks.LastError)
	}
	noSecretIn(t, ks.LastError, p.Password, p.Username)
	t.Logf("renewal while sealed: %v", ks.LastError)
	got, err := st.Get(ctx, dynKey)
	if err != nil || got.Version() != a.Version() {
		t.Fatalf("Get while sealed: %v, version %s; want the last good pair", err, got.Version())
	}
	if err := e.loginAs(ctx, p); err != nil {
		t.Fatalf("the last good pair does not log in while Vault is sealed: %v", err)
	}

	e.v.Unseal(t)
	advanceTo(t, ctx, clk, st, dynKey, ks.NextRefresh)
	ks, _ = st.Status(dynKey)
	if ks.LastError != nil || ks.Version != a.Version() {
		t.Fatalf("after the unseal: error %v, version %s; want the same pair, renewed", ks.LastError, ks.Version)
	}
	if log.count(vault.LeaseRenewed) != 1 || log.count(vault.LeaseCreated) != 1 {
		t.Fatalf("lease events %s; want the one lease, renewed once", log)
	}
}

// A lease revoked from outside (vault lease revoke): Vault drops its user,
// a call meets the refused login, and the refresh it forces finds the lease
// gone and reads a new pair; the call succeeds on its retry. The lost pair
// is not kept as previous.
func TestDatabaseLeaseRevokedFromOutside(t *testing.T) {
	e := startDB(t)
	e.v.DynamicRole(t, "database", "app", "pg", time.Hour, 3*time.Hour)
	ctx := testCtx(t)
	clk := fakeclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	st, _, log := dynamicStore(t, e, e.appToken(t, false), clk)
	a, err := st.Get(ctx, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.root.Sys().RevokePrefix("database/creds/app"); err != nil {
		t.Fatal(err)
	}
	if err := e.loginAs(ctx, pairOf(t, a)); err == nil {
		t.Fatal("the revoked pair still logs in")
	}
	if err := e.callAs(ctx, st, dynKey); err != nil {
		t.Fatalf("a call after the revocation failed: %v; lease events %s", err, log)
	}
	v, _ := st.Versions(ctx, dynKey)
	if v.Current.Version() == a.Version() || !v.Previous.IsZero() {
		t.Fatalf("current %s previous %q; want a new pair and no previous", v.Current.Version(), v.Previous.Version())
	}
	if log.count(vault.LeaseLost) != 1 || log.count(vault.LeaseCreated) != 2 {
		t.Fatalf("lease events %s; want the lease lost and a second pair read", log)
	}
	if n := len(e.leases(t, dynPrefix+"app")); n != 1 {
		t.Fatalf("%d leases in Vault, want 1", n)
	}
}

// The token that read a pair is revoked from outside: Vault revokes the
// token's leases with it, and the pair's user is dropped. The next request
// meets the invalid token, the source logs in again, finds the lease gone
// and reads a new pair with the new token.
func TestDatabaseTokenRevoked(t *testing.T) {
	e := startDB(t)
	e.v.DynamicRole(t, "database", "app", "pg", time.Hour, 3*time.Hour)
	e.v.WritePolicy(t, "db-app", dbAppPolicy)
	ctx := testCtx(t)
	method := appRole(t, e.v, "db-consumer", []string{"db-app"}, time.Hour, 2*time.Hour)
	tokens := newEvents()
	log := newLeaseLog(time.Now)
	c, _ := newClient(t, e.v, "")
	src := newSource(t, c, vault.WithAuth(method), vault.WithTokenEvents(tokens.record), vault.WithLeaseEvents(log.record))
	st := newStore(t, src, secrets.WithTTL(time.Hour))
	a, err := st.Get(ctx, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	login, ok := tokens.last(vault.TokenLoggedIn)
	if !ok {
		t.Fatalf("no login: %s", tokens)
	}
	if _, err := e.root.Logical().Write("auth/token/revoke-accessor", map[string]any{"accessor": login.Accessor}); err != nil {
		t.Fatal(err)
	}
	// Vault revokes a revoked token's leases in the background.
	waitFor(t, ctx, "Vault to revoke the token's lease", func() bool { return len(e.leases(t, dynPrefix+"app")) == 0 })
	if e.roleExists(t, pairOf(t, a).Username) {
		t.Fatal("the user of the revoked token's lease still exists")
	}
	if err := e.callAs(ctx, st, dynKey); err != nil {
		t.Fatalf("a call after the token's revocation failed: %v; token events %s; lease events %s", err, tokens, log)
	}
	b, _ := st.Get(ctx, dynKey)
	if b.Version() == a.Version() || tokens.count(vault.TokenLoggedIn) != 2 || log.count(vault.LeaseLost) != 1 {
		t.Fatalf("version %s; token events %s; lease events %s; want a new pair after a second login and the lease lost", b.Version(), tokens, log)
	}
}

// The role deleted in Vault: the pair it gave keeps being served while its
// lease lives, and works; its renewal fails with a typed error; a new read
// of the role is not found. A static role deleted: the refresh is not found,
// and the last password, which Vault no longer changes, is served.
func TestDatabaseRoleDeleted(t *testing.T) {
	e := staticSetup(t, time.Hour)
	e.v.DynamicRole(t, "database", "app", "pg", time.Hour, 3*time.Hour)
	ctx := testCtx(t)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := fakeclock.New(t0)
	st, src, _ := dynamicStore(t, e, e.appToken(t, false), clk)
	a, err := st.Get(ctx, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.Get(ctx, staticKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"database/roles/app", "database/static-roles/fixed"} {
		if _, err := e.root.Logical().Delete(p); err != nil {
			t.Fatal(err)
		}
	}

	if err := st.Refresh(ctx, dynKey); err != nil {
		t.Fatalf("Refresh while the lease lives: %v", err)
	}
	advanceTo(t, ctx, clk, st, dynKey, t0.Add(40*time.Minute))
	ks, _ := st.Status(dynKey)
	if !errors.Is(ks.LastError, secrets.ErrNotFound) {
		t.Fatalf("renewal after the role's deletion: %v; want ErrNotFound", ks.LastError)
	}
	t.Logf("renewal of a deleted role's lease: %s: %v", classOf(ks.LastError), ks.LastError)
	if got, err := st.Get(ctx, dynKey); err != nil || got.Version() != a.Version() {
		t.Fatalf("Get: %v, version %s; want the last good pair", err, got.Version())
	}
	if err := e.loginAs(ctx, pairOf(t, a)); err != nil {
		t.Fatalf("the last good pair does not log in: %v", err)
	}
	_, err = src.Fetch(ctx, "database/creds/other")
	if !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Fetch of a role that does not exist: %v, want ErrNotFound", err)
	}

	err = st.Refresh(ctx, staticKey)
	if !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Refresh of a deleted static role: %v, want ErrNotFound", err)
	}
	noSecretIn(t, err, pairOf(t, s).Password)
	if got, err := st.Get(ctx, staticKey); err != nil || got.Version() != s.Version() {
		t.Fatalf("Get of the deleted static role: %v; want the last good pair", err)
	}
	if err := e.loginAs(ctx, pairOf(t, s)); err != nil {
		t.Fatalf("the static role's last password does not log in: %v", err)
	}
}

// The database refusing new users (Vault's own role there lost CREATEROLE):
// reading a new pair fails with a typed error that holds no credential, and
// so does renewing the lease of the pair served, which the Store keeps
// serving while it works.
func TestDatabaseRefusesNewUsers(t *testing.T) {
	e := startDB(t)
	e.v.DynamicRole(t, "database", "app", "pg", time.Hour, 3*time.Hour)
	e.v.DynamicRole(t, "database", "other", "pg", time.Hour, 3*time.Hour)
	ctx := testCtx(t)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := fakeclock.New(t0)
	st, src, log := dynamicStore(t, e, e.appToken(t, false), clk)
	a, err := st.Get(ctx, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	p := pairOf(t, a)
	e.superExec(t, `ALTER ROLE `+vaultAdmin+` NOCREATEROLE`)

	// Through the source, not the Store: a key whose first load failed
	// would have the Store retry it, and its one timer would be set for
	// that retry rather than for the renewal below.
	_, err = src.Fetch(ctx, "database/creds/other?field=password")
	if !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("a new pair with the database refusing: %v; want ErrTransient", err)
	}
	noSecretIn(t, err, p.Password, p.Username)
	t.Logf("new pair refused: %s: %v", classOf(err), err)

	advanceTo(t, ctx, clk, st, dynKey, t0.Add(40*time.Minute))
	ks, _ := st.Status(dynKey)
	if !errors.Is(ks.LastError, secrets.ErrTransient) {
		t.Fatalf("renewal with the database refusing: %v; want ErrTransient", ks.LastError)
	}
	noSecretIn(t, ks.LastError, p.Password, p.Username)
	t.Logf("renewal refused: %s: %v", classOf(ks.LastError), ks.LastError)
	if got, err := st.Get(ctx, dynKey); err != nil || got.Version() != a.Version() {
		t.Fatalf("Get: %v; want the last good pair", err)
	}
	if err := e.loginAs(ctx, p); err != nil {
		t.Fatalf("the last good pair does not log in: %v", err)
	}
	if log.count(vault.LeaseCreated) != 1 {
		t.Fatalf("lease events %s; want the one pair", log)
	}
	if n := len(e.leases(t, dynPrefix+"other")); n != 0 {
		t.Fatalf("%d leases of a refused role in Vault", n)
	}
}

// Keys and calls that are wrong: typed errors, no value in them, nothing
// written.
func TestDatabaseBadInput(t *testing.T) {
	e := staticSetup(t, time.Hour)
	e.v.DynamicRole(t, "database", "app", "pg", time.Hour, 3*time.Hour)
	ctx := testCtx(t)
	c, _ := newClient(t, e.v, e.appToken(t, false))
	src := newSource(t, c)
	s, err := src.Fetch(ctx, "database/static-creds/fixed")
	if err != nil {
		t.Fatal(err)
	}
	secret := pairOf(t, s.Current).Password
	for key, want := range map[string]error{
		"database/creds":                     secrets.ErrInvalid,
		"database/creds/app/extra":           secrets.ErrInvalid,
		"database/roles/app":                 secrets.ErrInvalid,
		"database/static-creds/":             secrets.ErrInvalid,
		"database/creds/app?field=nope":      secrets.ErrInvalid,
		"database/static-creds/fixed?x=1":    secrets.ErrInvalid,
		"database/creds/missing":             secrets.ErrNotFound,
		"database/static-creds/missing":      secrets.ErrNotFound,
		"database/static-creds/fixed?field=": secrets.ErrInvalid,
	} {
		_, err := src.Fetch(ctx, key)
		if !errors.Is(err, want) {
			t.Errorf("Fetch(%q): %v, want %v", key, err, want)
		}
		noSecretIn(t, err, secret)
	}
	if v, err := src.Fetch(ctx, "database/static-creds/fixed?field=username"); err != nil || v.Current.Reveal() != "fixed" {
		t.Errorf("?field=username: %v", err)
	}

	_, err = src.Stage(ctx, "database/static-creds/fixed", secrets.StageRequest{Current: s.Current.Version(), Value: []byte(`{"password":"x","username":"fixed"}`)})
	if !errors.Is(err, secrets.ErrInvalid) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Stage on a static role: %v, want ErrInvalid and ErrUnsupported", err)
	}
	if r, err := src.LoadRotation(ctx, "database/creds/app"); err != nil || r.Revision != "" {
		t.Errorf("LoadRotation of a dynamic role: %+v, %v; want none", r, err)
	}
	if last, _ := e.staticRotation(t, "fixed"); last != s.Current.Version() {
		t.Error("a refused write changed the static role")
	}

	// A token whose policy does not reach the engine.
	e.v.WritePolicy(t, "nothing", `path "secret/data/none" { capabilities = ["read"] }`)
	c2, _ := newClient(t, e.v, tokenWith(t, e.root, "nothing"))
	denied := newSource(t, c2, vault.WithDatabaseMount("database"))
	for _, key := range []string{"database/creds/app", "database/static-creds/fixed"} {
		if _, err := denied.Fetch(ctx, key); !errors.Is(err, secrets.ErrPermission) {
			t.Errorf("Fetch(%q) denied by policy: %v, want ErrPermission", key, err)
		}
	}
	// Detecting the mount needs a capability under it, as for KV.
	undetected := newSource(t, c2)
	if _, err := undetected.Fetch(ctx, "database/creds/app"); !errors.Is(err, secrets.ErrPermission) {
		t.Errorf("Fetch with no access to the mount: %v, want ErrPermission", err)
	}
	var re *api.ResponseError
	if _, err := denied.Fetch(ctx, "database/creds/app"); !errors.As(err, &re) {
		t.Errorf("a refusal does not carry Vault's response: %v", err)
	}
}

// The source's token reaches its maximum TTL and the source logs in again:
// the leases the old token read end with it, so the next refresh reads a new
// pair with the new token, and serves the old one as previous only while
// the old token lives.
func TestDatabaseNewLoginReplacesPair(t *testing.T) {
	e := startDB(t)
	e.v.DynamicRole(t, "database", "app", "pg", time.Hour, 3*time.Hour)
	e.v.WritePolicy(t, "db-app", dbAppPolicy)
	ctx := testCtx(t)
	method := appRole(t, e.v, "db-short", []string{"db-app"}, 2*time.Second, 4*time.Second)
	tokens := newEvents()
	log := newLeaseLog(time.Now)
	c, _ := newClient(t, e.v, "")
	src := newSource(t, c, vault.WithAuth(method), vault.WithTokenEvents(tokens.record), vault.WithLeaseEvents(log.record))
	st := newStore(t, src, secrets.WithTTL(time.Hour))
	a, err := st.Get(ctx, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	tokens.waitCount(t, ctx, vault.TokenLoggedIn, 2)
	// The event comes just before the new token is put in use.
	waitFor(t, ctx, "a refresh to read a new pair", func() bool {
		if err := st.Refresh(ctx, dynKey); err != nil {
			t.Fatalf("Refresh after the new login: %v", err)
		}
		got, _ := st.Get(ctx, dynKey)
		return got.Version() != a.Version()
	})
	v, _ := st.Versions(ctx, dynKey)
	// The source logs in every few seconds here, so more than one new
	// pair may have come by now; each came from a lease ending, or lost
	// when its token (which has little left when the source logs in
	// again) expired before the refresh looked. The pair replaced is
	// previous for the rest of its token's life at most, so it may be gone
	// already.
	if !v.Previous.IsZero() && v.Previous.Version() == v.Current.Version() {
		t.Fatalf("previous %q is the current pair", v.Previous.Version())
	}
	if n := log.count(vault.LeaseCreated); n < 2 || log.count(vault.LeaseEnding)+log.count(vault.LeaseLost) != n-1 {
		t.Fatalf("lease events %s; want each lease but the last ending or lost", log)
	}
	if err := e.loginAs(ctx, pairOf(t, v.Current)); err != nil {
		t.Fatalf("the new pair does not log in: %v", err)
	}
}
