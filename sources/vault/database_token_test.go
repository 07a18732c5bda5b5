package vault

import (
	"context"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
)

// A pair replaced because a new login replaced its token is served as
// previous only until that token expires: Vault revokes the token's leases
// then, whatever their own TTL.
func TestDatabasePreviousEndsWithItsToken(t *testing.T) {
	f, srv := newFakeDB(t)
	f.tokenTTL["t1"] = 10
	f.rejectOn["database/creds/other"] = "t1"
	t0 := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	clk := fakeclock.New(t0)
	s, err := New(newClient(t, srv.URL, ""), WithAuth(f), WithDatabaseMount("database"), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Fetch(ctx, "database/creds/app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(ctx, "database/creds/other"); err != nil { // t1 refused: a new login
		t.Fatal(err)
	}
	v, err := s.Fetch(ctx, "database/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if v.Previous.IsZero() {
		t.Fatal("no previous pair while its token lives")
	}
	if v.RefreshBy.After(t0.Add(10 * time.Second)) {
		t.Errorf("RefreshBy %s, after the old token expires at %s", v.RefreshBy, t0.Add(10*time.Second))
	}
	clk.Advance(11 * time.Second)
	v, err = s.Fetch(ctx, "database/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Previous.IsZero() {
		t.Errorf("previous pair served after its token expired")
	}
}

// A pair whose old token Vault no longer accepts is not served as previous.
func TestDatabasePreviousGoneWithItsToken(t *testing.T) {
	f, srv := newFakeDB(t)
	f.rejectOn["database/creds/other"] = "t1"
	s, err := New(newClient(t, srv.URL, ""), WithAuth(f), WithDatabaseMount("database"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Fetch(ctx, "database/creds/app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(ctx, "database/creds/other"); err != nil { // t1 refused: a new login
		t.Fatal(err)
	}
	f.mu.Lock()
	f.rejectOn["auth/token/lookup-self"] = "t1" // expired between the lease's lookup and its own
	f.mu.Unlock()
	v, err := s.Fetch(ctx, "database/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Previous.IsZero() {
		t.Errorf("previous pair served though its token is gone")
	}
	if n := f.readsOf("database/creds/app"); n != 2 {
		t.Errorf("%d pairs read, want 2", n)
	}
}

// A policy that denies the old token lookup-self leaves the replaced pair
// previous until its lease ends.
func TestDatabasePreviousKeptWithoutLookupSelf(t *testing.T) {
	f, srv := newFakeDB(t)
	f.rejectOn["database/creds/other"] = "t1"
	f.denyOn["auth/token/lookup-self"] = "t1"
	s, err := New(newClient(t, srv.URL, ""), WithAuth(f), WithDatabaseMount("database"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Fetch(ctx, "database/creds/app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(ctx, "database/creds/other"); err != nil { // t1 refused: a new login
		t.Fatal(err)
	}
	v, err := s.Fetch(ctx, "database/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if v.Previous.IsZero() || v.Previous.Version() == v.Current.Version() {
		t.Errorf("previous %q, current %q: want the replaced pair", v.Previous.Version(), v.Current.Version())
	}
}
