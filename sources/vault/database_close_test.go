package vault

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
)

// Fetches of two roles race Close with WithRevokeOnClose, some of them
// through the first login: every lease read is revoked, and every fetch
// either succeeds or fails with ErrClosed.
func TestDatabaseRevokeOnCloseRacesFetches(t *testing.T) {
	for round := 0; round < 20; round++ {
		f, srv := newFakeDB(t)
		var evmu sync.Mutex
		var evs []string
		clk := fakeclock.New(time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC))
		s, err := New(newClient(t, srv.URL, ""), WithAuth(f), WithDatabaseMount("database"), WithClock(clk), WithRevokeOnClose(), WithLeaseEvents(func(ev LeaseEvent) {
			evmu.Lock()
			evs = append(evs, fmt.Sprintf("%s %s %s %v", ev.Kind, ev.Key, ev.Version, ev.Err))
			evmu.Unlock()
		}))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		for g := 0; g < 6; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := []string{"database/creds/app", "database/creds/other"}[g%2]
				for i := 0; i < 30; i++ {
					r := s.FetchIfChanged(ctx, secrets.Request{Key: key})
					if r.Err != nil {
						if !errors.Is(r.Err, secrets.ErrClosed) {
							t.Errorf("fetch: %v", r.Err)
						}
						return
					}
				}
			}()
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		wg.Wait()
		f.mu.Lock()
		if len(f.leases) != 0 {
			t.Errorf("round %d: leases left %v; lease events %q", round, f.leases, evs)
		}
		f.mu.Unlock()
	}
}

// gatedAuth logs in through f once release is closed, and closes entered
// when the first login begins.
type gatedAuth struct {
	f                *fakeDB
	once             sync.Once
	entered, release chan struct{}
}

func (g *gatedAuth) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.release
	return g.f.Login(ctx, c)
}

// Close with WithRevokeOnClose overtakes the first login of a fetch that
// then reads a pair with the new token: Close revokes that lease too.
func TestDatabaseRevokeOnCloseDuringFirstLogin(t *testing.T) {
	f, srv := newFakeDB(t)
	g := &gatedAuth{f: f, entered: make(chan struct{}), release: make(chan struct{})}
	s, err := New(newClient(t, srv.URL, ""), WithAuth(g), WithDatabaseMount("database"), WithRevokeOnClose())
	if err != nil {
		t.Fatal(err)
	}
	fetched := make(chan error, 1)
	go func() {
		_, err := s.Fetch(context.Background(), "database/creds/app")
		fetched <- err
	}()
	<-g.entered
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for !s.isClosed() {
		runtime.Gosched()
	}
	close(g.release)
	if err := <-fetched; err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reads["database/creds/app"] != 1 || len(f.leases) != 0 {
		t.Errorf("%d pairs read, leases left %v", f.reads["database/creds/app"], f.leases)
	}
}
