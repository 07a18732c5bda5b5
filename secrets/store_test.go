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
	"github.com/rotorhq/rotor/sources/memory"
)

// 1. Hot read.

func TestGetHitAllocatesNothing(t *testing.T) {
	src := memory.New()
	src.Set("k", "v")
	// With a staleness limit, the hit path also reads the clock.
	st2, err := secrets.New(src, secrets.WithMaxStale(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	ctx := context.Background()
	if _, err := st2.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := st2.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Get of a cached key allocates %v times per call, want 0", allocs)
	}
}

func TestGetHitTakesNoLock(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", "v")
	f.get("k")
	mu := secrets.WritersLock(f.store)
	mu.Lock()
	defer mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := f.store.Get(context.Background(), "k")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get of a cached key waited for the writers' lock")
	}
	if n := f.src.count("k"); n != 1 {
		t.Fatalf("cached Get fetched: %d fetches", n)
	}
}

// 2. Stampede.

func TestStampedeFetchesOnce(t *testing.T) {
	f := newFixture(t)
	f.src.Set("cold", "value")
	release := f.src.hold("cold")
	defer release()

	const n = 1000
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() {
		_, err := f.store.Get(firstCtx, "cold")
		firstDone <- err
	}()
	f.src.waitFetches(t, "cold", 1)

	var wg sync.WaitGroup
	results := make(chan error, n)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := f.store.Get(context.Background(), "cold")
			if err == nil && s.Reveal() != "value" {
				err = errors.New("wrong value")
			}
			results <- err
		}()
	}
	eventually(t, "every caller to wait", func() bool { return secrets.Waiting(f.store) == n })

	// The first caller gives up: it returns at once, and the fetch it
	// started goes on for the others.
	cancelFirst()
	select {
	case err := <-firstDone:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled caller: err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a canceled caller kept waiting for the fetch")
	}

	// Another key is not blocked by the slow one.
	f.src.Set("other", "x")
	if got := f.get("other").Reveal(); got != "x" {
		t.Fatalf("other key = %q", got)
	}

	release()
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Fatalf("a waiting caller failed: %v", err)
		}
	}
	if c := f.src.count("cold"); c != 1 {
		t.Fatalf("%d callers of a cold key caused %d fetches, want 1", n, c)
	}
}

// 3. Stale-while-revalidate.

func TestStaleWhileRevalidate(t *testing.T) {
	f := newFixture(t, secrets.WithJitter(0))
	f.src.Set("k", "old")
	f.get("k")
	f.src.Set("k", "new")
	release := f.src.hold("k")
	defer release()

	f.clock.Advance(time.Minute) // the TTL
	f.src.waitFetches(t, "k", 2) // one background refresh, held at the gate

	for i := 0; i < 100; i++ {
		if got := f.get("k").Reveal(); got != "old" {
			t.Fatalf("during the refresh Get = %q, want the old value", got)
		}
	}
	if c := f.src.count("k"); c != 2 {
		t.Fatalf("fetches = %d, want the first load and one refresh", c)
	}
	release()
	f.waitRound()
	if got := f.get("k").Reveal(); got != "new" {
		t.Fatalf("after the refresh Get = %q, want new", got)
	}
}

func TestJitterSpreadsRefresh(t *testing.T) {
	f := newFixture(t, secrets.WithTTL(10*time.Minute), secrets.WithJitter(0.2))
	f.src.Set("k", "v")
	f.get("k")
	// With the random fraction fixed at 0.5, the refresh comes 0.5·0.2·TTL early.
	want := epoch.Add(10*time.Minute - time.Minute)
	if got := f.status("k").NextRefresh; !got.Equal(want) {
		t.Fatalf("NextRefresh = %v, want %v", got, want)
	}
}

// 4. Errors.

func TestBackoffSchedule(t *testing.T) {
	f := newFixture(t, secrets.WithBackoff(time.Second, 8*time.Second))
	f.src.Set("k", "good")
	f.get("k")
	f.src.fail("k", fmt.Errorf("throttled: %w", secrets.ErrTransient))

	f.advanceTo(f.status("k").NextRefresh)
	// Full jitter with the random fraction at 0.5: half of min(8s, 1s·2ⁿ⁻¹).
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, w := range want {
		f.waitRound()
		st := f.status("k")
		if st.Failures != i+1 {
			t.Fatalf("after failure %d: Failures = %d", i+1, st.Failures)
		}
		if !errors.Is(st.LastError, secrets.ErrTransient) {
			t.Fatalf("LastError = %v, want ErrTransient", st.LastError)
		}
		if got := st.NextRefresh.Sub(f.clock.Now()); got != w {
			t.Fatalf("after failure %d: retry in %v, want %v", i+1, got, w)
		}
		if got := f.get("k").Reveal(); got != "good" {
			t.Fatalf("during the outage Get = %q, want the last good value", got)
		}
		if i == len(want)-1 {
			f.src.fail("k", nil) // heal before the next attempt starts
		}
		f.advanceTo(st.NextRefresh)
	}
	// Healing resets the schedule.
	f.waitRound()
	st := f.status("k")
	if st.Failures != 0 || st.LastError != nil {
		t.Fatalf("after recovery: Failures %d, LastError %v", st.Failures, st.LastError)
	}
	if got := st.NextRefresh.Sub(f.clock.Now()); got != time.Minute-3*time.Second {
		t.Fatalf("after recovery the next poll is in %v, want the jittered TTL", got)
	}
	f.src.fail("k", secrets.ErrTransient)
	f.advanceTo(st.NextRefresh)
	f.waitRound()
	if got := f.status("k").NextRefresh.Sub(f.clock.Now()); got != 500*time.Millisecond {
		t.Fatalf("first failure after a recovery retries in %v, want 500ms", got)
	}
}

func TestMaxStaleFailsClosed(t *testing.T) {
	f := newFixture(t, secrets.WithMaxStale(10*time.Minute))
	f.src.Set("k", "good")
	f.get("k")
	f.src.fail("k", fmt.Errorf("unavailable: %w", secrets.ErrTransient))
	f.clock.Advance(time.Minute)
	f.waitRound() // the refresh at the TTL fails
	f.clock.Advance(8 * time.Minute)
	if got := f.get("k").Reveal(); got != "good" {
		t.Fatalf("within the limit Get = %q", got)
	}
	f.clock.Advance(2 * time.Minute)
	_, err := f.store.Get(f.ctx(), "k")
	if !errors.Is(err, secrets.ErrStale) {
		t.Fatalf("past the limit: err = %v, want ErrStale", err)
	}
	if !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("ErrStale does not wrap the last refresh error: %v", err)
	}
	if err := f.store.Health(f.ctx()); !errors.Is(err, secrets.ErrStale) {
		t.Fatalf("Health = %v, want ErrStale", err)
	}
	if !f.status("k").Stale {
		t.Fatal("Status does not say stale")
	}
	f.src.fail("k", nil)
	if err := f.store.Refresh(f.ctx(), "k"); err != nil {
		t.Fatal(err)
	}
	if got := f.get("k").Reveal(); got != "good" {
		t.Fatalf("after recovery Get = %q", got)
	}
	if err := f.store.Health(f.ctx()); err != nil {
		t.Fatalf("Health after recovery: %v", err)
	}
}

func TestServesLastGoodByDefault(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", "good")
	f.get("k")
	f.src.fail("k", secrets.ErrTransient)
	f.clock.Advance(24 * time.Hour)
	if got := f.get("k"); got.Reveal() != "good" || !got.FetchedAt().Equal(epoch) {
		t.Fatalf("after a day of outage Get = (fetched %v); want the last good value fetched at the start", got.FetchedAt())
	}
	if err := f.store.Health(f.ctx()); err != nil {
		t.Fatalf("Health without a staleness limit: %v", err)
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

func TestSourcePanicIsAnError(t *testing.T) {
	st, err := secrets.New(panicSource{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.Get(context.Background(), "k")
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

type panicSource struct{}

func (panicSource) Fetch(context.Context, string) (secrets.Versions, error) {
	panic("boom " + canary)
}

// 5. Validators.

func TestValidatorTestsBeforeSwap(t *testing.T) {
	var seen []secrets.Versions
	var mu sync.Mutex
	v := func(_ context.Context, key string, cand secrets.Versions) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, cand)
		if cand.Current.Reveal() == "bad" {
			return errors.New("login failed")
		}
		return nil
	}
	f := newFixture(t, secrets.WithValidator(v, "db"), secrets.WithJitter(0))
	f.src.Set("db", "pw1")
	f.src.Set("other", "o1")
	f.get("db")
	f.get("other")
	if len(seen) != 0 {
		t.Fatal("validator ran on a first load")
	}

	f.src.Set("db", "bad")
	f.src.Set("other", "o2")
	f.clock.Advance(time.Minute)
	f.waitRound()
	if got := f.get("db").Reveal(); got != "pw1" {
		t.Fatalf("a rejected candidate was applied: Get = %q", got)
	}
	if got := f.get("other").Reveal(); got != "o2" {
		t.Fatalf("a key without validator was not refreshed: %q", got)
	}
	st := f.status("db")
	if !errors.Is(st.LastError, secrets.ErrRejected) || st.Failures != 1 {
		t.Fatalf("status after rejection: %v, failures %d", st.LastError, st.Failures)
	}
	if d := st.NextRefresh.Sub(f.clock.Now()); d != 500*time.Millisecond {
		t.Fatalf("after a rejection the retry is in %v, want the backoff", d)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].Current.Reveal() != "bad" || seen[0].Previous.Reveal() != "pw1" || seen[0].Current.Key() != "db" {
		t.Fatalf("validator saw %d candidates; want one with current bad and previous pw1", len(seen))
	}
	mu.Unlock()

	f.src.Set("db", "pw2")
	f.advanceTo(st.NextRefresh)
	f.waitRound()
	if got := f.get("db").Reveal(); got != "pw2" {
		t.Fatalf("a good candidate was not applied: %q", got)
	}
}

func TestValidatorOnRefreshAndReload(t *testing.T) {
	reject := atomic.Bool{}
	calls := atomic.Int32{}
	v := func(context.Context, string, secrets.Versions) error {
		calls.Add(1)
		if reject.Load() {
			return errors.New("no")
		}
		return nil
	}
	f := newFixture(t, secrets.WithValidator(v))
	f.src.Set("k", "1")
	f.get("k")
	f.src.Set("k", "2")
	reject.Store(true)
	if err := f.store.Refresh(f.ctx(), "k"); !errors.Is(err, secrets.ErrRejected) {
		t.Fatalf("Refresh: %v", err)
	}
	if err := f.store.Reload(f.ctx()); !errors.Is(err, secrets.ErrRejected) {
		t.Fatalf("Reload: %v", err)
	}
	if got := f.get("k").Reveal(); got != "1" {
		t.Fatalf("Get = %q after rejections", got)
	}
	reject.Store(false)
	if err := f.store.Reload(f.ctx()); err != nil {
		t.Fatal(err)
	}
	if got := f.get("k").Reveal(); got != "2" {
		t.Fatalf("Get = %q after an accepted reload", got)
	}
	if c := calls.Load(); c != 3 {
		t.Fatalf("validator calls = %d, want 3", c)
	}
	// An unchanged value is not validated again.
	if err := f.store.Reload(f.ctx()); err != nil {
		t.Fatal(err)
	}
	if c := calls.Load(); c != 3 {
		t.Fatalf("an unchanged value was validated again (%d calls)", c)
	}
}

func TestValidatorPanicRejects(t *testing.T) {
	f := newFixture(t, secrets.WithValidator(func(_ context.Context, _ string, c secrets.Versions) error {
		panic(c.Current.Reveal())
	}))
	f.src.Set("k", "1")
	f.get("k")
	f.src.Set("k", canary)
	err := f.store.Refresh(f.ctx(), "k")
	if !errors.Is(err, secrets.ErrRejected) {
		t.Fatalf("err = %v", err)
	}
	assertNoCanary(t, err.Error())
}

func TestMissingFieldKeepsOldValue(t *testing.T) {
	f := newFixture(t)
	f.src.Set("app", `{"user":"u1","password":"p1"}`)
	if got := f.get("app#password").Reveal(); got != "p1" {
		t.Fatalf("field = %q", got)
	}
	if got := f.get("app#/user").Reveal(); got != "u1" {
		t.Fatalf("pointer field = %q", got)
	}
	if _, err := f.store.Get(f.ctx(), "app#nope"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("missing field: err = %v", err)
	}
	if c := f.src.count("app"); c != 1 {
		t.Fatalf("fields of one value cost %d fetches, want 1", c)
	}
	f.src.Set("app", `{"user":"u2"}`)
	err := f.store.Refresh(f.ctx(), "app#password")
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Refresh to a value without a served field: err = %v", err)
	}
	if got := f.get("app#password").Reveal(); got != "p1" {
		t.Fatalf("the old value was dropped: %q", got)
	}
	if got := f.get("app#/user").Reveal(); got != "u1" {
		t.Fatalf("a reload applied half-way: user = %q", got)
	}
	f.src.Set("app", `{"user":"u3","password":"p3"}`)
	if err := f.store.Refresh(f.ctx(), "app#password"); err != nil {
		t.Fatal(err)
	}
	v, _ := f.store.Versions(f.ctx(), "app#password")
	if v.Current.Reveal() != "p3" || v.Previous.Reveal() != "" || !v.Previous.IsZero() {
		// The value before, {"user":"u2"}, has no password: no previous.
		t.Fatalf("versions of the field: %q / zero previous %v", v.Current.Reveal(), v.Previous.IsZero())
	}
}

// 6. Reload.

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

// 8. Changes.

func TestSubscribersLearnChanges(t *testing.T) {
	f := newFixture(t)
	f.src.Set("a", "1")
	f.src.Set("b", "1")
	f.get("a")
	f.get("b")
	sub := f.store.Subscribe()
	defer sub.Close()
	stuck := f.store.Subscribe() // never reads
	defer stuck.Close()

	for i := 2; i <= 50; i++ {
		f.src.Set("a", fmt.Sprint(i))
		if err := f.store.Refresh(f.ctx(), "a"); err != nil {
			t.Fatal(err)
		}
		got, err := sub.Next(f.ctx())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Key != "a" || got[0].NewVersion == got[0].OldVersion {
			t.Fatalf("change %d: %+v", i, got)
		}
	}
	// The stuck subscriber held nobody back and has one coalesced change.
	got := stuck.Changes()
	v, _ := f.store.Versions(f.ctx(), "a")
	if len(got) != 1 || got[0].OldVersion != "1" || got[0].NewVersion != v.Current.Version() {
		t.Fatalf("stuck subscriber: %+v", got)
	}
	if stuck.Changes() != nil {
		t.Fatal("changes were handed over twice")
	}
}

func TestChangesCarryNoValues(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", canary+"1")
	f.get("k")
	sub := f.store.Subscribe()
	defer sub.Close()
	f.src.Set("k", canary+"2")
	if err := f.store.Refresh(f.ctx(), "k"); err != nil {
		t.Fatal(err)
	}
	got, err := sub.Next(f.ctx())
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, fmt.Sprintf("%#v", got))
}

// 9. Close.

func TestClose(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", "v")
	f.src.Set("slow", "v")
	f.get("k")
	sub := f.store.Subscribe()
	release := f.src.hold("slow")
	defer release()
	getErr := make(chan error, 1)
	go func() {
		_, err := f.store.Get(context.Background(), "slow")
		getErr <- err
	}()
	f.src.waitFetches(t, "slow", 1)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-getErr; !errors.Is(err, secrets.ErrClosed) {
		t.Fatalf("a Get waiting when the Store closed: err = %v", err)
	}
	if _, err := f.store.Get(context.Background(), "k"); !errors.Is(err, secrets.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := f.store.Reload(context.Background()); !errors.Is(err, secrets.ErrClosed) {
		t.Fatalf("Reload after Close: %v", err)
	}
	if _, err := sub.Next(context.Background()); !errors.Is(err, secrets.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if err := f.store.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := f.store.Health(context.Background()); !errors.Is(err, secrets.ErrClosed) {
		t.Fatalf("Health after Close: %v", err)
	}
}

// Routing and options.

func TestRoutesBySchemeAndResolvesFieldsOnce(t *testing.T) {
	a, b := newCtl(), newCtl()
	a.Set("plain", "from-a")
	b.Set("x/y", `{"db":{"password":"pw"}}`)
	st, err := secrets.New(a, secrets.WithSource("B", b))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	s, err := st.Get(ctx, "plain")
	if err != nil || s.Reveal() != "from-a" || s.Source() != secrets.DefaultSourceName {
		t.Fatalf("plain key: %v %q", err, s.Source())
	}
	s, err = st.Get(ctx, "b://x/y#/db/password")
	if err != nil || s.Reveal() != "pw" || s.Source() != "b" || s.Key() != "b://x/y#/db/password" {
		t.Fatalf("reference: %v key %q source %q", err, s.Key(), s.Source())
	}
	if _, err := st.Get(ctx, "b://x/y"); err != nil {
		t.Fatal(err)
	}
	if c := b.count("x/y"); c != 1 {
		t.Fatalf("a value and its field cost %d fetches", c)
	}
	for _, key := range []string{"nope://k", "", "k#", "b://"} {
		if _, err := st.Get(ctx, key); !errors.Is(err, secrets.ErrInvalid) {
			t.Errorf("Get(%q): err = %v, want ErrInvalid", key, err)
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	for name, opt := range map[string]secrets.Option{
		"ttl":       secrets.WithTTL(0),
		"jitter":    secrets.WithJitter(1),
		"stale":     secrets.WithMaxStale(-1),
		"backoff":   secrets.WithBackoff(time.Second, time.Millisecond),
		"timeout":   secrets.WithFetchTimeout(0),
		"conc":      secrets.WithConcurrency(0),
		"validator": secrets.WithValidator(nil),
		"logger":    secrets.WithLogger(nil),
		"clock":     secrets.WithClock(nil),
		"scheme":    secrets.WithSource("1bad", memory.New()),
		"nilsrc":    secrets.WithSource("x", nil),
	} {
		if _, err := secrets.New(nil, opt); err == nil {
			t.Errorf("%s: New accepted an invalid option", name)
		}
	}
	if _, err := secrets.New(nil, secrets.WithSource("m", memory.New()), secrets.WithSource("M", memory.New())); err == nil {
		t.Error("a scheme registered twice was accepted")
	}
	// A staleness limit a healthy key reaches between two polls.
	if _, err := secrets.New(nil, secrets.WithTTL(time.Minute), secrets.WithMaxStale(time.Minute+secrets.DefaultFetchTimeout)); err == nil {
		t.Error("WithMaxStale not above TTL plus fetch timeout was accepted")
	}
}

func TestFetchTimeoutIsTransient(t *testing.T) {
	src := newCtl()
	src.Set("k", "v")
	release := src.hold("k")
	defer release()
	st, err := secrets.New(src, secrets.WithFetchTimeout(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Get(context.Background(), "k"); !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
}

func TestStatus(t *testing.T) {
	f := newFixture(t)
	f.src.Set("k", "1")
	f.src.Set("k", "2")
	f.get("k")
	f.clock.Advance(10 * time.Second)
	st := f.status("k")
	if !st.Loaded || st.Version != "2" || st.PreviousVersion != "1" || st.Age != 10*time.Second ||
		!st.FetchedAt.Equal(epoch) || st.Source != secrets.DefaultSourceName {
		t.Fatalf("status: %+v", st)
	}
	if _, ok := f.store.Status("unknown"); ok {
		t.Fatal("Status of an unknown key")
	}
	if all := f.store.Statuses(); len(all) != 1 || all[0].Key != "k" {
		t.Fatalf("Statuses: %+v", all)
	}
}

// watchSrc is a ctl that is also a Watcher: the test calls the Store's
// callback itself.
type watchSrc struct {
	*ctl
	mu      sync.Mutex
	changed func(string)
	ready   chan struct{}
}

func (w *watchSrc) Watch(ctx context.Context, changed func(string)) error {
	w.mu.Lock()
	w.changed = changed
	w.mu.Unlock()
	close(w.ready)
	<-ctx.Done()
	return nil
}

func (w *watchSrc) fire(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.changed(key)
}

func TestWatchEventsRefreshButRespectBackoff(t *testing.T) {
	rejected := atomic.Int32{}
	src := &watchSrc{ctl: newCtl(), ready: make(chan struct{})}
	clock := newFixture(t).clock
	st, err := secrets.New(src, secrets.WithClock(clock), secrets.WithTTL(time.Hour),
		secrets.WithValidator(func(_ context.Context, _ string, c secrets.Versions) error {
			if c.Current.Reveal() == "bad" {
				rejected.Add(1)
				return errors.New("rejected")
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secrets.SetRand(st, func() float64 { return 0.5 })
	rounds := make(chan struct{}, 100)
	secrets.SetRoundHook(st, func() { rounds <- struct{}{} })
	<-src.ready
	ctx := context.Background()
	src.Set("k", "good")
	if _, err := st.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}

	// A healthy key is refreshed as soon as the source signals a change.
	src.Set("k", "good-2")
	src.fire("k")
	<-rounds
	if s, _ := st.Get(ctx, "k"); s.Reveal() != "good-2" {
		t.Fatalf("after a watch event Get = %q", s.Reveal())
	}

	// A rejected value backs off; a burst of events does not undo that.
	src.Set("k", "bad")
	src.fire("k")
	<-rounds
	st1, _ := st.Status("k")
	if st1.Failures != 1 || rejected.Load() != 1 {
		t.Fatalf("after the bad value: failures %d, rejections %d", st1.Failures, rejected.Load())
	}
	for i := 0; i < 10; i++ {
		src.fire("k")
	}
	st2, _ := st.Status("k")
	if !st2.NextRefresh.Equal(st1.NextRefresh) {
		t.Fatalf("events moved the retry from %v to %v", st1.NextRefresh, st2.NextRefresh)
	}
	// With a long backoff pending, an event brings the retry to one
	// minimum backoff away, not to now.
	secrets.SetRand(st, func() float64 { return 0.99 })
	src.fire("")
	clock.Advance(st1.NextRefresh.Sub(clock.Now()))
	<-rounds // second rejection: backoff now up to 2s·0.99
	st3, _ := st.Status("k")
	src.fire("k")
	st4, _ := st.Status("k")
	if want := clock.Now().Add(secrets.DefaultBackoffMin); !st4.NextRefresh.Equal(want) || !st3.NextRefresh.After(want) {
		t.Fatalf("event during a long backoff: next %v (was %v), want %v", st4.NextRefresh, st3.NextRefresh, want)
	}
}

func TestWatchEventRetriesKeyThatNeverLoaded(t *testing.T) {
	src := &watchSrc{ctl: newCtl(), ready: make(chan struct{})}
	clock := newFixture(t).clock
	st, err := secrets.New(src, secrets.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	<-src.ready
	ctx := context.Background()
	if _, err := st.Get(ctx, "late"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	src.Set("late", "here")
	if _, err := st.Get(ctx, "late"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatal("a failed first load was retried within its backoff")
	}
	src.fire("late")
	if s, err := st.Get(ctx, "late"); err != nil || s.Reveal() != "here" {
		t.Fatalf("after the watch event: %v", err)
	}
}

// stubbornSrc ignores ctx: a fetch returns only when the gate opens.
type stubbornSrc struct {
	gate     chan struct{}
	started  chan struct{}
	returned atomic.Bool
}

func (s *stubbornSrc) Fetch(_ context.Context, k string) (secrets.Versions, error) {
	s.started <- struct{}{}
	<-s.gate
	s.returned.Store(true)
	return secrets.Versions{Current: secrets.NewSecretString(k, "1", "v")}, nil
}

// TestEveryCloseWaits: a second Close, made while the first waits for a
// fetch still running, must wait too: a caller that returns from Close may
// assume nothing of the Store runs any more.
func TestEveryCloseWaits(t *testing.T) {
	src := &stubbornSrc{gate: make(chan struct{}), started: make(chan struct{}, 1)}
	st, err := secrets.New(src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go st.Get(ctx, "k")
	<-src.started
	cancel()
	first := make(chan struct{})
	go func() {
		st.Close()
		close(first)
	}()
	eventually(t, "the Store to close", func() bool {
		return errors.Is(st.Health(context.Background()), secrets.ErrClosed)
	})
	go func() {
		// Both Close calls parked: let the fetch return.
		waitBlockedIn("secrets.(*Store).Close", 2)
		close(src.gate)
	}()
	st.Close()
	if !src.returned.Load() {
		t.Fatal("the second Close returned while a fetch was still running")
	}
	<-first
}
