package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// roundSrc is a BatchFetcher that sees in a batch what BatchGetSecretValue
// sees, as sources/awssm uses it: the current version only. A request with
// known versions whose current version id is the known one is answered
// Unchanged (or, when forced, with the value read again and the known
// previous version), however the previous version moved. Fetch reads every
// version; it can fail once, or be held after it has read.
type roundSrc struct {
	mu        sync.Mutex
	vals      map[string]secrets.Versions
	gate      chan struct{}    // Fetch waits for it, after reading, when set
	held      chan string      // receives the key of each Fetch held at the gate
	fail      map[string]error // the next Fetch of the key fails with it
	unchanged map[string]int   // the Unchanged answers FetchMany gave, by key
}

func newRoundSrc() *roundSrc {
	return &roundSrc{
		vals:      map[string]secrets.Versions{},
		held:      make(chan string, 8),
		fail:      map[string]error{},
		unchanged: map[string]int{},
	}
}

func (s *roundSrc) set(key string, v secrets.Versions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals[key] = v
}

func (s *roundSrc) failNext(key string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[key] = err
}

// unchangedAnswers returns how many times FetchMany answered key Unchanged.
func (s *roundSrc) unchangedAnswers(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unchanged[key]
}

// hold makes the next Fetch calls wait, once they have read the backend,
// until release is called.
func (s *roundSrc) hold() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.gate = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

func (s *roundSrc) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	s.mu.Lock()
	v, ok := s.vals[key]
	err, failing := s.fail[key]
	delete(s.fail, key)
	gate := s.gate
	s.mu.Unlock()
	switch {
	case failing:
		return secrets.Versions{}, err
	case !ok:
		return secrets.Versions{}, fmt.Errorf("%w: %s", secrets.ErrNotFound, key)
	}
	if gate != nil {
		s.held <- key
		select {
		case <-gate:
		case <-ctx.Done():
			return secrets.Versions{}, ctx.Err()
		}
	}
	return v, nil
}

func (s *roundSrc) FetchMany(ctx context.Context, reqs []secrets.Request) []secrets.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]secrets.Result, len(reqs))
	for i, q := range reqs {
		v, ok := s.vals[q.Key]
		same := !q.Known.Current.IsZero() && q.Known.Current.Version() == v.Current.Version()
		switch {
		case !ok:
			out[i].Err = fmt.Errorf("%w: %s", secrets.ErrNotFound, q.Key)
		case same && q.Forced:
			out[i].Versions = secrets.Versions{Current: v.Current, Previous: q.Known.Previous}
		case same:
			out[i].Unchanged = true
			s.unchanged[q.Key]++
		default:
			out[i].Versions = v
		}
	}
	return out
}

// roundStore returns a Store over src with a fake clock, a TTL of an hour,
// a fixed random fraction, and a channel that receives after each
// background round.
func roundStore(t *testing.T, src secrets.Source, opts ...secrets.Option) (*secrets.Store, *fakeclock.Clock, <-chan struct{}) {
	t.Helper()
	clk := fakeclock.New(epoch)
	st, err := secrets.New(src, append([]secrets.Option{secrets.WithClock(clk), secrets.WithTTL(time.Hour)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	secrets.SetRand(st, func() float64 { return 0.5 })
	rounds := make(chan struct{}, 16)
	secrets.SetRoundHook(st, func() { rounds <- struct{}{} })
	return st, clk, rounds
}

// recv waits for ch to receive, failing the test after a generous deadline.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// gateFor returns a validator that holds its calls for which hold returns
// true until release is called, and the channel that receives once per
// call held.
func gateFor(hold func(key string, c secrets.Versions) bool, verdict error) (v secrets.Validator, entered <-chan string, release func()) {
	ch := make(chan string, 8)
	gate := make(chan struct{})
	var once sync.Once
	v = func(ctx context.Context, key string, c secrets.Versions) error {
		if !hold(key, c) {
			return nil
		}
		ch <- key
		<-gate
		return verdict
	}
	return v, ch, func() { once.Do(func() { close(gate) }) }
}

func withoutPrevious(key string) func(string, secrets.Versions) bool {
	return func(k string, c secrets.Versions) bool { return k == key && c.Previous.IsZero() }
}

// TestRoundUnchangedKeepsConcurrentRefresh: the previous version of a is
// removed at the backend (a rotation's overlap ends). A Refresh reads that;
// while its validators run, a background round's batch, which sees the
// current version only, answers a Unchanged. That answer confirms the
// current version, not the previous one the Refresh saw removed: the
// Refresh must not be dropped as overtaken by it, and when it returns nil
// the removed version is no longer served.
func TestRoundUnchangedKeepsConcurrentRefresh(t *testing.T) {
	src := newRoundSrc()
	src.set("a", vers("a", "a1", "a-one", "a0", "a-zero"))
	src.set("b", vers("b", "b1", "b-one", "", ""))
	v, entered, release := gateFor(withoutPrevious("a"), nil)
	st, clk, rounds := roundStore(t, src, secrets.WithValidator(v))
	defer st.Close()
	defer release()
	ctx := spreadCtx(t)
	for _, k := range []string{"a", "b"} {
		if _, err := st.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	src.set("a", vers("a", "a1", "a-one", "", "")) // the previous version is removed
	refreshed := make(chan error, 1)
	go func() { refreshed <- st.Refresh(ctx, "a") }()
	recv(t, entered, "the Refresh's candidate to be validated")

	clk.Advance(2 * time.Hour) // a and b are due: one round, one batch
	recv(t, rounds, "the background round")
	if n := src.unchangedAnswers("a"); n != 1 {
		t.Fatalf("the round's batch answered a Unchanged %d times, want 1", n)
	}

	release()
	if err := recv(t, refreshed, "Refresh"); err != nil {
		t.Fatal(err)
	}
	vv, err := st.Versions(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !vv.Previous.IsZero() {
		t.Fatalf("Refresh returned nil, but the previous version it saw removed, %q, is served", vv.Previous.Version())
	}
	if vv.Current.Version() != "a1" {
		t.Fatalf("current version %q, want a1", vv.Current.Version())
	}
}

// TestRoundUnchangedDoesNotRestoreOlderCurrent: a Refresh reads a before a
// rotation; a round reads the rotated value in full and a later round's
// batch answers Unchanged, both while the Refresh validates. The Refresh's
// older read disagrees with the served value on the current version: it
// must never replace it.
func TestRoundUnchangedDoesNotRestoreOlderCurrent(t *testing.T) {
	src := newRoundSrc()
	src.set("a", vers("a", "a1", "a-one", "a0", "a-zero"))
	src.set("b", vers("b", "b1", "b-one", "", ""))
	v, entered, release := gateFor(withoutPrevious("a"), nil)
	st, clk, rounds := roundStore(t, src, secrets.WithValidator(v))
	defer st.Close()
	defer release()
	ctx := spreadCtx(t)
	for _, k := range []string{"a", "b"} {
		if _, err := st.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	src.set("a", vers("a", "a1", "a-one", "", ""))
	refreshed := make(chan error, 1)
	go func() { refreshed <- st.Refresh(ctx, "a") }()
	recv(t, entered, "the Refresh's candidate to be validated")

	src.set("a", vers("a", "a2", "a-two", "a1", "a-one")) // rotated
	clk.Advance(2 * time.Hour)
	recv(t, rounds, "the round that reads the rotation")
	if vv, _ := st.Versions(ctx, "a"); vv.Current.Version() != "a2" {
		t.Fatalf("after the first round, current %q, want a2", vv.Current.Version())
	}
	clk.Advance(2 * time.Hour)
	recv(t, rounds, "the round that finds a unchanged")
	if n := src.unchangedAnswers("a"); n != 1 {
		t.Fatalf("the second round's batch answered a Unchanged %d times, want 1", n)
	}

	release()
	if err := recv(t, refreshed, "Refresh"); err != nil {
		t.Fatal(err)
	}
	vv, err := st.Versions(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if vv.Current.Version() != "a2" || vv.Previous.Version() != "a1" {
		t.Fatalf("serves %q (previous %q), want a2 (previous a1): an older read went backwards",
			vv.Current.Version(), vv.Previous.Version())
	}
}

// TestRoundUnchangedKeepsRefreshRejection: as above, but the validators
// refuse the Refresh's candidate. The round's Unchanged answer did not look
// at the previous version: it is no newer read of what was refused, and the
// Refresh reports the refusal.
func TestRoundUnchangedKeepsRefreshRejection(t *testing.T) {
	src := newRoundSrc()
	src.set("a", vers("a", "a1", "a-one", "a0", "a-zero"))
	src.set("b", vers("b", "b1", "b-one", "", ""))
	refusal := errors.New("a consumer still uses the previous password")
	v, entered, release := gateFor(withoutPrevious("a"), refusal)
	st, clk, rounds := roundStore(t, src, secrets.WithValidator(v))
	defer st.Close()
	defer release()
	ctx := spreadCtx(t)
	for _, k := range []string{"a", "b"} {
		if _, err := st.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	src.set("a", vers("a", "a1", "a-one", "", ""))
	refreshed := make(chan error, 1)
	go func() { refreshed <- st.Refresh(ctx, "a") }()
	recv(t, entered, "the Refresh's candidate to be validated")
	clk.Advance(2 * time.Hour)
	recv(t, rounds, "the background round")
	if n := src.unchangedAnswers("a"); n != 1 {
		t.Fatalf("the round's batch answered a Unchanged %d times, want 1", n)
	}

	release()
	err := recv(t, refreshed, "Refresh")
	if !errors.Is(err, secrets.ErrRejected) {
		t.Fatalf("Refresh = %v, want the refusal of its candidate (ErrRejected)", err)
	}
	if vv, _ := st.Versions(ctx, "a"); vv.Previous.Version() != "a0" {
		t.Fatalf("previous %q served, want a0 kept", vv.Previous.Version())
	}
}

// TestRoundUnchangedKeepsRefreshFailure: a Refresh of a and c fails to read
// a, and is still validating c when a background round's batch answers a
// Unchanged. That answer read a's current version only: it does not stand
// for the read that failed, and the Refresh reports the failure.
func TestRoundUnchangedKeepsRefreshFailure(t *testing.T) {
	src := newRoundSrc()
	src.set("a", vers("a", "a1", "a-one", "a0", "a-zero"))
	src.set("b", vers("b", "b1", "b-one", "", ""))
	other := memory.New()
	other.Set("c", "c-one")
	var held atomic.Bool
	v, entered, release := gateFor(func(string, secrets.Versions) bool {
		return held.CompareAndSwap(false, true) // the Refresh's call; the round's comes after
	}, nil)
	st, clk, rounds := roundStore(t, src, secrets.WithSource("other", other), secrets.WithValidator(v, "other://c"))
	defer st.Close()
	defer release()
	ctx := spreadCtx(t)
	for _, k := range []string{"a", "b", "other://c"} {
		if _, err := st.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	src.failNext("a", fmt.Errorf("%w: the backend is unavailable", secrets.ErrTransient))
	other.Set("c", "c-two")
	refreshed := make(chan error, 1)
	go func() { refreshed <- st.Refresh(ctx, "a", "other://c") }()
	recv(t, entered, "the Refresh's candidate for c to be validated")

	clk.Advance(2 * time.Hour) // a round of a and b, and one of c
	recv(t, rounds, "a background round")
	recv(t, rounds, "the other background round")
	if n := src.unchangedAnswers("a"); n != 1 {
		t.Fatalf("the round's batch answered a Unchanged %d times, want 1", n)
	}

	release()
	err := recv(t, refreshed, "Refresh")
	var se *secrets.Error
	if !errors.As(err, &se) || se.Key != "a" || !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("Refresh = %v, want the failure to read a (ErrTransient)", err)
	}
}

// TestRefreshDoesNotTakeRoundUnchangedForItsFetch: Refresh of a key whose
// first load is under way waits for that load, which read the backend
// before the previous version was removed and Refresh was called. A
// background round's Unchanged answer that started after Refresh was called
// read the current version only: Refresh must still read the key in full.
func TestRefreshDoesNotTakeRoundUnchangedForItsFetch(t *testing.T) {
	src := newRoundSrc()
	src.set("a", vers("a", "a1", "a-one", "a0", "a-zero"))
	src.set("b", vers("b", "b1", "b-one", "", ""))
	applied := make(chan struct{}, 1)
	resume := make(chan struct{})
	var resumeOnce sync.Once
	unblock := func() { resumeOnce.Do(func() { close(resume) }) }
	obs := secrets.Observer{Refresh: func(ev secrets.RefreshEvent) {
		if ev.Key == "a" && ev.Initial {
			applied <- struct{}{}
			<-resume
		}
	}}
	st, clk, rounds := roundStore(t, src, secrets.WithObserver(obs))
	defer st.Close()
	defer unblock()
	ctx := spreadCtx(t)
	if _, err := st.Get(ctx, "b"); err != nil {
		t.Fatal(err)
	}

	release := src.hold()
	defer release()
	got := make(chan error, 1)
	go func() { _, err := st.Get(ctx, "a"); got <- err }()
	recv(t, src.held, "the first load to read a")

	src.set("a", vers("a", "a1", "a-one", "", "")) // the previous version is removed
	refreshed := make(chan error, 1)
	go func() { refreshed <- st.Refresh(ctx, "a") }()
	eventually(t, "Refresh waiting on the first load", func() bool { return secrets.Waiting(st) == 2 })
	release()
	recv(t, applied, "the first load to be applied")

	clk.Advance(2 * time.Hour)
	recv(t, rounds, "the background round")
	if n := src.unchangedAnswers("a"); n != 1 {
		t.Fatalf("the round's batch answered a Unchanged %d times, want 1", n)
	}

	unblock()
	if err := recv(t, got, "Get"); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, refreshed, "Refresh"); err != nil {
		t.Fatal(err)
	}
	vv, err := st.Versions(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !vv.Previous.IsZero() {
		t.Fatalf("Refresh returned nil, but the previous version %q, removed before it was called, is served", vv.Previous.Version())
	}
}
