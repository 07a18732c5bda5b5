// Package sourcetest is the conformance suite for secrets.Source
// implementations: every source of this module passes it, and a source
// written elsewhere (GCP Secret Manager, Azure Key Vault, 1Password, an
// in-house service) runs it from its own tests, as go-cloud's drivertest and
// testing/slogtest are used. A source is done when Run passes against it.
//
// To run it on your own Source, write a Harness that changes your backend the
// way an operator or a rotation function would, and call Run from a test:
//
//	func TestConformance(t *testing.T) {
//		sourcetest.Run(t, sourcetest.Config{
//			New: func(t *testing.T) (secrets.Source, sourcetest.Harness) {
//				backend := startTestBackend(t) // a fake, an emulator or a test account
//				return mysource.New(backend.Client()), harness{backend}
//			},
//			KeepsPrevious: true, // if your backend keeps the version before
//		})
//	}
//
// Each subtest gets a fresh source and harness from New. The suite needs no
// network of its own and no credentials; it waits on the fake clock it gives
// the Stores it builds, never on the wall clock, so it passes on a busy
// machine. The module's examples/thirdpartysource is a source in a module of
// its own that does exactly this.
//
// The suite checks the contract of secrets.Source and of the optional
// capabilities the source implements (BatchFetcher, ChangeDetector, Watcher):
// fetch, not found, a new version seen after an update, the previous version
// kept, context cancellation, concurrent use, values not aliased, typed
// errors that hold no value, a reload's forced requests answered with values
// read again (secrets.Request.Forced), change notices from a Watcher, and a
// Store over
// the source picking up a rotation on Refresh and on its own background poll.
// A source that writes (secrets.Stager, secrets.RotationRecorder,
// secrets.PreviousRemover) is also checked on its writes: conditional and
// idempotent staging, promotion, discarding and rotation records, with one
// winner among racing writers.
package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
)

// A Harness changes the backend behind a source, as an operator or a rotation
// function would.
type Harness interface {
	// Key returns the key the source is to be asked for to read the secret
	// the suite calls name: a path, an ARN, a variable name. Names are short
	// lowercase words, unique within one test.
	Key(name string) string
	// Set writes value as the new current version of name, creating it if
	// need be.
	Set(ctx context.Context, name, value string) error
	// Delete removes name with all its versions.
	Delete(ctx context.Context, name string) error
}

// Config describes the source under test.
type Config struct {
	// New returns the source under test and a harness over its backend,
	// both fresh for one subtest. Cleanup is the caller's, via t.Cleanup.
	New func(t *testing.T) (secrets.Source, Harness)
	// KeepsPrevious reports that the source returns the version before the
	// current one as Previous (AWSPREVIOUS, Vault KV n-1, a file's earlier
	// content). Sources that keep none are checked to return a zero Previous.
	KeepsPrevious bool
	// Settle, when set, is called after each Harness.Set or Delete for
	// sources whose backend becomes consistent later (none here needs it).
	Settle func(t *testing.T)
	// NotWritable, when set, says that the source writes (it implements
	// secrets.Stager or secrets.RotationRecorder) but that the keys of this
	// configuration cannot be written (a read-only layout, such as a
	// Kubernetes secret volume for the file source), and the class of error
	// it refuses them with. The Write section then checks that every write
	// fails with an error wrapping it, holds no value and changes nothing.
	NotWritable error
}

// canary is a value the suite writes and then looks for in every error: a
// source must never put a value in an error message.
const canary = "canary-7f3e9b1d-must-never-leak"

// Run runs the conformance suite.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, Config)
	}{
		{"Fetch", testFetch},
		{"NotFound", testNotFound},
		{"UpdateNewVersion", testUpdate},
		{"Previous", testPrevious},
		{"Deleted", testDeleted},
		{"ContextCanceled", testCanceled},
		{"Concurrent", testConcurrent},
		{"NotAliased", testNotAliased},
		{"BatchFetcher", testBatch},
		{"BatchFetcherForced", testBatchForced},
		{"ChangeDetector", testDetector},
		{"Watcher", testWatcher},
		{"Store", testStore},
		{"StoreBackground", testStoreBackground},
		{"Write", testWrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, cfg) })
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func set(t *testing.T, cfg Config, h Harness, name, value string) {
	t.Helper()
	if err := h.Set(ctxT(t), name, value); err != nil {
		t.Fatalf("harness Set(%q): %v", name, err)
	}
	if cfg.Settle != nil {
		cfg.Settle(t)
	}
}

func fetch(t *testing.T, src secrets.Source, key string) secrets.Versions {
	t.Helper()
	v, err := src.Fetch(ctxT(t), key)
	if err != nil {
		t.Fatalf("Fetch(%q): %v", key, err)
	}
	return v
}

func noLeak(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Fatalf("error message contains a secret value: %v", err)
	}
	if err != nil && strings.Contains(fmt.Sprintf("%+v", err), canary) {
		t.Fatalf("error's %%+v form contains a secret value")
	}
}

func testFetch(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	set(t, cfg, h, "alpha", "s3cr3t-alpha")
	v := fetch(t, src, h.Key("alpha"))
	if got := v.Current.Reveal(); got != "s3cr3t-alpha" {
		t.Fatalf("Current = %q, want the value set", got)
	}
	if v.Current.Version() == "" {
		t.Fatal("Current has no version id")
	}
	if !cfg.KeepsPrevious && !v.Previous.IsZero() {
		t.Fatal("a source that keeps no previous version returned one")
	}
	if cfg.KeepsPrevious && !v.Previous.IsZero() {
		t.Fatal("a secret written once has a previous version")
	}
}

func testNotFound(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	_, err := src.Fetch(ctxT(t), h.Key("missing"))
	if !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Fetch of a missing key: err = %v, want ErrNotFound", err)
	}
}

func testUpdate(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	set(t, cfg, h, "beta", "one")
	v1 := fetch(t, src, h.Key("beta"))
	set(t, cfg, h, "beta", "two")
	v2 := fetch(t, src, h.Key("beta"))
	if v2.Current.Reveal() != "two" {
		t.Fatalf("after an update Current = %q, want %q", v2.Current.Reveal(), "two")
	}
	if v2.Current.Version() == v1.Current.Version() {
		t.Fatalf("an update kept version id %q", v1.Current.Version())
	}
	// Fetching again without a change keeps the version id.
	if v3 := fetch(t, src, h.Key("beta")); v3.Current.Version() != v2.Current.Version() {
		t.Fatalf("version id moved without a change: %q then %q", v2.Current.Version(), v3.Current.Version())
	}
}

func testPrevious(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	set(t, cfg, h, "gamma", "first")
	v1 := fetch(t, src, h.Key("gamma"))
	// Read after each write, as a Store does after each change: a source
	// without history of its own (files) learns it by reading.
	set(t, cfg, h, "gamma", "second")
	fetch(t, src, h.Key("gamma"))
	set(t, cfg, h, "gamma", "third")
	v := fetch(t, src, h.Key("gamma"))
	if v.Current.Reveal() != "third" {
		t.Fatalf("Current = %q, want third", v.Current.Reveal())
	}
	if !cfg.KeepsPrevious {
		if !v.Previous.IsZero() {
			t.Fatal("a source that keeps no previous version returned one")
		}
		return
	}
	if v.Previous.Reveal() != "second" {
		t.Fatalf("Previous = %q, want second", v.Previous.Reveal())
	}
	if v.Previous.Version() == "" || v.Previous.Version() == v.Current.Version() || v.Previous.Version() == v1.Current.Version() {
		t.Fatalf("Previous version id %q is not distinct (current %q, first %q)",
			v.Previous.Version(), v.Current.Version(), v1.Current.Version())
	}
}

func testDeleted(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	set(t, cfg, h, "delta", canary)
	fetch(t, src, h.Key("delta"))
	if err := h.Delete(ctxT(t), "delta"); err != nil {
		t.Fatalf("harness Delete: %v", err)
	}
	if cfg.Settle != nil {
		cfg.Settle(t)
	}
	_, err := src.Fetch(ctxT(t), h.Key("delta"))
	if !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Fetch after Delete: err = %v, want ErrNotFound", err)
	}
	noLeak(t, err)
}

func testCanceled(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	set(t, cfg, h, "eps", "value")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := src.Fetch(ctx, h.Key("eps"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with a canceled context: err = %v, want one wrapping context.Canceled", err)
	}
	if d, ok := src.(secrets.ChangeDetector); ok {
		r := d.FetchIfChanged(ctx, secrets.Request{Key: h.Key("eps")})
		if !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("FetchIfChanged with a canceled context: err = %v", r.Err)
		}
	}
	if b, ok := src.(secrets.BatchFetcher); ok {
		for _, r := range b.FetchMany(ctx, []secrets.Request{{Key: h.Key("eps")}}) {
			if !errors.Is(r.Err, context.Canceled) {
				t.Fatalf("FetchMany with a canceled context: err = %v", r.Err)
			}
		}
	}
}

func testConcurrent(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	set(t, cfg, h, "zeta", "v0")
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				v, err := src.Fetch(ctx, h.Key("zeta"))
				if err != nil {
					errs <- err
					return
				}
				if !strings.HasPrefix(v.Current.Reveal(), "v") {
					errs <- fmt.Errorf("torn value of length %d", v.Current.Len())
					return
				}
			}
		}()
	}
	for i := 1; i <= 5; i++ {
		if err := h.Set(ctx, "zeta", fmt.Sprintf("v%d", i)); err != nil {
			t.Fatalf("harness Set: %v", err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Fetch: %v", err)
	}
	if cfg.Settle != nil {
		cfg.Settle(t)
	}
	if v := fetch(t, src, h.Key("zeta")); v.Current.Reveal() != "v5" {
		t.Fatalf("after concurrent updates Current = %q, want v5", v.Current.Reveal())
	}
}

func testNotAliased(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	set(t, cfg, h, "eta", "immutable")
	v := fetch(t, src, h.Key("eta"))
	b := v.Current.Bytes()
	for i := range b {
		b[i] = 'X'
	}
	if got := fetch(t, src, h.Key("eta")).Current.Reveal(); got != "immutable" {
		t.Fatalf("changing Bytes() changed the source's value: now %q", got)
	}
	if v.Current.Reveal() != "immutable" {
		t.Fatal("changing Bytes() changed the Secret")
	}
}

func testBatch(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	b, ok := src.(secrets.BatchFetcher)
	if !ok {
		t.Log("source is not a BatchFetcher")
		return
	}
	set(t, cfg, h, "b1", "one")
	set(t, cfg, h, "b2", "two")
	reqs := []secrets.Request{{Key: h.Key("b2")}, {Key: h.Key("nothere")}, {Key: h.Key("b1")}}
	res := b.FetchMany(ctxT(t), reqs)
	if len(res) != len(reqs) {
		t.Fatalf("FetchMany returned %d results for %d requests", len(res), len(reqs))
	}
	if res[0].Err != nil || res[0].Versions.Current.Reveal() != "two" {
		t.Fatalf("result 0: %v %q", res[0].Err, res[0].Versions.Current.Reveal())
	}
	if !errors.Is(res[1].Err, secrets.ErrNotFound) {
		t.Fatalf("result 1 (missing): err = %v, want ErrNotFound", res[1].Err)
	}
	if res[2].Err != nil || res[2].Versions.Current.Reveal() != "one" {
		t.Fatalf("result 2: %v %q", res[2].Err, res[2].Versions.Current.Reveal())
	}
	// With what the Store holds, an unchanged key may be answered Unchanged,
	// and a changed one must not be.
	known := []secrets.Request{{Key: h.Key("b1"), Known: res[2].Versions}, {Key: h.Key("b2"), Known: res[0].Versions}}
	set(t, cfg, h, "b2", "two-bis")
	res = b.FetchMany(ctxT(t), known)
	if res[0].Err != nil || (!res[0].Unchanged && res[0].Versions.Current.Reveal() != "one") {
		t.Fatalf("unchanged key: %+v", res[0].Err)
	}
	if res[1].Err != nil || res[1].Unchanged || res[1].Versions.Current.Reveal() != "two-bis" {
		t.Fatalf("changed key: unchanged=%v err=%v", res[1].Unchanged, res[1].Err)
	}
}

// testBatchForced checks the answers to a reload's forced requests, given
// known versions under the right version ids but with other values (a cache
// gone wrong): never Unchanged, the current value read from the backend, and
// where the current version moved, the previous one read again too.
func testBatchForced(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	b, ok := src.(secrets.BatchFetcher)
	if !ok {
		t.Log("source is not a BatchFetcher")
		return
	}
	set(t, cfg, h, "f1", "one")
	set(t, cfg, h, "f2", "two")
	k1, k2 := h.Key("f1"), h.Key("f2")
	v1, v2 := fetch(t, src, k1), fetch(t, src, k2)
	stale := func(key string, v secrets.Versions) secrets.Versions {
		out := secrets.Versions{Current: secrets.NewSecretString(key, v.Current.Version(), "stale-cache")}
		if !v.Previous.IsZero() {
			out.Previous = secrets.NewSecretString(key, v.Previous.Version(), "stale-cache")
		}
		return out
	}
	set(t, cfg, h, "f2", "two-bis")
	res := b.FetchMany(ctxT(t), []secrets.Request{
		{Key: k1, Known: stale(k1, v1), Forced: true},
		{Key: k2, Known: stale(k2, v2), Forced: true},
	})
	if len(res) != 2 {
		t.Fatalf("FetchMany returned %d results for 2 requests", len(res))
	}
	for i, want := range []string{"one", "two-bis"} {
		r := res[i]
		switch {
		case r.Err != nil:
			t.Fatalf("forced request %d: %v", i, r.Err)
		case r.Unchanged:
			t.Fatalf("forced request %d answered Unchanged: a forced request must read the value again (see secrets.Request.Forced)", i)
		case r.Versions.Current.Reveal() != want:
			t.Fatalf("forced request %d: Current is not the backend's value (the known one was returned?)", i)
		}
	}
	if r := res[0]; r.Versions.Current.Version() != v1.Current.Version() {
		t.Fatalf("unchanged key: version %q, want %q", r.Versions.Current.Version(), v1.Current.Version())
	}
	if cfg.KeepsPrevious && res[1].Versions.Previous.Reveal() != "two" {
		t.Fatal("changed key: Previous is not the backend's former value; where the current version moved, the known versions must not be reused")
	}
}

func testDetector(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	d, ok := src.(secrets.ChangeDetector)
	if !ok {
		t.Log("source is not a ChangeDetector")
		return
	}
	set(t, cfg, h, "theta", "one")
	v := fetch(t, src, h.Key("theta"))
	r := d.FetchIfChanged(ctxT(t), secrets.Request{Key: h.Key("theta"), Known: v})
	if r.Err != nil || !r.Unchanged {
		t.Fatalf("FetchIfChanged with the current versions: unchanged=%v err=%v, want unchanged", r.Unchanged, r.Err)
	}
	set(t, cfg, h, "theta", "two")
	r = d.FetchIfChanged(ctxT(t), secrets.Request{Key: h.Key("theta"), Known: v})
	if r.Err != nil || r.Unchanged || r.Versions.Current.Reveal() != "two" {
		t.Fatalf("FetchIfChanged after an update: unchanged=%v err=%v", r.Unchanged, r.Err)
	}
	r = d.FetchIfChanged(ctxT(t), secrets.Request{Key: h.Key("theta")})
	if r.Err != nil || r.Unchanged || r.Versions.Current.Reveal() != "two" {
		t.Fatalf("FetchIfChanged without known versions must fetch: unchanged=%v err=%v", r.Unchanged, r.Err)
	}
	if err := h.Delete(ctxT(t), "theta"); err != nil {
		t.Fatal(err)
	}
	if cfg.Settle != nil {
		cfg.Settle(t)
	}
	r = d.FetchIfChanged(ctxT(t), secrets.Request{Key: h.Key("theta"), Known: v})
	if !errors.Is(r.Err, secrets.ErrNotFound) {
		t.Fatalf("FetchIfChanged after Delete: err = %v, want ErrNotFound", r.Err)
	}
}

// testStore runs a Store over the source: a rotation becomes visible after
// Refresh, with the old value as Previous where the source keeps it, and a
// failed refresh keeps the last good value.
func testStore(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	set(t, cfg, h, "iota", "before")
	st, err := secrets.New(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := ctxT(t)
	key := h.Key("iota")
	if got, err := st.Get(ctx, key); err != nil || got.Reveal() != "before" {
		t.Fatalf("Get: %v", err)
	}
	set(t, cfg, h, "iota", "after")
	if err := st.Refresh(ctx, key); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	v, err := st.Versions(ctx, key)
	if err != nil || v.Current.Reveal() != "after" {
		t.Fatalf("after rotation: err=%v", err)
	}
	if cfg.KeepsPrevious && v.Previous.Reveal() != "before" {
		t.Fatal("after rotation the previous version is not the old value")
	}
	if err := h.Delete(ctx, "iota"); err != nil {
		t.Fatal(err)
	}
	if cfg.Settle != nil {
		cfg.Settle(t)
	}
	if err := st.Refresh(ctx, key); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Refresh of a deleted key: err = %v, want ErrNotFound", err)
	}
	if got, err := st.Get(ctx, key); err != nil || got.Reveal() != "after" {
		t.Fatalf("after a failed refresh Get = err %v; want the last good value", err)
	}
}

// testWatcher checks that a Watcher reports a change to a key it has been
// asked for: after Set, some notice (for the key, or for everything) must be
// followed by a Fetch that sees the new value.
func testWatcher(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	w, ok := src.(secrets.Watcher)
	if !ok {
		t.Log("source is not a Watcher")
		return
	}
	set(t, cfg, h, "kappa", "before")
	key := h.Key("kappa")
	fetch(t, src, key)
	ctx, cancel := context.WithCancel(context.Background())
	notices := make(chan string, 1024)
	done := make(chan error, 1)
	go func() {
		done <- w.Watch(ctx, func(k string) {
			select {
			case notices <- k:
			default:
			}
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v after its context ended", err)
		}
	}()
	set(t, cfg, h, "kappa", "after")
	timeout := time.After(20 * time.Second)
	for {
		select {
		case k := <-notices:
			if k != "" && k != key {
				continue
			}
			if fetch(t, src, key).Current.Reveal() == "after" {
				return
			}
		case <-timeout:
			t.Fatal("no change notice was followed by the new value")
		}
	}
}

// testStoreBackground checks the Store's own poll, which goes through the
// source's change detection or batching where it has them: after the TTL
// the Store serves the new value without being asked.
func testStoreBackground(t *testing.T, cfg Config) {
	src, h := cfg.New(t)
	set(t, cfg, h, "lambda", "before")
	set(t, cfg, h, "mu", "unchanged")
	clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st, err := secrets.New(src, secrets.WithClock(clock), secrets.WithTTL(time.Minute), secrets.WithJitter(0))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := ctxT(t)
	key, other := h.Key("lambda"), h.Key("mu")
	for _, k := range []string{key, other} {
		if _, err := st.Get(ctx, k); err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
	}
	sub := st.Subscribe()
	defer sub.Close()
	set(t, cfg, h, "lambda", "after")
	clock.Advance(time.Minute)
	for {
		changes, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("no change after the TTL: %v", err)
		}
		for _, c := range changes {
			if c.Key == other {
				t.Fatalf("an unchanged key was reported changed: %+v", c)
			}
		}
		if got, _ := st.Get(ctx, key); got.Reveal() == "after" {
			break
		}
	}
	if got, err := st.Get(ctx, other); err != nil || got.Reveal() != "unchanged" {
		t.Fatalf("the unchanged key: %v", err)
	}
}
