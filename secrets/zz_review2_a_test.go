package secrets_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

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

// A View made before a field key's first read pairs an old field with a new
// one: db#user is served from v1 in the View's snapshot, db#password (not
// read until now) is loaded from the Store's current v2.
func TestReview2ViewMixesVersionsOfOneValue(t *testing.T) {
	f := newFixture(t)
	f.src.Set("db", `{"user":"u1","password":"p1"}`)
	f.get("db#user") // the server reads the user name at start-up
	v := f.store.View()
	ctx := f.ctx()
	u, err := v.Get(ctx, "db#user")
	if err != nil {
		t.Fatal(err)
	}
	// Rotation lands in the middle of the request.
	f.src.Set("db", `{"user":"u2","password":"p2"}`)
	if err := f.store.Refresh(ctx, "db#user"); err != nil {
		t.Fatal(err)
	}
	p, err := v.Get(ctx, "db#password")
	if err != nil {
		t.Fatal(err)
	}
	if u.Reveal()+"/"+p.Reveal() != "u1/p1" {
		t.Fatalf("one View paired %s with %s: two versions of one value", u.Reveal(), p.Reveal())
	}
}

// Refresh of a key whose first load is under way joins that load, which read
// the backend before Refresh was called: Refresh returns nil and the Store
// serves the value from before the rotation, for a whole TTL.
func TestReview2RefreshJoinsStaleFirstLoad(t *testing.T) {
	src := newLaggy()
	st, err := secrets.New(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	src.mem.Set("k", "v1")
	release := src.hold("k")
	defer release()
	got := make(chan error, 1)
	go func() { _, err := st.Get(ctx, "k"); got <- err }()
	<-src.started // the first load has read v1; its answer is in transit

	src.mem.Set("k", "v2") // rotation; the caller knows and asks for a refresh
	refreshed := make(chan error, 1)
	go func() { refreshed <- st.Refresh(ctx, "k") }()
	eventually(t, "Refresh waiting on the load", func() bool { return secrets.Waiting(st) == 2 })
	release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	err = <-refreshed
	s, _ := st.Get(ctx, "k")
	if err == nil && s.Reveal() != "v2" {
		t.Fatalf("Refresh (called after the rotation) returned nil; Store serves %q; fetches %d", s.Reveal(), src.count("k"))
	}
}

// Reload (SIGHUP) while a key's first load is in flight: the load read the
// old value before the reload; Reload returns nil, and the old value is
// served until the next poll a TTL later.
func TestReview2ReloadMissesFirstLoadInFlight(t *testing.T) {
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
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	s, _ := st.Get(ctx, "k")
	stt, _ := st.Status("k")
	if s.Reveal() != "v2" && stt.NextRefresh.Sub(time.Now()) > time.Minute {
		t.Fatalf("Reload returned nil after the rotation; Store serves %q until %v", s.Reveal(), stt.NextRefresh.Sub(time.Now()).Round(time.Minute))
	}
}
