package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

func TestReloadAllOrNothing(t *testing.T) {
	f := newFixture(t, secrets.WithValidator(func(_ context.Context, _ string, c secrets.Versions) error {
		if c.Current.Reveal() == "bad" {
			return errors.New("rejected")
		}
		return nil
	}, "c"))
	for _, k := range []string{"a", "b", "c"} {
		f.src.Set(k, k+"1")
		f.get(k)
	}
	f.src.Set("a", "a2")
	f.src.Set("b", "b2")
	f.src.Set("c", "bad")
	err := f.store.Reload(f.ctx())
	var re *secrets.ReloadError
	if !errors.As(err, &re) || len(re.Errors) != 1 || re.Errors[0].Key != "c" {
		t.Fatalf("Reload: err = %v, want a ReloadError naming c", err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if got := f.get(k).Reveal(); got != k+"1" {
			t.Fatalf("a failed reload changed %s to %q", k, got)
		}
	}
	f.src.fail("b", secrets.ErrPermission)
	f.src.Set("c", "c2")
	err = f.store.Reload(f.ctx())
	if !errors.Is(err, secrets.ErrPermission) || !errors.As(err, &re) || re.Errors[0].Key != "b" {
		t.Fatalf("Reload with a failing fetch: %v", err)
	}
	if f.get("a").Reveal() != "a1" || f.get("c").Reveal() != "c1" {
		t.Fatal("a reload with a failed fetch applied the others")
	}
	f.src.fail("b", nil)
	if err := f.store.Reload(f.ctx()); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if got := f.get(k).Reveal(); got != k+"2" {
			t.Fatalf("after a good reload %s = %q", k, got)
		}
	}
}

// TestReloadSwapsAtOnce reads two keys in both orders while reloads rotate
// both. Had the keys been swapped one at a time, some reader would see the
// first key new and the second still old.
func TestReloadSwapsAtOnce(t *testing.T) {
	f := newFixture(t)
	f.src.Set("a", "0")
	f.src.Set("b", "0")
	f.get("a")
	f.get("b")
	stop := make(chan struct{})
	var torn atomic.Int64
	var wg sync.WaitGroup
	for _, order := range [][2]string{{"a", "b"}, {"b", "a"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for {
				select {
				case <-stop:
					return
				default:
				}
				x, _ := f.store.Get(ctx, order[0])
				y, _ := f.store.Get(ctx, order[1])
				if x.Reveal() > y.Reveal() {
					torn.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= 9; i++ {
		f.src.Set("a", fmt.Sprint(i))
		f.src.Set("b", fmt.Sprint(i))
		if err := f.store.Reload(f.ctx()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if n := torn.Load(); n != 0 {
		t.Fatalf("%d reads saw one key of a reload applied without the other", n)
	}
}

func TestReloadCoalesces(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", "v")
	f.get("k")
	release := f.src.hold("k")
	first := make(chan error, 1)
	go func() { first <- f.store.Reload(context.Background()) }()
	f.src.waitFetches(t, "k", 2)

	const n = 99
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- f.store.Reload(context.Background()) }()
	}
	eventually(t, "every reload call to wait", func() bool { return secrets.ReloadWaiters(f.store) == n+1 })
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The first load, the round under way, and one round for all who came
	// during it.
	if c := f.src.count("k"); c != 3 {
		t.Fatalf("100 concurrent reloads made %d fetch rounds, want 2", c-1)
	}
}

// TestReloadWaitsForFirstLoadInFlight: Reload (SIGHUP) while a key's first
// load is in flight, which read the old value before the reload: Reload
// waits for it and fetches the key again.
func TestReloadWaitsForFirstLoadInFlight(t *testing.T) {
	src := newLaggy()
	st, err := secrets.New(src, secrets.WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	src.mem.Set("x", "x1")
	if _, err := st.Get(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	<-src.started
	src.mem.Set("k", "v1")
	release := src.hold("k")
	defer release()
	got := make(chan error, 1)
	go func() { _, err := st.Get(ctx, "k"); got <- err }()
	<-src.started

	src.mem.Set("k", "v2")
	reloaded := make(chan error, 1)
	go func() { reloaded <- st.Reload(ctx) }()
	// Reload waits for the first load under way, and fetches k again.
	if !waitBlockedIn("secrets.(*Store).reloadOnce", 1) {
		t.Fatal("Reload did not wait for the first load under way")
	}
	release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	if s, _ := st.Get(ctx, "k"); s.Reveal() != "v2" {
		t.Fatalf("Reload returned nil after the rotation; Store serves %q", s.Reveal())
	}
}
