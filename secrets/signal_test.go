package secrets

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests are in package secrets so that they can replace os/signal
// (signalNotify, signalStop) and deliver signals to ReloadOnSignal exactly
// when they choose. The runtime relays a real signal to the handlers'
// channels at a moment no test controls, so a test that counts reloads
// caused by real signals would measure the scheduler, not ReloadOnSignal.

// sigSource is a Source under the test's control: every key has the same
// value, read when a fetch starts; it counts fetches and can hold them at a
// gate.
type sigSource struct {
	mu      sync.Mutex
	value   string
	fetches int
	gate    chan struct{}
	started chan struct{} // closed and replaced when a fetch starts
}

func newSigSource(value string) *sigSource {
	return &sigSource{value: value, started: make(chan struct{})}
}

func (s *sigSource) set(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.value = v
}

func (s *sigSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// hold makes fetches wait until the returned function is called.
func (s *sigSource) hold() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(gate)
		})
	}
}

func (s *sigSource) Fetch(ctx context.Context, key string) (Versions, error) {
	s.mu.Lock()
	s.fetches++
	v, gate := s.value, s.gate
	close(s.started)
	s.started = make(chan struct{})
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return Versions{}, ctx.Err()
		}
	}
	return Versions{Current: NewSecretString(key, ContentVersion([]byte(v)), v)}, nil
}

// waitFetches waits until n fetches have started.
func (s *sigSource) waitFetches(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch := s.fetches, s.started
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sigClock is a Clock whose time never moves: no background refresh ever
// comes due, so every fetch in these tests is one the test caused.
type sigClock struct{}

func (sigClock) Now() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }

func (sigClock) NewTimer(time.Duration) Timer {
	t := &sigTimer{}
	t.active.Store(true)
	return t
}

type sigTimer struct{ active atomic.Bool }

func (*sigTimer) C() <-chan time.Time        { return nil }
func (t *sigTimer) Stop() bool               { return t.active.Swap(false) }
func (t *sigTimer) Reset(time.Duration) bool { return t.active.Swap(true) }

func newSigStore(t *testing.T, src Source) *Store {
	t.Helper()
	st, err := New(src, WithClock(sigClock{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// sigCtx bounds a test's waits: the deadline only turns a bug into a failure.
func sigCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fakeRelay stands in for os/signal for one test: ReloadOnSignal's channel
// is handed to the test instead of to the runtime.
type fakeRelay struct {
	ch      chan<- os.Signal
	sigs    []os.Signal
	stopped chan struct{} // closed when signalStop is called with ch
	once    sync.Once
}

func replaceSignals(t *testing.T) *fakeRelay {
	r := &fakeRelay{stopped: make(chan struct{})}
	notify, stop := signalNotify, signalStop
	t.Cleanup(func() { signalNotify, signalStop = notify, stop })
	signalNotify = func(c chan<- os.Signal, sigs ...os.Signal) {
		if r.ch != nil {
			t.Errorf("signalNotify called twice")
		}
		r.ch, r.sigs = c, sigs
	}
	signalStop = func(c chan<- os.Signal) {
		if c == r.ch {
			r.once.Do(func() { close(r.stopped) })
		}
	}
	return r
}

// deliver hands sig to ReloadOnSignal as os/signal does: without waiting,
// dropping it if the channel is full.
func (r *fakeRelay) deliver(sig os.Signal) {
	select {
	case r.ch <- sig:
	default:
	}
}

// TestReloadOnSignalBurst delivers 1,000 signals: the first starts a reload,
// held at the source, and the other 999 arrive while it runs. They cost one
// more reload, which reads the value set during the burst.
func TestReloadOnSignalBurst(t *testing.T) {
	relay := replaceSignals(t)
	ctx := sigCtx(t)
	src := newSigSource("1")
	st := newSigStore(t, src)
	if _, err := st.Get(ctx, "k"); err != nil { // fetch 1
		t.Fatal(err)
	}
	sub := st.Subscribe()
	defer sub.Close()
	release := src.hold()
	defer release()
	stop := ReloadOnSignal(context.Background(), st)
	defer stop()

	relay.deliver(syscall.SIGHUP)
	if err := src.waitFetches(ctx, 2); err != nil { // the first reload, held, has read "1"
		t.Fatalf("no reload after a signal: %v", err)
	}
	src.set("2")
	for i := 0; i < 999; i++ {
		relay.deliver(syscall.SIGHUP)
	}
	release()
	changes, err := sub.Next(ctx)
	if err != nil || len(changes) != 1 || changes[0].Key != "k" {
		t.Fatalf("after the burst: changes %+v, err %v", changes, err)
	}
	if got, err := st.Get(ctx, "k"); err != nil || got.Reveal() != "2" {
		t.Fatalf("after the burst Get = %q, %v; want the value set during the burst", got.Reveal(), err)
	}
	// Nothing was delivered after the second reload began: once stop has
	// returned, no other reload can have started.
	stop()
	if n := src.count() - 1; n != 2 {
		t.Fatalf("a burst of 1,000 signals during a reload caused %d reloads, want 2", n)
	}
}

// TestReloadOnSignalSignals checks which signals ReloadOnSignal asks
// os/signal for.
func TestReloadOnSignalSignals(t *testing.T) {
	for _, tc := range []struct {
		name string
		give []os.Signal
		want []os.Signal
	}{
		{"default", nil, []os.Signal{syscall.SIGHUP}},
		{"given", []os.Signal{syscall.SIGUSR1, syscall.SIGUSR2}, []os.Signal{syscall.SIGUSR1, syscall.SIGUSR2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := replaceSignals(t)
			st := newSigStore(t, newSigSource("1"))
			stop := ReloadOnSignal(context.Background(), st, tc.give...)
			stop()
			if !slices.Equal(relay.sigs, tc.want) {
				t.Fatalf("ReloadOnSignal(%v) asked for %v, want %v", tc.give, relay.sigs, tc.want)
			}
		})
	}
}

// TestReloadOnSignalLetsGo checks that calling stop, ending ctx and closing
// the Store each give the signals back to os/signal and end the goroutine.
func TestReloadOnSignalLetsGo(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(cancel context.CancelFunc, st *Store, stop func())
	}{
		{"stop", func(_ context.CancelFunc, _ *Store, stop func()) { stop() }},
		{"context", func(cancel context.CancelFunc, _ *Store, _ func()) { cancel() }},
		{"close", func(_ context.CancelFunc, st *Store, _ func()) { st.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := replaceSignals(t)
			st := newSigStore(t, newSigSource("1"))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := ReloadOnSignal(ctx, st)
			tc.end(cancel, st, stop)
			select {
			case <-relay.stopped:
			case <-sigCtx(t).Done():
				t.Fatal("the signals were not given back to os/signal")
			}
			stop() // returns once the goroutine has; goleak checks it did
		})
	}
}

// listenHUP registers the test's own SIGHUP handler, standing for the
// application's, for the whole test: the process then never takes SIGHUP's
// default action (exit), and the test can see that ReloadOnSignal leaves
// other handlers alone.
func listenHUP(t *testing.T) chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	t.Cleanup(func() { signal.Stop(ch) })
	return ch
}

func hup(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

func drain(ch chan os.Signal) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestSIGHUPReloads sends real signals: ReloadOnSignal reloads on SIGHUP
// through os/signal, leaves the application's own handler its signals, and
// stops reloading once stopped.
func TestSIGHUPReloads(t *testing.T) {
	app := listenHUP(t)
	ctx := sigCtx(t)
	src := newSigSource("1")
	st := newSigStore(t, src)
	if _, err := st.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	src.set("2")
	sub := st.Subscribe()
	defer sub.Close()

	stop := ReloadOnSignal(context.Background(), st)
	hup(t)
	changes, err := sub.Next(ctx)
	if err != nil || len(changes) != 1 || changes[0].Key != "k" {
		t.Fatalf("after SIGHUP: changes %+v, err %v", changes, err)
	}
	if got, err := st.Get(ctx, "k"); err != nil || got.Reveal() != "2" {
		t.Fatalf("after SIGHUP Get = %q, %v", got.Reveal(), err)
	}
	stop()
	stop() // harmless

	// The application's own handler still receives SIGHUP, and the Store
	// no longer reloads on it: stop has unregistered the channel and
	// waited for the goroutine.
	drain(app)
	fetches := src.count()
	hup(t)
	select {
	case <-app:
	case <-ctx.Done():
		t.Fatal("the application's handler lost SIGHUP")
	}
	if c := src.count(); c != fetches {
		t.Fatalf("a reload ran after stop (%d fetches, was %d)", c, fetches)
	}
}

// TestSignalDispositionRestored runs a child process that reloads on SIGHUP,
// stops, and sends itself SIGHUP again: with the default disposition back, the
// signal ends the child.
func TestSignalDispositionRestored(t *testing.T) {
	if os.Getenv("ROTOR_SIGNAL_CHILD") == "1" {
		signalChild()
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestSignalDispositionRestored$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ROTOR_SIGNAL_CHILD=1")
	out, err := cmd.CombinedOutput()
	if signal.Ignored(syscall.SIGHUP) {
		// Started with SIGHUP ignored (under nohup, say): the previous
		// disposition is to ignore it, so the child must live on.
		if err != nil || string(out) != "reloaded\nstopped\nignored\n" {
			t.Fatalf("child with SIGHUP ignored at start: %v, output %q", err, out)
		}
		return
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child did not die of a signal: err %v, output:\n%s", err, out)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGHUP {
		t.Fatalf("child ended with %v, want killed by SIGHUP; output:\n%s", ee, out)
	}
	if string(out) != "reloaded\nstopped\n" {
		t.Fatalf("child output %q", out)
	}
}

func signalChild() {
	ignored := signal.Ignored(syscall.SIGHUP)
	src := newSigSource("v")
	st, err := New(src, WithClock(sigClock{}))
	if err != nil {
		os.Exit(3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := st.Get(ctx, "k"); err != nil {
		os.Exit(3)
	}
	stop := ReloadOnSignal(context.Background(), st)
	_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
	if err := src.waitFetches(ctx, 2); err != nil {
		os.Exit(4)
	}
	os.Stdout.WriteString("reloaded\n")
	stop()
	os.Stdout.WriteString("stopped\n")
	_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
	if ignored {
		// A signal a process sends itself is delivered before kill
		// returns: alive here, it was ignored, as before the call.
		os.Stdout.WriteString("ignored\n")
		os.Exit(0)
	}
	// The signal's default action ends the process; should it not, the
	// parent's timeout reports it.
	select {}
}
