package vaultsource_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

const staticKey = "vault://database/static-creds/fixed"

// staticSetup makes the PostgreSQL role "fixed" and Vault's static role of
// the same name over it, rotated every period.
func staticSetup(t *testing.T, period time.Duration) *dbEnv {
	t.Helper()
	e := startDB(t)
	e.superExec(t, `CREATE ROLE fixed LOGIN PASSWORD 'set-by-hand'`, `GRANT fixed TO `+vaultAdmin+` WITH ADMIN OPTION`)
	e.v.StaticRole(t, "database", "fixed", "pg", "fixed", period)
	return e
}

// A static role read through a Store: the value is the JSON pair, its
// fields are served by name, its version is the time of the last rotation,
// and the Store plans its next refresh just after the rotation Vault
// announces (ttl), well before its own TTL. When that time comes (the test's
// clock moves there), the Store reads the role again and serves the pair
// Vault rotated to meanwhile.
func TestDatabaseStaticRoleSchedule(t *testing.T) {
	e := staticSetup(t, time.Hour)
	ctx := testCtx(t)
	clk := fakeclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	c, _ := newClient(t, e.v, e.appToken(t, false))
	src := newSource(t, c, vault.WithClock(clk)) // the mount is detected: no WithDatabaseMount
	st := newStore(t, src, secrets.WithClock(clk), secrets.WithTTL(24*time.Hour), secrets.WithJitter(0))

	whole, err := st.Get(ctx, staticKey)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(whole.Bytes(), &fields); err != nil {
		t.Fatal(err)
	}
	if names := slices.Sorted(maps.Keys(fields)); !slices.Equal(names, []string{"password", "username"}) {
		t.Fatalf("the value's fields are %v, want password and username only", names)
	}
	user, err := st.Get(ctx, staticKey+"#username")
	if err != nil || user.Reveal() != "fixed" {
		t.Fatalf("#username = %v, %v; want fixed", user, err)
	}
	pw, err := st.Get(ctx, staticKey+"#password")
	if err != nil {
		t.Fatal(err)
	}
	last, vaultPW := e.staticRotation(t, "fixed")
	if pw.Reveal() != vaultPW || pw.Reveal() == "set-by-hand" {
		t.Fatal("#password is not the password Vault set")
	}
	if whole.Version() != last {
		t.Fatalf("version %q, want the last rotation %q", whole.Version(), last)
	}
	if err := e.loginAs(ctx, pairOf(t, whole)); err != nil {
		t.Fatalf("the pair does not log in: %v", err)
	}

	ks, _ := st.Status(staticKey)
	ahead := ks.NextRefresh.Sub(clk.Now())
	t.Logf("static role, rotation_period 1h: fetched at %s, next refresh at %s (+%v), Store TTL 24h",
		clk.Now().Format(time.TimeOnly), ks.NextRefresh.Format(time.TimeOnly), ahead)
	if ahead < 59*time.Minute || ahead > time.Hour+time.Second {
		t.Fatalf("next refresh %v ahead, want just after the rotation Vault announced, an hour ahead", ahead)
	}

	// Vault rotates (here on request: the role's own schedule is an hour
	// away in Vault's time); the Store does not ask before its time.
	if _, err := e.root.Logical().Write("database/rotate-role/fixed", nil); err != nil {
		t.Fatal(err)
	}
	rotated, _ := e.staticRotation(t, "fixed")
	if got, _ := st.Get(ctx, staticKey); got.Version() != last {
		t.Fatal("the Store read the role before its refresh time")
	}
	sub := st.Subscribe()
	defer sub.Close()
	if err := clk.WaitTimerAt(ctx, ks.NextRefresh); err != nil {
		t.Fatal(err)
	}
	clk.Advance(ahead)
	changes, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(changes, func(c secrets.Change) bool { return c.Key == staticKey && c.NewVersion == rotated }) {
		t.Fatalf("changes %+v, want %s to move to %s", changes, staticKey, rotated)
	}
	now, err := st.Get(ctx, staticKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.loginAs(ctx, pairOf(t, now)); err != nil {
		t.Fatalf("the rotated pair does not log in: %v", err)
	}
	if err := e.loginAs(ctx, pairOf(t, whole)); err == nil {
		t.Fatal("the pair from before the rotation still logs in")
	}
	v, _ := st.Versions(ctx, staticKey)
	if !v.Previous.IsZero() {
		t.Fatal("a static role has a previous version: Vault keeps no overlap")
	}
	ks, _ = st.Status(staticKey)
	if ahead := ks.NextRefresh.Sub(clk.Now()); ahead < 59*time.Minute || ahead > time.Hour+time.Second {
		t.Fatalf("after the rotation, next refresh %v ahead, want an hour", ahead)
	}
}
