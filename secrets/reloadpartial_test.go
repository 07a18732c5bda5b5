package secrets_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
)

// gatedBatch is a BatchFetcher that honours Request.Forced as
// sources/awssm does: a forced request whose current version id is the
// known one gets the current value read again with the known previous
// version beside it; otherwise it answers with what it holds. FetchMany can
// be held at its start, after it has taken its requests.
type gatedBatch struct {
	mu      sync.Mutex
	vals    map[string]secrets.Versions
	gate    chan struct{} // FetchMany waits for it when set
	entered chan struct{} // receives once per held FetchMany
}

func newGatedBatch() *gatedBatch {
	return &gatedBatch{vals: map[string]secrets.Versions{}, entered: make(chan struct{}, 16)}
}

func (g *gatedBatch) set(key string, v secrets.Versions) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.vals[key] = v
}

// hold makes the next FetchMany calls wait until release is called.
func (g *gatedBatch) hold() (release func()) {
	ch := make(chan struct{})
	g.mu.Lock()
	g.gate = ch
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.gate = nil
			g.mu.Unlock()
			close(ch)
		})
	}
}

func (g *gatedBatch) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.vals[key]
	if !ok {
		return secrets.Versions{}, fmt.Errorf("%w: %s", secrets.ErrNotFound, key)
	}
	return v, nil
}

func (g *gatedBatch) FetchMany(ctx context.Context, reqs []secrets.Request) []secrets.Result {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	out := make([]secrets.Result, len(reqs))
	for i, q := range reqs {
		v, err := g.Fetch(ctx, q.Key)
		switch {
		case err != nil:
			out[i].Err = err
		case q.Forced && q.Known.Current.Version() == v.Current.Version():
			out[i].Versions = secrets.Versions{Current: v.Current, Previous: q.Known.Previous}
		case !q.Forced && !q.Known.Current.IsZero() && q.Known.Current.Version() == v.Current.Version():
			out[i].Unchanged = true
		default:
			out[i].Versions = v
		}
	}
	return out
}

func vers(key, id, val, prevID, prev string) secrets.Versions {
	v := secrets.Versions{Current: secrets.NewSecretString(key, id, val)}
	if prevID != "" {
		v.Previous = secrets.NewSecretString(key, prevID, prev)
	}
	return v
}

// TestReloadDoesNotRestoreRemovedPrevious: the previous version of a is
// removed at the backend (a rotation's overlap ends). A Refresh reads that
// before a reload starts, and applies it while the reload's fetch is in
// flight: the reload, whose forced request carried what the Store held when
// it started, must not bring the removed previous version back.
func TestReloadDoesNotRestoreRemovedPrevious(t *testing.T) {
	src := newGatedBatch()
	src.set("a", vers("a", "a1", "a-one", "a0", "a-zero"))
	src.set("b", vers("b", "b1", "b-one", "", ""))
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	v := func(ctx context.Context, key string, c secrets.Versions) error {
		if key == "a" && c.Previous.IsZero() {
			entered <- struct{}{}
			<-release
		}
		return nil
	}
	clk := fakeclock.New(epoch)
	st, err := secrets.New(src, secrets.WithClock(clk), secrets.WithTTL(time.Hour), secrets.WithValidator(v))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := spreadCtx(t)
	for _, k := range []string{"a", "b"} {
		if _, err := st.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	src.set("a", vers("a", "a1", "a-one", "", "")) // the previous version is removed
	refreshed := make(chan error, 1)
	go func() { refreshed <- st.Refresh(ctx, "a") }()
	<-entered // the Refresh has read the backend and is validating

	unhold := src.hold()
	defer unhold()
	reloaded := make(chan error, 1)
	go func() { reloaded <- st.Reload(ctx) }()
	<-src.entered // the reload's requests carry what the Store holds now

	close(release)
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if vv, _ := st.Versions(ctx, "a"); !vv.Previous.IsZero() {
		t.Fatalf("after the Refresh, previous %q served", vv.Previous.Version())
	}
	unhold()
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	if vv, _ := st.Versions(ctx, "a"); !vv.Previous.IsZero() {
		t.Fatalf("after the reload, the removed previous version %q is served again", vv.Previous.Version())
	}
}

// TestReloadKeepsConcurrentRefresh: the previous version of a is removed
// at the backend; a Refresh reads that, and a reload that starts while the
// Refresh validates finds the current version unmoved and keeps the
// previous version it held. The Refresh returns nil: the Store must serve
// what it read, not the previous version the reload only assumed.
func TestReloadKeepsConcurrentRefresh(t *testing.T) {
	src := newGatedBatch()
	src.set("a", vers("a", "a1", "a-one", "a0", "a-zero"))
	src.set("b", vers("b", "b1", "b-one", "", ""))
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	v := func(ctx context.Context, key string, c secrets.Versions) error {
		if key == "a" && c.Previous.IsZero() {
			entered <- struct{}{}
			<-release
		}
		return nil
	}
	clk := fakeclock.New(epoch)
	st, err := secrets.New(src, secrets.WithClock(clk), secrets.WithTTL(time.Hour), secrets.WithValidator(v))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := spreadCtx(t)
	for _, k := range []string{"a", "b"} {
		if _, err := st.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	src.set("a", vers("a", "a1", "a-one", "", ""))
	refreshed := make(chan error, 1)
	go func() { refreshed <- st.Refresh(ctx, "a") }()
	<-entered
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if vv, _ := st.Versions(ctx, "a"); !vv.Previous.IsZero() {
		t.Fatalf("Refresh returned nil, but the previous version it saw removed, %q, is served", vv.Previous.Version())
	}
}
