package secrets_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// ctl is a source under the test's control: it counts fetches, reports each
// one as it starts, can hold fetches of a key at a gate, and can fail.
type ctl struct {
	mem *memory.Source

	mu      sync.Mutex
	fetches map[string]int
	gates   map[string]chan struct{}
	errs    map[string]error // "" fails every key
	changed chan struct{}    // closed and replaced at every fetch
}

func newCtl() *ctl {
	return &ctl{
		mem:     memory.New(),
		fetches: map[string]int{},
		gates:   map[string]chan struct{}{},
		errs:    map[string]error{},
		changed: make(chan struct{}),
	}
}

func (c *ctl) Set(key, value string) { c.mem.Set(key, value) }

// hold makes fetches of key wait until the returned function is called.
func (c *ctl) hold(key string) (release func()) {
	ch := make(chan struct{})
	c.mu.Lock()
	c.gates[key] = ch
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.gates, key)
			c.mu.Unlock()
			close(ch)
		})
	}
}

func (c *ctl) fail(key string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		delete(c.errs, key)
	} else {
		c.errs[key] = err
	}
}

func (c *ctl) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches[key]
}

func (c *ctl) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	c.mu.Lock()
	c.fetches[key]++
	gate := c.gates[key]
	err := c.errs[key]
	if err == nil {
		err = c.errs[""]
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return secrets.Versions{}, ctx.Err()
		}
	}
	if err != nil {
		return secrets.Versions{}, err
	}
	return c.mem.Fetch(ctx, key)
}

// waitFetches waits until n fetches of key have started.
func (c *ctl) waitFetches(t *testing.T, key string, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		got, ch := c.fetches[key], c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%d fetches of %q started, want %d", got, key, n)
		}
	}
}

// fixture is a Store over a ctl source with a fake clock, a fixed random
// fraction and a channel that receives after each background round.
type fixture struct {
	t      *testing.T
	src    *ctl
	clock  *fakeclock.Clock
	store  *secrets.Store
	rounds chan struct{}
}

func newFixture(t *testing.T, opts ...secrets.Option) *fixture {
	t.Helper()
	f := &fixture{t: t, src: newCtl(), clock: fakeclock.New(epoch), rounds: make(chan struct{}, 1024)}
	opts = append([]secrets.Option{secrets.WithClock(f.clock), secrets.WithTTL(time.Minute)}, opts...)
	st, err := secrets.New(f.src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	secrets.SetRand(st, func() float64 { return 0.5 })
	secrets.SetRoundHook(st, func() { f.rounds <- struct{}{} })
	f.store = st
	t.Cleanup(func() { st.Close() })
	return f
}

func (f *fixture) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	f.t.Cleanup(cancel)
	return ctx
}

func (f *fixture) get(key string) secrets.Secret {
	f.t.Helper()
	s, err := f.store.Get(f.ctx(), key)
	if err != nil {
		f.t.Fatalf("Get(%q): %v", key, err)
	}
	return s
}

// waitRound waits for the next background refresh round to finish.
func (f *fixture) waitRound() {
	f.t.Helper()
	select {
	case <-f.rounds:
	case <-time.After(10 * time.Second):
		f.t.Fatal("no refresh round finished")
	}
}

// advanceTo moves the clock to at, which must not be in the past.
func (f *fixture) advanceTo(at time.Time) {
	f.t.Helper()
	d := at.Sub(f.clock.Now())
	if d < 0 {
		f.t.Fatalf("advanceTo: %v is in the past", at)
	}
	f.clock.Advance(d)
}

func (f *fixture) status(key string) secrets.KeyStatus {
	f.t.Helper()
	st, ok := f.store.Status(key)
	if !ok {
		f.t.Fatalf("Status(%q): unknown key", key)
	}
	return st
}

// eventually yields until cond holds. cond must become true through work
// already under way (goroutines parking on a channel, say), for which there
// is no event to wait on; the deadline only turns a bug into a failure.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// waitBlockedIn waits until n goroutines have fn on their stack: calls that
// are parked inside fn, for which there is no event to wait on. It returns
// false if that does not happen within a generous deadline, which a test
// asserting that a call returned early relies on.
func waitBlockedIn(fn string, n int) bool {
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		m := runtime.Stack(buf, true)
		count := 0
		for _, g := range strings.Split(string(buf[:m]), "\n\n") {
			if strings.Contains(g, fn+"(") {
				count++
			}
		}
		if count >= n {
			return true
		}
		runtime.Gosched()
	}
	return false
}

// laggySrc reads the backend the moment a fetch starts and, for a held key,
// delivers the answer only when released: a response in transit.
type laggySrc struct {
	mem     *memory.Source
	mu      sync.Mutex
	gate    map[string]chan struct{}
	started chan string
	n       map[string]int
}

func newLaggy() *laggySrc {
	return &laggySrc{mem: memory.New(), gate: map[string]chan struct{}{}, started: make(chan string, 64), n: map[string]int{}}
}

func (l *laggySrc) hold(key string) func() {
	ch := make(chan struct{})
	l.mu.Lock()
	l.gate[key] = ch
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.gate, key)
			l.mu.Unlock()
			close(ch)
		})
	}
}

func (l *laggySrc) count(key string) int { l.mu.Lock(); defer l.mu.Unlock(); return l.n[key] }

func (l *laggySrc) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	v, err := l.mem.Fetch(ctx, key) // read now
	l.mu.Lock()
	l.n[key]++
	g := l.gate[key]
	l.mu.Unlock()
	l.started <- key
	if g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return secrets.Versions{}, ctx.Err()
		}
	}
	return v, err
}
