package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
)

// batchMode says how a batchSrc answers a request whose known current
// version is the one it holds.
type batchMode int

const (
	// forcedAware honours Request.Forced: a forced request gets the
	// current version read again, with the known previous version beside
	// it; another gets Unchanged.
	forcedAware batchMode = iota
	// legacy predates Forced: Unchanged, forced or not.
	legacy
	// stubborn answers Unchanged even to a request without Known: a broken
	// source.
	stubborn
)

// batchSrc is a BatchFetcher whose values the test sets together with their
// version ids, so that a value can change under the same id (a backend
// repaired in place, a cache gone wrong). It records the requests of each
// FetchMany call and counts Fetch calls.
type batchSrc struct {
	mode batchMode

	mu      sync.Mutex
	vals    map[string]secrets.Versions
	batches [][]secrets.Request
	fetches int
}

func newBatchSrc(mode batchMode) *batchSrc {
	return &batchSrc{mode: mode, vals: map[string]secrets.Versions{}}
}

// set makes (id, value) the current version of key and (prevID, prev) its
// previous one.
func (b *batchSrc) set(key, id, value, prevID, prev string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := secrets.Versions{Current: secrets.NewSecretString(key, id, value)}
	if prevID != "" {
		v.Previous = secrets.NewSecretString(key, prevID, prev)
	}
	b.vals[key] = v
}

func (b *batchSrc) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fetches++
	v, ok := b.vals[key]
	if !ok {
		return secrets.Versions{}, fmt.Errorf("%w: %s", secrets.ErrNotFound, key)
	}
	return v, nil
}

func (b *batchSrc) FetchMany(ctx context.Context, reqs []secrets.Request) []secrets.Result {
	b.mu.Lock()
	b.batches = append(b.batches, append([]secrets.Request(nil), reqs...))
	b.mu.Unlock()
	out := make([]secrets.Result, len(reqs))
	for i, q := range reqs {
		b.mu.Lock()
		v, ok := b.vals[q.Key]
		b.mu.Unlock()
		same := q.Known.Current.Version() == v.Current.Version()
		switch {
		case !ok:
			out[i].Err = fmt.Errorf("%w: %s", secrets.ErrNotFound, q.Key)
		case b.mode == stubborn:
			out[i].Unchanged = true
		case same && q.Forced && b.mode == forcedAware:
			out[i].Versions = secrets.Versions{Current: v.Current, Previous: q.Known.Previous}
		case same:
			out[i].Unchanged = true
		default:
			out[i].Versions = v
		}
	}
	return out
}

func (b *batchSrc) calls() (batches [][]secrets.Request, fetches int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]secrets.Request(nil), b.batches...), b.fetches
}

func (b *batchSrc) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches, b.fetches = nil, 0
}

// forcedStore loads keys a and b of src into a Store on a fake clock.
func forcedStore(t *testing.T, src *batchSrc, opts ...secrets.Option) (*secrets.Store, *fakeclock.Clock) {
	t.Helper()
	clk := fakeclock.New(epoch)
	st, err := secrets.New(src, append([]secrets.Option{secrets.WithClock(clk), secrets.WithTTL(time.Minute), secrets.WithJitter(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src.set("a", "a1", "a-one", "a0", "a-zero")
	src.set("b", "b1", "b-one", "", "")
	for _, k := range []string{"a", "b"} {
		if _, err := st.Get(spreadCtx(t), k); err != nil {
			t.Fatal(err)
		}
	}
	src.reset()
	return st, clk
}

func reveal(t *testing.T, st *secrets.Store, key string) (cur, prev string) {
	t.Helper()
	v, err := st.Versions(spreadCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	return v.Current.Reveal(), v.Previous.Reveal()
}

// TestReloadSendsForcedRequests: a reload asks a BatchFetcher for all its
// keys in one call of forced requests carrying what the Store holds; a
// Refresh asks with neither, a background round with Known only.
func TestReloadSendsForcedRequests(t *testing.T) {
	src := newBatchSrc(forcedAware)
	st, clk := forcedStore(t, src)
	ctx := spreadCtx(t)

	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	batches, fetches := src.calls()
	if len(batches) != 1 || len(batches[0]) != 2 || fetches != 0 {
		t.Fatalf("reload: %d FetchMany calls, %d Fetch calls; want one FetchMany of both keys", len(batches), fetches)
	}
	for _, q := range batches[0] {
		if !q.Forced || q.Known.Current.IsZero() {
			t.Fatalf("reload request %q: forced %v, known %q; want forced with what the Store holds", q.Key, q.Forced, q.Known.Current.Version())
		}
		if q.Key == "a" && q.Known.Previous.Version() != "a0" {
			t.Fatalf("reload request a: known previous %q, want a0", q.Known.Previous.Version())
		}
	}
	if cur, prev := reveal(t, st, "a"); cur != "a-one" || prev != "a-zero" {
		t.Fatalf("a after the reload: %q, %q", cur, prev)
	}

	src.reset()
	if err := st.Refresh(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	batches, _ = src.calls()
	for _, q := range batches[0] {
		if q.Forced || !q.Known.Current.IsZero() {
			t.Fatalf("Refresh request %q: forced %v, known %q; want neither", q.Key, q.Forced, q.Known.Current.Version())
		}
	}

	src.reset()
	clk.Advance(time.Minute)
	eventually(t, "a background round", func() bool { b, _ := src.calls(); return len(b) > 0 })
	batches, _ = src.calls()
	for _, q := range batches[0] {
		if q.Forced || q.Known.Current.IsZero() {
			t.Fatalf("round request %q: forced %v, known %q; want known only", q.Key, q.Forced, q.Known.Current.Version())
		}
	}
}

// TestReloadRereadsValueUnderSameVersion: the value of a changes in the
// backend under the version id the Store holds. A reload serves the value
// read again, after the validators have passed it; one they reject applies
// nothing, the change of b included.
func TestReloadRereadsValueUnderSameVersion(t *testing.T) {
	for name, mode := range map[string]batchMode{"forced-aware": forcedAware, "legacy": legacy} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			v := func(_ context.Context, key string, c secrets.Versions) error {
				mu.Lock()
				seen = append(seen, key+"="+c.Current.Reveal())
				mu.Unlock()
				if c.Current.Reveal() == "a-bad" {
					return errors.New("login failed")
				}
				return nil
			}
			src := newBatchSrc(mode)
			st, _ := forcedStore(t, src, secrets.WithValidator(v))
			ctx := spreadCtx(t)

			src.set("a", "a1", "a-bad", "a0", "a-zero")
			src.set("b", "b2", "b-two", "b1", "b-one")
			err := st.Reload(ctx)
			var re *secrets.ReloadError
			if !errors.As(err, &re) || len(re.Errors) != 1 || re.Errors[0].Key != "a" || !errors.Is(err, secrets.ErrRejected) {
				t.Fatalf("reload of a rejected value: %v", err)
			}
			if cur, _ := reveal(t, st, "a"); cur != "a-one" {
				t.Fatalf("a = %q after a rejected reload", cur)
			}
			if cur, _ := reveal(t, st, "b"); cur != "b-one" {
				t.Fatalf("b = %q after a rejected reload: half applied", cur)
			}

			src.set("a", "a1", "a-fixed", "a0", "a-zero")
			mu.Lock()
			seen = nil
			mu.Unlock()
			if err := st.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if cur, prev := reveal(t, st, "a"); cur != "a-fixed" || prev != "a-zero" {
				t.Fatalf("a after the reload: %q, %q; want the value read again", cur, prev)
			}
			if cur, prev := reveal(t, st, "b"); cur != "b-two" || prev != "b-one" {
				t.Fatalf("b after the reload: %q, %q", cur, prev)
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(seen, " ") != "a=a-fixed b=b-two" {
				t.Fatalf("validated %q, want each changed value once", seen)
			}
		})
	}
}

// TestReloadLegacyUnchanged: a BatchFetcher that answers Unchanged to a
// forced request (written before Forced) is asked again without Known: in
// one more FetchMany call for several keys, with Fetch for one.
func TestReloadLegacyUnchanged(t *testing.T) {
	src := newBatchSrc(legacy)
	st, _ := forcedStore(t, src)
	ctx := spreadCtx(t)
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	batches, fetches := src.calls()
	if len(batches) != 2 || fetches != 0 {
		t.Fatalf("%d FetchMany and %d Fetch calls, want two FetchMany", len(batches), fetches)
	}
	for _, q := range batches[1] {
		if q.Forced || !q.Known.Current.IsZero() {
			t.Fatalf("second request %q: forced %v, known %q; want neither", q.Key, q.Forced, q.Known.Current.Version())
		}
	}

	src.reset()
	src.set("b", "b2", "b-two", "b1", "b-one") // b changed: only a is Unchanged
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if batches, fetches := src.calls(); len(batches) != 1 || fetches != 1 {
		t.Fatalf("%d FetchMany and %d Fetch calls, want one of each", len(batches), fetches)
	}
	if cur, _ := reveal(t, st, "b"); cur != "b-two" {
		t.Fatalf("b = %q", cur)
	}
}

// TestReloadStubbornUnchanged: a source that answers Unchanged even when
// asked without Known fails the reload with ErrInvalid; nothing is applied.
func TestReloadStubbornUnchanged(t *testing.T) {
	src := newBatchSrc(forcedAware)
	st, _ := forcedStore(t, src)
	src.mode = stubborn
	src.set("a", "a2", "a-two", "a1", "a-one")
	err := st.Reload(spreadCtx(t))
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("reload through a source that will not read: %v, want ErrInvalid", err)
	}
	if cur, _ := reveal(t, st, "a"); cur != "a-one" {
		t.Fatalf("a = %q", cur)
	}
}

// TestForcedReloadStress: reloads through a forced-aware BatchFetcher race
// rotations (good and bad values, some under the same version id),
// Refresh and background rounds. A value the validator rejects is never
// served.
func TestForcedReloadStress(t *testing.T) {
	src := newBatchSrc(forcedAware)
	v := func(_ context.Context, _ string, c secrets.Versions) error {
		if strings.Contains(c.Current.Reveal(), "bad") {
			return errors.New("rejected")
		}
		return nil
	}
	st, clk := forcedStore(t, src, secrets.WithValidator(v), secrets.WithBackoff(time.Millisecond, time.Second))
	ctx := context.Background()
	iters := 2000
	if testing.Short() {
		iters = 200
	}
	var bad atomic.Value
	bad.Store("")
	var wg sync.WaitGroup
	run := func(f func(r *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(rand.Uint64(), 3))
			for range iters {
				f(r)
			}
		}()
	}
	var n atomic.Int64
	run(func(r *rand.Rand) {
		i := n.Add(1)
		key := []string{"a", "b"}[r.IntN(2)]
		id := fmt.Sprintf("%s%d", key, i)
		if r.IntN(4) == 0 {
			id = key + "1" // under the id first loaded
		}
		val := fmt.Sprintf("good%d", i)
		if r.IntN(3) == 0 {
			val = fmt.Sprintf("bad%d", i)
		}
		src.set(key, id, val, "", "")
		runtime.Gosched()
	})
	run(func(r *rand.Rand) {
		for _, k := range []string{"a", "b"} {
			if s, err := st.Get(ctx, k); err == nil && strings.Contains(s.Reveal(), "bad") {
				bad.CompareAndSwap("", k+" served "+s.Reveal())
			}
		}
	})
	run(func(*rand.Rand) { _ = st.Reload(ctx) })
	run(func(*rand.Rand) { _ = st.Refresh(ctx, "a", "b") })
	run(func(r *rand.Rand) { clk.Advance(time.Duration(r.IntN(90)) * time.Second) })
	wg.Wait()
	if b := bad.Load().(string); b != "" {
		t.Fatalf("test before swap broken: %s", b)
	}
}
