package vaultsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

// load runs calls through a pgxpool whose BeforeConnect reads the pair from
// a Store, as the README's example does, until stopped: each call asks
// PostgreSQL who it is, through secrets.Call.
type load struct {
	calls, failed atomic.Int64
	mu            sync.Mutex
	users         map[string]int // current_user → calls served as that user
	errs          []string
	newUser       chan struct{} // receives when a call is served as a user not seen before
	progress      chan struct{} // receives when a call ends
}

func newLoad() *load {
	return &load{users: map[string]int{}, newUser: make(chan struct{}, 1), progress: make(chan struct{}, 1)}
}

// waitCalls waits until n calls have ended.
func (l *load) waitCalls(ctx context.Context, n int64) error {
	for l.calls.Load() < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.progress:
		}
	}
	return nil
}

// served returns how many calls were served as user.
func (l *load) served(user string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.users[user]
}

func (l *load) run(ctx context.Context, st *secrets.Store, pool *pgxpool.Pool, key string, workers int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for ctx.Err() == nil {
				var who string
				err := secrets.Call(ctx, st, func(ctx context.Context) error {
					return pool.QueryRow(ctx, "SELECT current_user").Scan(&who)
				}, secrets.RefreshKeys(key), secrets.RetryOn(secrets.IsPostgresAuthError))
				if ctx.Err() != nil {
					return
				}
				l.calls.Add(1)
				l.mu.Lock()
				if err != nil {
					l.failed.Add(1)
					if len(l.errs) < 5 {
						l.errs = append(l.errs, err.Error())
					}
				} else {
					l.users[who]++
					if l.users[who] == 1 {
						select {
						case l.newUser <- struct{}{}:
						default:
						}
					}
				}
				l.mu.Unlock()
				select {
				case l.progress <- struct{}{}:
				default:
				}
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// newPool returns a pool that logs in with the pair the Store serves for key,
// read through the call's View so that username and password come from one
// snapshot, and that opens a new connection (a new login) at least every
// lifetime.
func newPool(t *testing.T, ctx context.Context, e *dbEnv, st *secrets.Store, key string, lifetime time.Duration) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable connect_timeout=30", e.pg.Host, e.pg.Port))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	cfg.MaxConnLifetime = lifetime
	cfg.MaxConnLifetimeJitter = 0
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		v := secrets.ViewFrom(ctx, st)
		user, err := v.Get(ctx, key+"#username")
		if err != nil {
			return err
		}
		pw, err := v.Get(ctx, key+"#password")
		if err != nil {
			return err
		}
		cc.User, cc.Password = user.Reveal(), pw.Reveal()
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// canLogIn is a validator: the candidate pair must log in.
func (e *dbEnv) canLogIn(ctx context.Context, _ string, cand secrets.Versions) error {
	var p pair
	if err := json.Unmarshal(cand.Current.Bytes(), &p); err != nil {
		return fmt.Errorf("not a JSON pair")
	}
	return e.loginAs(ctx, p)
}

// A Store serves a dynamic role's #username and #password to a pool under
// load through three lease cycles with short TTLs (default_ttl 10s, max_ttl
// 20s): each lease is renewed at two thirds of its term until a renewal
// cannot give a full term, and then a new pair is read, validated (it logs
// in) and served before the old lease ends, while the old pair drains. No
// call fails; every pair serves calls; each lease is renewed; Vault holds
// no lease but the current and previous ones, and none once the source
// closes (WithRevokeOnClose), with the users dropped.
func TestDatabaseDynamicUnderLoad(t *testing.T) {
	e := startDB(t)
	e.v.DynamicRole(t, "database", "app", "pg", 10*time.Second, 20*time.Second)
	ctx := testCtx(t)
	t0 := time.Now()
	log := newLeaseLog(time.Now)
	c, _ := newClient(t, e.v, e.appToken(t, true))
	src := newSource(t, c, vault.WithLeaseEvents(log.record), vault.WithRevokeOnClose())
	st, err := secrets.New(nil, secrets.WithSource("vault", src), secrets.WithTTL(time.Hour),
		secrets.WithValidator(e.canLogIn, dynKey))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	sub := st.Subscribe()
	defer sub.Close()

	first, err := st.Get(ctx, dynKey)
	if err != nil {
		t.Fatal(err)
	}
	type swap struct {
		at       time.Time
		from, to string
		user     string
	}
	swaps := []swap{{at: time.Now(), to: first.Version(), user: pairOf(t, first).Username}}

	pool := newPool(t, ctx, e, st, dynKey, 500*time.Millisecond)
	l := newLoad()
	stop := l.run(ctx, st, pool, dynKey, 4)
	for len(swaps) < 4 {
		changes, err := sub.Next(ctx)
		if err != nil {
			stop()
			t.Fatalf("waiting for the third new pair: %v; lease events %s", err, log)
		}
		for _, ch := range changes {
			if ch.Key != dynKey || ch.OldVersion == ch.NewVersion {
				continue // a field's notice, or the previous pair dropped
			}
			now, err := st.Get(ctx, dynKey)
			if err != nil {
				t.Fatal(err)
			}
			swaps = append(swaps, swap{at: time.Now(), from: ch.OldVersion, to: ch.NewVersion, user: pairOf(t, now).Username})
		}
	}
	// Let the pool serve the last pair too: wait for a call made as it.
	last := swaps[len(swaps)-1].user
	for l.served(last) == 0 {
		select {
		case <-ctx.Done():
			stop()
			t.Fatal("no call was served as the last pair's user")
		case <-l.newUser:
		}
	}
	stop()
	pool.Close()
	held := len(e.leases(t, dynPrefix+"app"))

	// The schedule, against the leases.
	var b strings.Builder
	fmt.Fprintf(&b, "lease events (seconds from the start):\n")
	log.mu.Lock()
	for i, ev := range log.evs {
		fmt.Fprintf(&b, "  %6.2f  %-8v %s ttl %v\n", log.at[i].Sub(t0).Seconds(), ev.Kind, ev.Version, ev.TTL.Round(100*time.Millisecond))
	}
	log.mu.Unlock()
	fmt.Fprintf(&b, "swaps: served from  pair              calls served  the pair before ends  margin\n")
	for i, s := range swaps {
		ends, margin := "-", "-"
		if i > 0 {
			end, _ := log.end(s.from)
			ends = fmt.Sprintf("%6.2f", end.Sub(t0).Seconds())
			margin = end.Sub(s.at).Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(&b, "  %6.2f  %s  %12d  %20s  %s\n", s.at.Sub(t0).Seconds(), s.to, l.served(s.user), ends, margin)
	}
	fmt.Fprintf(&b, "calls %d, failed %d; leases created %d, renewed %d, held in Vault before Close %d",
		l.calls.Load(), l.failed.Load(), log.count(vault.LeaseCreated), log.count(vault.LeaseRenewed), held)
	t.Log(b.String())

	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d of %d calls failed: %v", n, l.calls.Load(), l.errs)
	}
	for i, s := range swaps[1:] {
		end, ok := log.end(s.from)
		if !ok || !s.at.Before(end) {
			t.Errorf("swap %d to %s at %v, not before the old lease's end at %v", i+1, s.to, s.at.Sub(t0), end.Sub(t0))
		}
	}
	for _, s := range swaps {
		if l.served(s.user) == 0 {
			t.Errorf("no call was served as the user of pair %s", s.to)
		}
	}
	if created := log.count(vault.LeaseCreated); created != len(swaps) {
		t.Errorf("%d pairs read for %d served: %s", created, len(swaps), log)
	}
	if renewed := log.count(vault.LeaseRenewed); renewed < len(swaps)-1 {
		t.Errorf("%d renewals for %d leases replaced: %s", renewed, len(swaps)-1, log)
	}
	if held > 2 {
		t.Errorf("%d leases in Vault, want the current and previous ones at most", held)
	}

	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("Close revoking the leases: %v", err)
	}
	if n := len(e.leases(t, dynPrefix+"app")); n != 0 {
		t.Errorf("%d leases left in Vault after Close", n)
	}
	for _, s := range swaps {
		if e.roleExists(t, s.user) {
			t.Errorf("the user of pair %s still exists after Close", s.to)
		}
	}
	t.Logf("leases revoked by Close %d", log.count(vault.LeaseRevoked))
}
