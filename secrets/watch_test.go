package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
)

// heldWatchSrc is a Watcher whose fetches read the value first and may then be
// held, as a fetch whose answer is still on the wire.
type heldWatchSrc struct {
	mu      sync.Mutex
	values  map[string]string
	gate    chan struct{} // non-nil: fetches wait for it after reading
	read    chan struct{} // receives when a held fetch has read its value
	changed func(string)
	ready   chan struct{} // closed once Watch has been called
	panics  any           // non-nil: Watch panics with it
}

func newHeldWatchSrc() *heldWatchSrc {
	return &heldWatchSrc{values: map[string]string{}, ready: make(chan struct{}), read: make(chan struct{}, 16)}
}

func (w *heldWatchSrc) set(k, v string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.values[k] = v
}

func (w *heldWatchSrc) Fetch(ctx context.Context, k string) (secrets.Versions, error) {
	w.mu.Lock()
	v, ok := w.values[k]
	gate := w.gate
	w.mu.Unlock()
	if gate != nil {
		w.read <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return secrets.Versions{}, ctx.Err()
		}
	}
	if !ok {
		return secrets.Versions{}, secrets.ErrNotFound
	}
	return secrets.Versions{Current: secrets.NewSecretString(k, secrets.ContentVersion([]byte(v)), v)}, nil
}

func (w *heldWatchSrc) Watch(ctx context.Context, changed func(string)) error {
	w.mu.Lock()
	w.changed = changed
	p := w.panics
	w.mu.Unlock()
	close(w.ready)
	if p != nil {
		panic(p)
	}
	<-ctx.Done()
	return nil
}

func (w *heldWatchSrc) notify(t *testing.T, key string) {
	t.Helper()
	select {
	case <-w.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch was never called")
	}
	w.mu.Lock()
	fn := w.changed
	w.mu.Unlock()
	fn(key)
}

func newWatchStore(t *testing.T, src *heldWatchSrc, opts ...secrets.Option) (*secrets.Store, *fakeclock.Clock, chan struct{}) {
	t.Helper()
	clock := fakeclock.New(epoch)
	st, err := secrets.New(src, append([]secrets.Option{secrets.WithClock(clock), secrets.WithTTL(time.Minute)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	rounds := make(chan struct{}, 64)
	secrets.SetRand(st, func() float64 { return 0.5 })
	secrets.SetRoundHook(st, func() { rounds <- struct{}{} })
	t.Cleanup(func() { st.Close() })
	return st, clock, rounds
}

// TestChangeNoticeDuringFirstLoad: a change notice that arrives while a
// key's first fetch (which read the old value) is in flight must bring the
// new value without waiting a TTL.
func TestChangeNoticeDuringFirstLoad(t *testing.T) {
	src := newHeldWatchSrc()
	src.set("k", "v1")
	gate := make(chan struct{})
	src.gate = gate
	st, _, rounds := newWatchStore(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	got := make(chan string, 1)
	go func() {
		s, err := st.Get(ctx, "k")
		if err != nil {
			t.Error(err)
		}
		got <- s.Reveal()
	}()
	<-src.read // the first fetch has read v1
	src.set("k", "v2")
	src.notify(t, "k")
	src.mu.Lock()
	src.gate = nil
	src.mu.Unlock()
	close(gate)
	if v := <-got; v != "v1" && v != "v2" {
		t.Fatalf("first load: %q", v)
	}
	// No clock advance: the notice alone must bring v2.
	for {
		s, err := st.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if s.Reveal() == "v2" {
			return
		}
		select {
		case <-rounds:
		case <-ctx.Done():
			t.Fatalf("still serving %q: the change notice during the first load was lost", s.Reveal())
		}
	}
}

// TestWatchPanicIsRecovered: a panic in a source's Watch must not kill the
// process nor reach a log with its value; polling goes on.
func TestWatchPanicIsRecovered(t *testing.T) {
	const canary = "hunter2-canary"
	src := newHeldWatchSrc()
	src.set("k", "v1")
	src.panics = "leaked " + canary
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, nil))
	st, clock, rounds := newWatchStore(t, src, secrets.WithLogger(logger), secrets.WithJitter(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := st.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	<-src.ready
	src.set("k", "v2")
	clock.Advance(time.Minute)
	for {
		s, _ := st.Get(ctx, "k")
		if s.Reveal() == "v2" {
			break
		}
		select {
		case <-rounds:
		case <-ctx.Done():
			t.Fatal("polling stopped after the watch panicked")
		}
	}
	logged := func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
	// The watch's goroutine logs the panic as it recovers from it.
	eventually(t, "the panic to be logged", func() bool { return strings.Contains(logged(), "panicked") })
	st.Close()
	if out := logged(); strings.Contains(out, canary) {
		t.Fatalf("the log holds the panic's value:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
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
