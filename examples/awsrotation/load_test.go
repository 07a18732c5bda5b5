package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

// progress counts events and lets a test wait, without sleeping, until a
// count is reached.
type progress struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func newProgress() *progress { return &progress{changed: make(chan struct{})} }

func (p *progress) add() {
	p.mu.Lock()
	p.n++
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func (p *progress) count() int { p.mu.Lock(); defer p.mu.Unlock(); return p.n }

// waitFor waits until the count reaches n.
func (p *progress) waitFor(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		got, ch := p.n, p.changed
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d: %w", got, n, ctx.Err())
		}
	}
}

// TestStoreUnderLoad: a server on rotor calls the database through a
// pgxpool whose BeforeConnect takes the credential from a Store over the
// awssm source (with a validator that logs in), from several goroutines,
// while the four steps run; the pool closes every connection it gets back,
// so every call dials a new one and logs in with what the Store serves at
// that moment. No call fails, in either scheme: in the
// single-user scheme the calls that meet the old password's refusal after
// setSecret adopt AWSPENDING and retry (secrets.Call), and in the
// alternating one the old user keeps working until the Store moves over.
// After each step the test waits until more calls, and more dials, have
// completed: it asserts what happened, never how fast.
func TestStoreUnderLoad(t *testing.T) {
	for _, scheme := range []string{"single", "alternating"} {
		t.Run(scheme, func(t *testing.T) {
			ctx := ctxT(t)
			e := newEnv(t, scheme)
			role := uniq("load_" + scheme[:3])
			arn := e.setup(t, ctx, scheme, role, "load-old-pw")
			key := "awssm://" + arn

			src, err := awssm.New(e.srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			var omu sync.Mutex
			outcomes := map[secrets.AuthRetryOutcome]int{}
			obs := secrets.Observer{AuthRetry: func(ev secrets.AuthRetryEvent) {
				omu.Lock()
				outcomes[ev.Outcome]++
				omu.Unlock()
			}}
			clk := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			st, err := secrets.New(nil, secrets.WithSource("awssm", src), secrets.WithClock(clk),
				secrets.WithTTL(time.Minute), secrets.WithJitter(0), secrets.WithObserver(obs),
				secrets.WithValidator(func(ctx context.Context, _ string, v secrets.Versions) error {
					u, _ := v.Current.Field("username")
					p, _ := v.Current.Field("password")
					return login(ctx, u.Reveal(), p.Reveal())
				}, key))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()

			dials := newProgress()
			cfg, err := pgxpool.ParseConfig(pg.URL("nobody", "nothing", "postgres") + "&pool_max_conns=4")
			if err != nil {
				t.Fatal(err)
			}
			// Churn: every connection is closed when released, so every
			// call dials anew. (A small MaxConnLifetime churns by the
			// machine's speed; this does by construction.)
			cfg.AfterRelease = func(*pgx.Conn) bool { return false }
			cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
				v, err := secrets.ViewFrom(ctx, st).Get(ctx, key)
				if err != nil {
					return err
				}
				u, _ := v.Field("username")
				p, _ := v.Field("password")
				cc.User, cc.Password = u.Reveal(), p.Reveal()
				dials.add()
				return nil
			}
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()

			query := func(ctx context.Context) error {
				return secrets.Call(ctx, st, func(ctx context.Context) error {
					var who string
					return pool.QueryRow(ctx, "SELECT current_user").Scan(&who)
				}, secrets.RefreshKeys(key))
			}
			if err := query(ctx); err != nil {
				t.Fatalf("a call before the rotation: %v", err)
			}

			calls := newProgress()
			var mu sync.Mutex
			var failed []error
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if err := query(ctx); err != nil {
							mu.Lock()
							failed = append(failed, err)
							mu.Unlock()
						}
						calls.add()
					}
				}()
			}
			// more waits until 12 more calls and 12 more dials have completed.
			more := func(after string) {
				t.Helper()
				wctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				if err := errors.Join(calls.waitFor(wctx, calls.count()+12), dials.waitFor(wctx, dials.count()+12)); err != nil {
					t.Fatalf("waiting for calls after %s: %v", after, err)
				}
			}
			more("the start")
			token := e.rotate(t, arn)
			for _, step := range []string{stepCreate, stepSet, stepTest, stepFinish} {
				if err := e.step(ctx, arn, token, step); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				more(step)
			}
			// The Store learns of finishSecret at its next poll; Reload
			// stands for it.
			if err := st.Reload(ctx); err != nil {
				t.Fatalf("Reload after finishSecret: %v", err)
			}
			more("the reload")
			close(stop)
			wg.Wait()

			if len(failed) > 0 {
				t.Fatalf("%d of %d calls failed during the rotation; the first: %v", len(failed), calls.count(), failed[0])
			}
			v, err := st.Versions(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if v.Current.Version() != token {
				t.Fatalf("the Store serves version %s after the rotation, want %s", v.Current.Version(), token)
			}
			e.finished(t, ctx, scheme, arn, token, alt(scheme, role), "load-old-pw")
			omu.Lock()
			defer omu.Unlock()
			t.Logf("%d calls, %d dials, none failed; retries after an authentication failure: %v", calls.count(), dials.count(), outcomes)
			switch {
			case outcomes[secrets.AuthRetryGaveUp] > 0:
				t.Fatalf("a call gave up after an authentication failure: %v", outcomes)
			case scheme == "single" && outcomes[secrets.AuthRetryAdopted] == 0:
				// Between setSecret and finishSecret only AWSPENDING logs
				// in: the first dial after setSecret is refused, and the
				// Store adopts the pending version.
				t.Fatalf("single: no call adopted AWSPENDING: %v", outcomes)
			case scheme == "alternating" && len(outcomes) > 0:
				// The old user keeps working: nothing is refused.
				t.Fatalf("alternating: calls met authentication failures: %v", outcomes)
			}
		})
	}
}

// alt is the user a rotation of user's secret moves to in scheme.
func alt(scheme, user string) string {
	if scheme == "single" {
		return user
	}
	u, _ := altUsername(user)
	return u
}
