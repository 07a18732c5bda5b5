package vaultsource_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

const (
	dynKey    = "vault://database/creds/app"
	shortKey  = "vault://database/creds/short"
	dynPrefix = "database/creds/"
)

// dynamicStore returns a Store and its source over e, reading with token,
// both on clk, the source's lease events recorded in the returned log.
func dynamicStore(t *testing.T, e *dbEnv, token string, clk secrets.Clock, opts ...vault.Option) (*secrets.Store, *vault.Source, *leaseLog) {
	t.Helper()
	log := newLeaseLog(clk.Now)
	c, _ := newClient(t, e.v, token)
	src := newSource(t, c, append([]vault.Option{vault.WithClock(clk), vault.WithLeaseEvents(log.record), vault.WithDatabaseMount("database")}, opts...)...)
	st := newStore(t, src, secrets.WithClock(clk), secrets.WithTTL(24*time.Hour), secrets.WithJitter(0))
	return st, src, log
}

// advanceTo moves clk to at once the Store has armed its timer for at, and
// waits for the refresh round that follows to be reported.
func advanceTo(t *testing.T, ctx context.Context, clk *fakeclock.Clock, st *secrets.Store, key string, at time.Time) {
	t.Helper()
	if err := clk.WaitTimerAt(ctx, at); err != nil {
		t.Fatalf("waiting for the Store to plan a refresh at %s: %v", at.Format(time.TimeOnly), err)
	}
	before, _ := st.Status(key)
	clk.Advance(at.Sub(clk.Now()))
	waitStatus(t, ctx, st, key, "the refresh at "+at.Format(time.TimeOnly), func(ks secrets.KeyStatus) bool {
		return ks.FetchedAt.After(before.FetchedAt) || ks.Failures > before.Failures
	})
}

// The schedule a dynamic role's lease gives the Store, on the test's clock:
// the Store refreshes at two thirds of each lease term. A renewable lease is
// renewed there and the pair kept.
func TestDatabaseDynamicSchedule(t *testing.T) {
	e := startDB(t)
	e.v.DynamicRole(t, "database", "app", "pg", time.Hour, 3*time.Hour)
	ctx := testCtx(t)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := fakeclock.New(t0)
	st, _, log := dynamicStore(t, e, e.appToken(t, false), clk)
	term := 40 * time.Minute // two thirds of the hour Vault grants

	first, err := st.Get(ctx, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.loginAs(ctx, pairOf(t, first)); err != nil {
		t.Fatalf("the pair does not log in: %v", err)
	}
	for i := 1; i <= 2; i++ {
		due := t0.Add(time.Duration(i) * term)
		if ks, _ := st.Status(dynKey); !ks.NextRefresh.Equal(due) {
			t.Fatalf("next refresh at %s, want %s: two thirds of the lease term", ks.NextRefresh.Format(time.TimeOnly), due.Format(time.TimeOnly))
		}
		advanceTo(t, ctx, clk, st, dynKey, due)
		if n := log.count(vault.LeaseRenewed); n != i {
			t.Fatalf("lease events %s, want %d renewals", log, i)
		}
		if got, _ := st.Get(ctx, dynKey); got.Version() != first.Version() {
			t.Fatal("a renewal changed the pair")
		}
	}
	if n := len(e.leases(t, dynPrefix+"app")); n != 1 {
		t.Fatalf("%d leases of database/creds/app in Vault, want 1", n)
	}
	if log.count(vault.LeaseCreated) != 1 {
		t.Fatalf("lease events %s, want one pair read", log)
	}
}

// A lease that cannot be renewed (here the token's policy lacks
// sys/leases/renew; the role's max_ttl has the same effect) is replaced at
// two thirds of its term by a new pair, and the old pair is served as
// Versions.Previous until its lease ends; then it is dropped.
func TestDatabaseDynamicReplaceAndPrevious(t *testing.T) {
	e := startDB(t)
	e.v.DynamicRole(t, "database", "app", "pg", time.Hour, 3*time.Hour)
	ctx := testCtx(t)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := fakeclock.New(t0)
	st, _, log := dynamicStore(t, e, e.noRenewToken(t), clk)
	sub := st.Subscribe()
	defer sub.Close()

	a, err := st.Get(ctx, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	advanceTo(t, ctx, clk, st, dynKey, t0.Add(40*time.Minute))
	v, err := st.Versions(ctx, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Current.Version() == a.Version() || v.Previous.Version() != a.Version() {
		t.Fatalf("current %s previous %s; want a new pair, and %s as previous; events %s", v.Current.Version(), v.Previous.Version(), a.Version(), log)
	}
	for _, s := range []secrets.Secret{v.Current, v.Previous} {
		if err := e.loginAs(ctx, pairOf(t, s)); err != nil {
			t.Fatalf("pair %s does not log in: %v", s.Version(), err)
		}
	}
	if pairOf(t, v.Current).Username == pairOf(t, v.Previous).Username {
		t.Fatal("the new pair has the old username")
	}
	if n := len(e.leases(t, dynPrefix+"app")); n != 2 {
		t.Fatalf("%d leases of database/creds/app in Vault, want 2", n)
	}
	if changes, _ := sub.Next(ctx); len(changes) != 1 || changes[0].OldVersion != a.Version() || changes[0].NewVersion != v.Current.Version() {
		t.Fatalf("changes %+v, want %s to move from %s to %s", changes, dynKey, a.Version(), v.Current.Version())
	}

	// The old lease ends at t0+1h, before the new pair's two thirds (t0+1h20):
	// the Store comes back then, and stops serving it as previous.
	ks, _ := st.Status(dynKey)
	if want := t0.Add(time.Hour); !ks.NextRefresh.Equal(want) {
		t.Fatalf("next refresh at %s, want %s: the end of the previous pair's lease", ks.NextRefresh.Format(time.TimeOnly), want.Format(time.TimeOnly))
	}
	advanceTo(t, ctx, clk, st, dynKey, t0.Add(time.Hour))
	v2, _ := st.Versions(ctx, dynKey)
	if v2.Current.Version() != v.Current.Version() || !v2.Previous.IsZero() {
		t.Fatalf("after the old lease's end: current %s previous %q; want %s and none", v2.Current.Version(), v2.Previous.Version(), v.Current.Version())
	}
	// The poll at the old lease's end looked the new one up, which the
	// policy denies too: the new lease is marked as ending.
	if log.count(vault.LeaseExpired) != 1 || log.count(vault.LeaseEnding) != 2 || log.count(vault.LeaseCreated) != 2 {
		t.Fatalf("lease events %s; want two pairs read, both leases ending, one expired", log)
	}
	if ks, _ := st.Status(dynKey); !ks.NextRefresh.Equal(t0.Add(80 * time.Minute)) {
		t.Fatalf("next refresh at %s, want 10:20:00, the new pair's two thirds", ks.NextRefresh.Format(time.TimeOnly))
	}
}

// TestDatabaseDynamicRevokeOnClose checks Close: without WithRevokeOnClose the
// leases (and their database users) outlive the source; with it, Close
// revokes every lease the source read that has not ended, and the users are
// dropped.
func TestDatabaseDynamicRevokeOnClose(t *testing.T) {
	e := startDB(t)
	e.v.DynamicRole(t, "database", "app", "pg", time.Hour, 3*time.Hour)
	ctx := testCtx(t)

	for _, revoke := range []bool{false, true} {
		t.Run(fmt.Sprintf("revoke=%v", revoke), func(t *testing.T) {
			clk := fakeclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			log := newLeaseLog(clk.Now)
			// A token that may not renew: each fetch at a quarter of a
			// lease (so that none ends on the test's clock) reads a new
			// pair.
			c, _ := newClient(t, e.v, e.noRenewToken(t))
			opts := []vault.Option{vault.WithClock(clk), vault.WithLeaseEvents(log.record), vault.WithLeaseFraction(0.25)}
			if revoke {
				opts = append(opts, vault.WithRevokeOnClose())
			}
			src, err := vault.New(c, opts...)
			if err != nil {
				t.Fatal(err)
			}
			before := len(e.leases(t, dynPrefix+"app"))
			var users []string
			for i := 0; i < 3; i++ {
				v, err := src.Fetch(ctx, "database/creds/app")
				if err != nil {
					t.Fatal(err)
				}
				users = append(users, pairOf(t, v.Current).Username)
				clk.Advance(15 * time.Minute)
			}
			if n := len(e.leases(t, dynPrefix+"app")) - before; n != 3 {
				t.Fatalf("%d new leases in Vault, want 3", n)
			}
			if err := src.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			left := len(e.leases(t, dynPrefix+"app")) - before
			for _, u := range users {
				if e.roleExists(t, u) == revoke {
					t.Fatalf("user %s: exists %v after Close", u, revoke)
				}
			}
			if revoke && (left != 0 || log.count(vault.LeaseRevoked) != 3) {
				t.Fatalf("%d leases left after Close, events %s; want none left, three revoked", left, log)
			}
			if !revoke && left != 3 {
				t.Fatalf("%d leases left after Close, want all 3: revocation is off by default", left)
			}
			if _, err := src.Fetch(ctx, "database/creds/app"); !errors.Is(err, secrets.ErrClosed) {
				t.Fatalf("Fetch after Close: %v, want ErrClosed", err)
			}
		})
	}
}
