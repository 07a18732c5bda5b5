package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

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

// TestCloseOutlivedByFirstLoadGoroutine: a caller whose ctx is already done
// returns from Get at once; the first load it started runs on. Close must
// still wait for it: goleak's retry would hide a goroutine that outlives
// Close by a little, a look at the stacks right after Close does not.
func TestCloseOutlivedByFirstLoadGoroutine(t *testing.T) {
	buf := make([]byte, 1<<20)
	for i := 0; i < 2000; i++ {
		src := newCtl()
		src.Set("a", "v")
		st, err := secrets.New(src)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _ = st.Get(ctx, "a")
		st.Close()
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "secrets.(*Store).loadBase") {
				t.Fatalf("iteration %d: a goroutine the Store started is alive after Close returned:\n%s", i, g)
			}
		}
	}
}

// TestGetHitFieldKeyManyKeys: a hit on a field key, through Get and
// Versions, in a Store of 5,000 keys with WithMaxStale, allocates nothing
// and does not wait for the writers' lock.
func TestGetHitFieldKeyManyKeys(t *testing.T) {
	f := newFixture(t, secrets.WithMaxStale(time.Hour))
	f.src.Set("db", `{"user":"u","password":"p"}`)
	for i := 0; i < 5000; i++ {
		k := fmt.Sprintf("k%d", i)
		f.src.Set(k, "v")
		f.get(k)
	}
	f.get("db#password")
	ctx := context.Background()
	mu := secrets.WritersLock(f.store)
	mu.Lock()
	done := make(chan float64, 1)
	go func() {
		done <- testing.AllocsPerRun(1000, func() {
			if _, err := f.store.Get(ctx, "db#password"); err != nil {
				panic(err)
			}
			if _, err := f.store.Versions(ctx, "k4999"); err != nil {
				panic(err)
			}
		})
	}()
	select {
	case a := <-done:
		mu.Unlock()
		if a != 0 {
			t.Fatalf("%v allocs per hit", a)
		}
	case <-time.After(10 * time.Second):
		mu.Unlock()
		t.Fatal("hit waited for the writers' lock")
	}
}
