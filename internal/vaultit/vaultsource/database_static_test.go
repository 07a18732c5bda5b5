package vaultsource_test

import (
	"encoding/json"
	"maps"
	"slices"
	"sync/atomic"
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

// Vault rotates a static role on its own schedule (rotation_period 5s, the
// least Vault takes) while the Store's TTL is an hour: the Store follows each
// rotation because the source asks to be read again just after the time
// Vault announced (ttl), and each new password logs in.
func TestDatabaseStaticFollowsVaultSchedule(t *testing.T) {
	e := staticSetup(t, 5*time.Second)
	ctx := testCtx(t)
	c, _ := newClient(t, e.v, e.appToken(t, false))
	src := newSource(t, c, vault.WithDatabaseMount("database"))
	st := newStore(t, src, secrets.WithTTL(time.Hour))
	sub := st.Subscribe()
	defer sub.Close()
	first, err := st.Get(ctx, staticKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("static role, rotation_period 5s, Store TTL 1h: first version %s", first.Version())
	for seen := 0; seen < 2; {
		changes, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the Store to follow Vault's rotation: %v", err)
		}
		at := time.Now()
		for _, ch := range changes {
			if ch.Key != staticKey {
				continue
			}
			seen++
			rotated, err := time.Parse(time.RFC3339Nano, ch.NewVersion)
			if err != nil {
				t.Fatalf("version %q is not the time of a rotation: %v", ch.NewVersion, err)
			}
			t.Logf("Vault rotated at %s; the Store served it %v later", rotated.Format("15:04:05.000"), at.Sub(rotated).Round(10*time.Millisecond))
			got, err := st.Get(ctx, staticKey)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version() == ch.NewVersion {
				if err := e.loginAs(ctx, pairOf(t, got)); err != nil {
					t.Fatalf("the rotated pair does not log in: %v", err)
				}
			}
		}
	}
}

// Vault rotates a static role on request (database/rotate-role) while a pool
// logs in with it under load: the password changes with no overlap, a login
// with the old one fails, and secrets.Call refreshes the key and retries,
// so no call fails. The Store's TTL is an hour: it learns of each rotation
// from the failure.
func TestDatabaseStaticRotateUnderLoad(t *testing.T) {
	e := staticSetup(t, time.Hour)
	ctx := testCtx(t)
	c, _ := newClient(t, e.v, e.appToken(t, false))
	src := newSource(t, c)
	var retries atomic.Int64
	st := newStore(t, src, secrets.WithTTL(time.Hour), secrets.WithValidator(e.canLogIn, staticKey),
		secrets.WithObserver(secrets.Observer{AuthRetry: func(secrets.AuthRetryEvent) { retries.Add(1) }}))
	sub := st.Subscribe()
	defer sub.Close()
	if _, err := st.Get(ctx, staticKey); err != nil {
		t.Fatal(err)
	}
	pool := newPool(t, ctx, e, st, staticKey, 100*time.Millisecond)
	l := newLoad()
	stop := l.run(ctx, st, pool, staticKey, 4)
	defer pool.Close()
	if err := l.waitCalls(ctx, 100); err != nil {
		stop()
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		at := time.Now()
		if _, err := e.root.Logical().Write("database/rotate-role/fixed", nil); err != nil {
			stop()
			t.Fatal(err)
		}
		rotated, _ := e.staticRotation(t, "fixed")
		for {
			got, err := st.Get(ctx, staticKey)
			if err == nil && got.Version() == rotated {
				break
			}
			select {
			case <-ctx.Done():
				stop()
				t.Fatalf("rotation %d: the Store did not follow: %v", i, ctx.Err())
			case <-sub.Ready():
				sub.Changes()
			}
		}
		followed := time.Since(at)
		// Calls go on with the new password.
		if err := l.waitCalls(ctx, l.calls.Load()+100); err != nil {
			stop()
			t.Fatal(err)
		}
		t.Logf("rotation %d (rotate-role): the Store served the new password %v after the request", i, followed.Round(10*time.Millisecond))
	}
	stop()
	t.Logf("calls %d, failed %d, calls that met a rejected password and were retried %d", l.calls.Load(), l.failed.Load(), retries.Load())
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d of %d calls failed: %v", n, l.calls.Load(), l.errs)
	}
	if retries.Load() == 0 {
		t.Error("no call met the old password: the pool did not log in during the rotations")
	}
}
