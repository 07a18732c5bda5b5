package secrets_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rotorhq/rotor/secrets"
)

// TestRefreshCutShortByCloseSaysClosed: a Refresh whose fetch is in flight
// when the Store closes must not report success.
func TestRefreshCutShortByCloseSaysClosed(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", "v1")
	f.get("k")
	release := f.src.hold("k")
	defer release()
	done := make(chan error, 1)
	go func() { done <- f.store.Refresh(context.Background(), "k") }()
	f.src.waitFetches(t, "k", 2)
	f.store.Close()
	if err := <-done; !errors.Is(err, secrets.ErrClosed) {
		t.Fatalf("Refresh: %v, want ErrClosed", err)
	}
}

// TestAuthFailuresShareAForcedRefreshInFlight: a second authentication
// failure while the first one's forced refresh is under way must wait for
// it and retry with the new credential, not give up on the spot.
func TestAuthFailuresShareAForcedRefreshInFlight(t *testing.T) {
	f := newFixture(t)
	f.src.Set("api", "old")
	f.get("api")
	f.src.Set("api", "new")
	release := f.src.hold("api")
	defer release()

	handler := func(ctx context.Context, _ struct{}, _ struct{}) (struct{}, string, error) {
		cred, err := secrets.ViewFrom(ctx, f.store).Get(ctx, "api")
		if err != nil {
			return struct{}{}, "", err
		}
		if cred.Reveal() != "new" {
			return struct{}{}, "", &secrets.StatusError{Code: 401, Status: "401 Unauthorized"}
		}
		return struct{}{}, cred.Reveal(), nil
	}
	call := secrets.WrapTool(f.store, handler)
	results := make(chan error, 2)
	go func() {
		_, _, err := call(f.ctx(), struct{}{}, struct{}{})
		results <- err
	}()
	f.src.waitFetches(t, "api", 2) // the first failure's refresh, held
	go func() {
		_, _, err := call(f.ctx(), struct{}{}, struct{}{})
		results <- err
	}()
	// The second call must park waiting for the refresh in flight; if it
	// returns instead, it has given up.
	select {
	case err := <-results:
		t.Fatalf("the second call returned before the refresh in flight ended: %v", err)
	case <-blockedIn("secrets.(*Store).refreshStale", 2):
	}
	release()
	for i := 0; i < 2; i++ {
		if err := <-results; err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := f.src.count("api"); n != 2 {
		t.Fatalf("%d fetches, want the load and one forced refresh", n)
	}
}

// blockedIn returns a channel closed once n goroutines are parked in fn.
func blockedIn(fn string, n int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		if waitBlockedIn(fn, n) {
			close(ch)
		}
	}()
	return ch
}

func TestRefreshForcesFetch(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", "1")
	f.get("k")
	f.src.Set("k", "2")
	if err := f.store.Refresh(f.ctx(), "k"); err != nil {
		t.Fatal(err)
	}
	if got := f.get("k").Reveal(); got != "2" {
		t.Fatalf("after Refresh Get = %q", got)
	}
	if err := f.store.Refresh(f.ctx(), "unknown://x"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Refresh of an unroutable key: %v", err)
	}
}

// TestNullFieldIsNotAValue: a rotation that writes
// {"password": null} (a template with an unset variable, a Terraform output
// that is null) is a missing field in JSON's own terms. The Store serves the
// four letters "null" as the password and Refresh returns nil, instead of
// keeping the old value as it does for a missing or empty field.
func TestNullFieldIsNotAValue(t *testing.T) {
	f := newFixture(t)
	f.src.Set("db", `{"user":"u","password":"p1"}`)
	f.get("db#password")
	f.src.Set("db", `{"user":"u","password":null}`)
	err := f.store.Refresh(f.ctx(), "db#password")
	if got := f.get("db#password").Reveal(); got != "p1" {
		t.Fatalf("Refresh: %v; db#password = %q, want the old p1 kept (null is no value)", err, got)
	}
	if err == nil {
		t.Fatal("Refresh returned nil but kept the old value")
	}
}

// TestRefreshNilForFieldItCannotServe: Refresh("db#password") returns
// nil while Get("db#password") fails, because Refresh only looks at the
// base: (1) the key's field is missing from the value fetched; (2) the key
// was never read (not in b.keys), so nothing checks that its field survives
// the candidate that Refresh applies. Doc: "A nil error means that every key
// now serves what the fetch found".
func TestRefreshNilForFieldItCannotServe(t *testing.T) {
	t.Run("field missing in what was fetched", func(t *testing.T) {
		f := newFixture(t)
		f.src.Set("db", `{"user":"u"}`)
		f.get("db#user")
		if _, err := f.store.Get(f.ctx(), "db#password"); err == nil {
			t.Fatal("Get of a missing field succeeded")
		}
		err := f.store.Refresh(f.ctx(), "db#password")
		_, gerr := f.store.Get(f.ctx(), "db#password")
		if err == nil && gerr != nil {
			t.Fatalf("Refresh(db#password) = nil but Get fails: %v", gerr)
		}
	})
	t.Run("key never read; candidate drops its field", func(t *testing.T) {
		f := newFixture(t)
		f.src.Set("db", `{"user":"u","password":"p1"}`)
		f.get("db#user")
		f.src.Set("db", `{"user":"u2"}`)
		err := f.store.Refresh(f.ctx(), "db#password")
		_, gerr := f.store.Get(f.ctx(), "db#password")
		if err == nil && gerr != nil {
			t.Fatalf("Refresh(db#password) = nil but Get fails: %v", gerr)
		}
	})
}

// TestRefreshDoesNotJoinAStaleFirstLoad: Refresh of a key whose first load
// is under way may wait for that load, which read the backend before
// Refresh was called, but must not take it for its own fetch.
func TestRefreshDoesNotJoinAStaleFirstLoad(t *testing.T) {
	src := newLaggy()
	st, err := secrets.New(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	src.mem.Set("k", "v1")
	release := src.hold("k")
	defer release()
	got := make(chan error, 1)
	go func() { _, err := st.Get(ctx, "k"); got <- err }()
	<-src.started // the first load has read v1; its answer is in transit

	src.mem.Set("k", "v2") // rotation; the caller knows and asks for a refresh
	refreshed := make(chan error, 1)
	go func() { refreshed <- st.Refresh(ctx, "k") }()
	eventually(t, "Refresh waiting on the load", func() bool { return secrets.Waiting(st) == 2 })
	release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	err = <-refreshed
	s, _ := st.Get(ctx, "k")
	if err == nil && s.Reveal() != "v2" {
		t.Fatalf("Refresh (called after the rotation) returned nil; Store serves %q; fetches %d", s.Reveal(), src.count("k"))
	}
}
