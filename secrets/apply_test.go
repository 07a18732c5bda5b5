package secrets_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// gatedValidator holds the first validation of one key's candidate until
// released, and rejects every candidate whose value is "bad".
type gatedValidator struct {
	key     string
	value   string // the candidate value that is held
	entered chan struct{}
	gate    chan struct{}

	mu   sync.Mutex
	once bool
	seen map[string][]string // key → candidate values validated
}

func newGatedValidator(key, value string) *gatedValidator {
	return &gatedValidator{key: key, value: value, entered: make(chan struct{}), gate: make(chan struct{}), seen: map[string][]string{}}
}

func (g *gatedValidator) validate(ctx context.Context, key string, c secrets.Versions) error {
	g.mu.Lock()
	g.seen[key] = append(g.seen[key], c.Current.Reveal())
	hold := key == g.key && c.Current.Reveal() == g.value && !g.once
	if hold {
		g.once = true
	}
	g.mu.Unlock()
	if hold {
		close(g.entered)
		<-g.gate
	}
	if c.Current.Reveal() == "bad" {
		return errors.New("login failed")
	}
	return nil
}

func (g *gatedValidator) saw(key string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.seen[key]...)
}

// TestFieldKeyFirstReadDuringValidation: a field key first read while a
// candidate of its value is being validated (for the other keys read so
// far) must not be served that candidate unless it passes for this key too.
func TestFieldKeyFirstReadDuringValidation(t *testing.T) {
	for _, tc := range []struct {
		name, next string
	}{
		{"rejected for the new key", `{"user":"u","password":"bad"}`},
		{"field gone from the candidate", `{"user":"u2"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGatedValidator("db#user", "u")
			if tc.next == `{"user":"u2"}` {
				g.value = "u2"
			}
			f := newFixture(t, secrets.WithValidator(g.validate))
			f.src.Set("db", `{"user":"u","password":"p1"}`)
			f.get("db#user")

			f.src.Set("db", tc.next)
			done := make(chan error, 1)
			go func() { done <- f.store.Refresh(f.ctx(), "db#user") }()
			<-g.entered // db#user's candidate is being validated
			if got := f.get("db#password").Reveal(); got != "p1" {
				t.Fatalf("first read during validation: %q, want the served p1", got)
			}
			close(g.gate)
			err := <-done
			if got := f.get("db#password").Reveal(); got != "p1" {
				t.Fatalf("db#password = %q after the refresh; its candidate was never acceptable (Refresh: %v)", got, err)
			}
			if err == nil {
				t.Fatal("Refresh returned nil but did not apply its candidate")
			}
			if tc.next == `{"user":"u","password":"bad"}` {
				if saw := g.saw("db#password"); len(saw) != 1 || saw[0] != "bad" {
					t.Fatalf("validator saw %q for db#password, want the candidate once", saw)
				}
			}
		})
	}
}

// TestReloadAppliesWholeWhenANewerFetchFails: while Reload's validators
// run, a newer fetch of one of its keys fails. Reload must apply all its
// keys (the failure does not make its value wrong) or none, and say which.
func TestReloadAppliesWholeWhenANewerFetchFails(t *testing.T) {
	g := newGatedValidator("a", "a2")
	f := newFixture(t, secrets.WithValidator(g.validate))
	f.src.Set("a", "a1")
	f.src.Set("b", "b1")
	f.get("a")
	f.get("b")

	f.src.Set("a", "a2")
	f.src.Set("b", "b2")
	done := make(chan error, 1)
	go func() { done <- f.store.Reload(f.ctx()) }()
	<-g.entered
	f.src.fail("a", secrets.ErrTransient)
	if err := f.store.Refresh(f.ctx(), "a"); !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("the newer fetch: %v, want it to fail", err)
	}
	close(g.gate)
	err := <-done
	a, b := f.get("a").Reveal(), f.get("b").Reveal()
	switch {
	case err == nil && a == "a2" && b == "b2":
	case err != nil && a == "a1" && b == "b1":
	default:
		t.Fatalf("Reload returned %v with a=%s b=%s: half applied", err, a, b)
	}
}

// TestRefreshKeepsItsValueWhenANewerFetchFails: the same for Refresh,
// which must not drop a validated value and return nil.
func TestRefreshKeepsItsValueWhenANewerFetchFails(t *testing.T) {
	g := newGatedValidator("a", "a2")
	f := newFixture(t, secrets.WithValidator(g.validate))
	f.src.Set("a", "a1")
	f.src.Set("x", "x1")
	f.get("a")
	f.get("x")

	f.src.Set("a", "a2")
	done := make(chan error, 1)
	go func() { done <- f.store.Refresh(f.ctx(), "a") }()
	<-g.entered
	f.src.fail("a", secrets.ErrTransient)
	if err := f.store.Refresh(f.ctx(), "a", "x"); !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("the newer fetch: %v, want it to fail", err)
	}
	close(g.gate)
	if err := <-done; err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got := f.get("a").Reveal(); got != "a2" {
		t.Fatalf("Refresh returned nil but a = %q, want its validated a2", got)
	}
}

// TestReloadAppliesWholeWhenAnOlderRefreshLands: an older Refresh applies
// its value between Reload's validation and its swap. Reload's verdict for
// that key was reached against a value no longer served: it must examine
// the key again, not drop it and apply the rest.
func TestReloadAppliesWholeWhenAnOlderRefreshLands(t *testing.T) {
	held := newGatedValidator("a", "a2")       // the older Refresh
	reloadGate := newGatedValidator("b", "b2") // Reload, on b
	f := newFixture(t, secrets.WithValidator(held.validate), secrets.WithValidator(reloadGate.validate))
	f.src.Set("a", "a1")
	f.src.Set("b", "b1")
	f.get("a")
	f.get("b")

	f.src.Set("a", "a2")
	refreshed := make(chan error, 1)
	go func() { refreshed <- f.store.Refresh(f.ctx(), "a") }()
	<-held.entered // the Refresh fetched a2 and holds

	f.src.Set("a", "a3")
	f.src.Set("b", "b2")
	reloaded := make(chan error, 1)
	go func() { reloaded <- f.store.Reload(f.ctx()) }()
	<-reloadGate.entered // Reload has validated a3 and holds on b2

	close(held.gate)
	if err := <-refreshed; err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	close(reloadGate.gate)
	err := <-reloaded
	a, b := f.get("a").Reveal(), f.get("b").Reveal()
	switch {
	case err == nil && a == "a3" && b == "b2":
	case err != nil && b == "b1":
	default:
		t.Fatalf("Reload returned %v with a=%s b=%s: half applied", err, a, b)
	}
}

// stepSrc is a source whose fetches of blocked keys each wait to be
// released one by one, in any order the test picks; a released fetch reads
// the backend at that moment. It models requests that race on the network:
// a fetch that started later can read the backend earlier.
type stepSrc struct {
	mem *memory.Source

	mu      sync.Mutex
	blocked map[string]bool
	calls   []chan struct{} // one per blocked fetch, in start order
	keys    []string
	started chan struct{}
	reads   chan struct{} // a blocked fetch has read the backend
}

func newStepSrc() *stepSrc {
	return &stepSrc{mem: memory.New(), blocked: map[string]bool{}, started: make(chan struct{}, 64), reads: make(chan struct{}, 64)}
}

func (s *stepSrc) block(key string) { s.mu.Lock(); s.blocked[key] = true; s.mu.Unlock() }

// unblock lets later fetches of key read at once.
func (s *stepSrc) unblock(key string) { s.mu.Lock(); delete(s.blocked, key); s.mu.Unlock() }

func (s *stepSrc) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	s.mu.Lock()
	var gate chan struct{}
	if s.blocked[key] {
		gate = make(chan struct{})
		s.calls = append(s.calls, gate)
		s.keys = append(s.keys, key)
	}
	s.mu.Unlock()
	if gate != nil {
		s.started <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return secrets.Versions{}, ctx.Err()
		}
		v, err := s.mem.Fetch(ctx, key)
		s.reads <- struct{}{}
		return v, err
	}
	return s.mem.Fetch(ctx, key)
}

func (s *stepSrc) waitStarted(t *testing.T) {
	t.Helper()
	<-s.started
}

// store returns a Store over s that has loaded each key, holding key+"1".
func (s *stepSrc) store(t *testing.T, opts []secrets.Option, keys ...string) *secrets.Store {
	t.Helper()
	st, err := secrets.New(s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, k := range keys {
		s.mem.Set(k, k+"1")
		if _, err := st.Get(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// release lets the i-th blocked fetch (0-based, in start order) read.
func (s *stepSrc) release(i int) {
	s.mu.Lock()
	ch := s.calls[i]
	s.mu.Unlock()
	close(ch)
}

// TestRefreshNilButServesOlderRead: Refresh R and Refresh J of key a
// overlap; J started later but reads the backend first (a1) and is applied;
// the backend rotates to a2 and R reads it. R must not be dropped as older
// for having started first: it returns nil only with a2 served.
func TestRefreshNilButServesOlderRead(t *testing.T) {
	src := newStepSrc()
	st := src.store(t, nil, "a", "x")
	ctx := t.Context()
	src.block("a")

	r := make(chan error, 1)
	go func() { r <- st.Refresh(ctx, "a") }()
	src.waitStarted(t) // call 0: R
	j := make(chan error, 1)
	go func() { j <- st.Refresh(ctx, "a", "x") }()
	src.waitStarted(t) // call 1: J

	src.release(1) // J reads a1
	<-src.reads
	if err := <-j; err != nil {
		t.Fatalf("J: %v", err)
	}
	src.mem.Set("a", "a2") // rotation
	src.unblock("a")       // a fetch that settles the order reads at once
	src.release(0)         // R reads a2
	<-src.reads
	if err := <-r; err != nil {
		t.Fatalf("R: %v", err)
	}
	if got, _ := st.Get(ctx, "a"); got.Reveal() != "a2" {
		t.Fatalf("Refresh returned nil after reading a2 from the backend, but the Store serves %q", got.Reveal())
	}
}

// releaseKey lets the n-th blocked fetch of key (0-based) read.
func (s *stepSrc) releaseKey(key string, n int) {
	s.mu.Lock()
	var ch chan struct{}
	for i, k := range s.keys {
		if k == key {
			if n == 0 {
				ch = s.calls[i]
				break
			}
			n--
		}
	}
	s.mu.Unlock()
	close(ch)
}

// TestStoreGoesBackwards: the same race, but J (started later, read
// earlier) comes to apply after R, because J's round also waits for key x.
// R applied a2; J's a1 must not replace it: readers and subscribers would
// go back to the credential being rotated away.
func TestStoreGoesBackwards(t *testing.T) {
	src := newStepSrc()
	st := src.store(t, nil, "a", "x")
	ctx := t.Context()
	sub := st.Subscribe()
	defer sub.Close()
	src.block("a")
	src.block("x")

	r := make(chan error, 1)
	go func() { r <- st.Refresh(ctx, "a") }()
	src.waitStarted(t) // R's a
	j := make(chan error, 1)
	go func() { j <- st.Refresh(ctx, "a", "x") }()
	src.waitStarted(t) // J's a and x
	src.waitStarted(t)

	src.releaseKey("a", 1) // J reads a1 (J still waits for x)
	<-src.reads
	src.mem.Set("a", "a2")
	src.unblock("a")
	src.releaseKey("a", 0) // R reads a2
	<-src.reads
	if err := <-r; err != nil {
		t.Fatalf("R: %v", err)
	}
	if got, _ := st.Get(ctx, "a"); got.Reveal() != "a2" {
		t.Fatalf("R did not apply a2 (got %q)", got.Reveal())
	}
	src.releaseKey("x", 0)
	<-src.reads
	if err := <-j; err != nil {
		t.Fatalf("J: %v", err)
	}
	if got, _ := st.Get(ctx, "a"); got.Reveal() != "a2" {
		t.Fatalf("the Store went back from a2 to %q; changes seen: %+v", got.Reveal(), sub.Changes())
	}
}

// TestReloadNilButServesOlderRead: no network reordering needed. A
// Reload's fetches queue behind WithConcurrency; a Refresh of a key still
// queued reads the backend first (v1) and is applied; the backend rotates
// and the Reload's queued fetch reads v2. Reload must not return nil while
// the Store serves v1.
func TestReloadNilButServesOlderRead(t *testing.T) {
	src := newStepSrc()
	st := src.store(t, []secrets.Option{secrets.WithConcurrency(1)}, "a", "z")
	ctx := t.Context()
	src.block("a")
	src.block("z")
	reload := make(chan error, 1)
	go func() { reload <- st.Reload(ctx) }()
	src.waitStarted(t) // the Reload's first fetch; the other is queued
	src.mu.Lock()
	first := src.keys[0]
	src.mu.Unlock()
	queued := map[string]string{"a": "z", "z": "a"}[first]

	refreshed := make(chan error, 1)
	go func() { refreshed <- st.Refresh(ctx, queued) }()
	src.waitStarted(t)
	src.release(1) // the Refresh reads queued's v1
	<-src.reads
	if err := <-refreshed; err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	src.mem.Set(queued, queued+"2") // rotation
	src.unblock(first)
	src.release(0) // the Reload's first fetch
	<-src.reads
	src.waitStarted(t) // the Reload's queued fetch starts now
	src.unblock(queued)
	src.release(2)
	<-src.reads
	if err := <-reload; err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got, _ := st.Get(ctx, queued); got.Reveal() != queued+"2" {
		t.Fatalf("Reload returned nil after reading %s2, but the Store serves %q", queued, got.Reveal())
	}
}

// TestStaleRejectionIsExaminedAgain: a slow validator call rejects a2 (the
// database had not caught up) while a concurrent Refresh validates a2 and
// applies it. The rejection was reached against a value no longer served:
// it must be examined again, not recorded as a failure of the value served
// (a Reload naming a2 as rejected while a2 is served, a Status reporting a
// validation failure of it).
func TestStaleRejectionIsExaminedAgain(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	entered := make(chan struct{})
	gate := make(chan struct{})
	val := func(ctx context.Context, key string, c secrets.Versions) error {
		if c.Current.Reveal() != "a2" {
			return nil
		}
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 { // the first login attempt hangs, then fails
			close(entered)
			<-gate
			return errors.New("login failed")
		}
		return nil
	}
	f := newFixture(t, secrets.WithValidator(val))
	f.src.Set("a", "a1")
	f.get("a")
	f.src.Set("a", "a2")
	release := f.src.hold("a") // the two fetches overlap
	reloaded := make(chan error, 1)
	go func() { reloaded <- f.store.Reload(f.ctx()) }()
	f.src.waitFetches(t, "a", 2)
	refreshed := make(chan error, 1)
	go func() { refreshed <- f.store.Refresh(f.ctx(), "a") }()
	f.src.waitFetches(t, "a", 3)
	release()
	<-entered // one of them hangs in its validator; the other applies a2
	eventually(t, "a2 applied", func() bool { s, _ := f.store.Get(f.ctx(), "a"); return s.Reveal() == "a2" })
	close(gate)
	err := errors.Join(<-reloaded, <-refreshed)
	st := f.status("a")
	if got := f.get("a").Reveal(); got != "a2" {
		t.Fatalf("a = %q", got)
	}
	if err != nil || st.LastError != nil {
		t.Fatalf("a2 is served (validated by Refresh), yet Reload = %v and Status.LastError = %v, Failures = %d", err, st.LastError, st.Failures)
	}
}
