package secrets_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
)

// countingClock counts the timers made on a fake clock.
type countingClock struct {
	*fakeclock.Clock
	timers atomic.Int64
}

func (c *countingClock) NewTimer(d time.Duration) secrets.Timer {
	c.timers.Add(1)
	return c.Clock.NewTimer(d)
}

// A key that cannot be parsed (a typo in RefreshKeys) does not turn the
// wait into a busy loop: with the clock standing still, the wait parks.
func TestWaitDoesNotSpinOnUnparsableKey(t *testing.T) {
	clk := &countingClock{Clock: fakeclock.New(epoch)}
	st, err := secrets.New(newCtl(), secrets.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	before := clk.timers.Load()
	go func() {
		done <- secrets.Call(ctx, st, func(ctx context.Context) error {
			return &pgError{"28P01"} // the pool's password, read elsewhere
		}, secrets.RefreshKeys("pool#")) // a typo: an empty field
	}()
	deadline := time.Now().Add(10 * time.Second)
	for clk.timers.Load()-before < 10000 && parked() == 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	n := clk.timers.Load() - before
	cancel()
	<-done
	if n >= 10000 {
		t.Fatalf("the wait armed %d timers while the clock stood still: a busy loop", n)
	}
}

// A forced refresh made inside the wait is bounded by the wait's limit: a
// source that hangs does not keep the call past its deadline.
func TestWaitBoundedWhenARefreshHangs(t *testing.T) {
	f := newFixture(t, secrets.WithAuthWait(2*time.Second), secrets.WithFetchTimeout(time.Hour))
	f.src.Set("db", "revoked")
	f.get("db")
	h := secrets.WrapTool(f.store, query(f.store, &database{password: "unknown"}))
	done := make(chan error, 1)
	go func() { _, _, err := h(context.Background(), struct{}{}, struct{}{}); done <- err }()
	waitParked(t, 1)
	release := f.src.hold("db") // the backend stops answering
	defer release()
	f.clock.Advance(time.Second) // the wait forces a refresh, which hangs
	f.src.waitFetches(t, "db", 3)
	f.clock.Advance(time.Hour) // far past the wait's limit
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("the call is still waiting an hour (fake) after its 2 s limit: it sits in the hung refresh")
		release()
		<-done
	}
}

// A Transport inside a wrapped call waits and a newer credential comes,
// which fails too: the wrapped call retries, and the Transport in the retry
// does not wait a second time.
func TestRetriedCallDoesNotWaitAgain(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer upstream.Close()
	f := newFixture(t, secrets.WithAuthWait(2*time.Second))
	f.src.Set("key", "k1")
	f.get("key")
	client := &http.Client{Transport: secrets.NewTransport(f.store, "key")}
	defer client.CloseIdleConnections()
	done := make(chan error, 1)
	go func() {
		done <- secrets.Call(context.Background(), f.store, func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, upstream.URL, nil)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			return secrets.CheckResponse(resp)
		})
	}()
	waitParked(t, 1)
	f.src.Set("key", "k2")
	f.clock.Advance(time.Second) // the wait's refresh finds k2: the wait ends
	for {
		select {
		case <-done:
			return
		default:
		}
		if parked() > 0 {
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			f.store.Close() // release it
			<-done
			t.Fatalf("the call waited again after its first wait ended a second in (limit 2 s); %d requests so far", n)
		}
		runtime.Gosched()
	}
}

// RefreshKeys names a password a pool reads when it connects, first loaded
// during the call: the call counts changes from the version it used, so it
// refreshes and waits rather than retrying with the same password.
func TestKeyLoadedDuringTheCallIsWaitedFor(t *testing.T) {
	f := newFixture(t)
	f.src.Set("pool-password", "old")
	db := &database{password: "new"} // ALTER ROLE ran; the store has old
	h := secrets.WrapTool(f.store, func(ctx context.Context, _, _ int) (int, int, error) {
		pw, err := f.store.Get(ctx, "pool-password") // the pool's BeforeConnect
		if err != nil {
			return 0, 0, err
		}
		return 0, 0, db.login(pw.Reveal())
	}, secrets.RefreshKeys("pool-password"))
	done := make(chan error, 1)
	go func() { _, _, err := h(f.ctx(), 0, 0); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("the call returned %v at once after %d fetches and logins %s: it did not wait for the new password",
			err, f.src.count("pool-password"), db.tried())
	case <-func() chan struct{} {
		c := make(chan struct{})
		go func() {
			if waitBlockedIn("secrets.(*Store).awaitNewer", 1) {
				close(c)
			}
		}()
		return c
	}():
	}
	f.src.Set("pool-password", "new")
	f.clock.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
