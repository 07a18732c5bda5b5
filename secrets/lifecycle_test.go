package secrets_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

// TestNeverLoadedKeyRetriedInBackground: a key whose first load failed is
// retried by the Store itself, with backoff, so it is ready before the next
// reader asks.
func TestNeverLoadedKeyRetriedInBackground(t *testing.T) {
	f := newFixture(t, secrets.WithBackoff(time.Second, time.Minute))
	if _, err := f.store.Get(f.ctx(), "late"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Get: %v, want ErrNotFound", err)
	}
	st := f.status("late")
	if st.Loaded || st.NextRefresh.IsZero() {
		t.Fatalf("status after a failed first load: %+v", st)
	}
	f.src.Set("late", "v")
	f.advanceTo(st.NextRefresh)
	f.waitRound()
	if n := f.src.count("late"); n != 2 {
		t.Fatalf("%d fetches, want the first load and one background retry", n)
	}
	if st := f.status("late"); !st.Loaded || st.Failures != 0 {
		t.Fatalf("status after the retry: %+v", st)
	}
	if err := f.store.Health(f.ctx()); err != nil {
		t.Fatalf("Health: %v", err)
	}
	f.get("late")
	if n := f.src.count("late"); n != 2 {
		t.Fatalf("Get fetched again (%d fetches): the retried value was not served", n)
	}
}

// TestForget: a key read once and then forgotten no longer fails Health,
// has no Status, and is no longer polled.
func TestForget(t *testing.T) {
	f := newFixture(t, secrets.WithJitter(0))
	f.src.Set("db", "v")
	f.get("db")
	if _, err := f.store.Get(f.ctx(), "optional"); err == nil {
		t.Fatal("Get of a missing key succeeded")
	}
	if err := f.store.Health(f.ctx()); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Health: %v, want the missing key's ErrNotFound", err)
	}
	f.store.Forget("optional")
	f.store.Forget("never-read") // a key the Store does not know: nothing
	if err := f.store.Health(f.ctx()); err != nil {
		t.Fatalf("Health after Forget: %v", err)
	}
	if _, ok := f.store.Status("optional"); ok {
		t.Fatal("a forgotten key has a Status")
	}
	f.store.Forget("db")
	if len(f.store.Statuses()) != 0 {
		t.Fatalf("statuses after forgetting every key: %+v", f.store.Statuses())
	}
	// What the scheduler polls and retries is what the Store records.
	if n := secrets.Bases(f.store); n != 0 {
		t.Fatalf("%d values still recorded after every key was forgotten", n)
	}
	before := f.src.count("db")
	f.get("db") // loads afresh
	if f.src.count("db") != before+1 {
		t.Fatal("a forgotten key was not loaded afresh")
	}
}

// TestRequiredKeys: with WithRequired, the named keys load in the
// background from New on, and Health checks them and nothing else.
func TestRequiredKeys(t *testing.T) {
	src := newCtl()
	src.Set("db", `{"password":"pw"}`)
	st, err := secrets.New(src, secrets.WithRequired("db#password", "api"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src.waitFetches(t, "db", 1)
	src.waitFetches(t, "api", 1)
	eventually(t, "the required key to load", func() bool {
		s, ok := st.Status("db#password")
		return ok && s.Loaded && s.Required
	})
	err = st.Health(t.Context())
	if !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Health with a required key missing: %v", err)
	}
	src.Set("api", "k")
	if err := st.Refresh(t.Context(), "api"); err != nil {
		t.Fatalf("Refresh of the required key once it exists: %v", err)
	}
	if _, err := st.Get(t.Context(), "optional"); err == nil {
		t.Fatal("Get of a missing key succeeded")
	}
	if err := st.Health(t.Context()); err != nil {
		t.Fatalf("Health with every required key served and an optional one missing: %v", err)
	}
	if _, err := secrets.New(src, secrets.WithRequired("nope://x")); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("New with an unroutable required key: %v", err)
	}
}

func TestNeverLoadedKeyReturnsTypedError(t *testing.T) {
	f := newFixture(t)
	_, err := f.store.Get(f.ctx(), "missing")
	var ke *secrets.Error
	if !errors.Is(err, secrets.ErrNotFound) || !errors.As(err, &ke) || ke.Key != "missing" {
		t.Fatalf("err = %v, want an *Error for the key wrapping ErrNotFound", err)
	}
	// Within the backoff the source is not asked again.
	for i := 0; i < 10; i++ {
		if _, err := f.store.Get(f.ctx(), "missing"); !errors.Is(err, secrets.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if c := f.src.count("missing"); c != 1 {
		t.Fatalf("fetches within the backoff = %d, want 1", c)
	}
	if err := f.store.Health(f.ctx()); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Health = %v, want the key's error", err)
	}
	f.src.Set("missing", "now here")
	f.advanceTo(f.status("missing").NextRefresh)
	if got := f.get("missing").Reveal(); got != "now here" {
		t.Fatalf("after the backoff Get = %q", got)
	}
}

// TestForgetDuringRetriedFirstLoadStrandsKey: a key whose first load
// failed is loaded again (Refresh, or a Get after its backoff); while that
// fetch runs, the key is forgotten, so the fetch's outcome has nowhere to
// go. The key, read again, must load, not be left without a value or a time
// to try again.
func TestForgetDuringRetriedFirstLoadStrandsKey(t *testing.T) {
	f := newFixture(t, secrets.WithBackoff(time.Second, time.Minute))
	f.src.fail("a", secrets.ErrNotFound)
	if _, err := f.store.Get(f.ctx(), "a"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("first Get: %v", err)
	}
	f.src.fail("a", nil)
	f.src.Set("a", "v")
	release := f.src.hold("a")
	done := make(chan error, 1)
	go func() { done <- f.store.Refresh(f.ctx(), "a") }()
	f.src.waitFetches(t, "a", 2) // the second load is in flight
	f.store.Forget("a")
	release()
	err := <-done
	t.Logf("Refresh during Forget: %v", err)

	// The source has "v". Give the Store every chance: hours of clock.
	for i := 0; i < 5; i++ {
		f.clock.Advance(time.Hour)
		if s, err := f.store.Get(f.ctx(), "a"); err == nil {
			if s.Reveal() != "v" {
				t.Fatalf("Get = %q", s.Reveal())
			}
			return
		}
	}
	_, err = f.store.Get(f.ctx(), "a")
	st, _ := f.store.Status("a")
	t.Fatalf("key stranded: Get still fails after 5h (%v); fetches=%d; status=%+v", err, f.src.count("a"), st)
}
