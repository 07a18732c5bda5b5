package vaultsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/vault"
)

// runClocked runs fn while moving clk to each wait the agent arms (a poll,
// the overlap, a watch of another agent's record), so that they pass
// without sleeping. A timer further than waitLimit ahead is the end of a
// step's share of the lease (3/4 of an hour here), which a test must not
// reach: on a fake clock a step takes no time. The agents' poll interval
// and overlap are well within waitLimit.
func runClocked[T any](t *testing.T, clk *fakeclock.Clock, fn func() (T, error)) (T, error) {
	t.Helper()
	const waitLimit = 2 * time.Minute
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		now := clk.Now() // only this loop moves the clock
		armed := make(chan error, 1)
		go func() {
			armed <- clk.WaitFor(ctx, func(ds []time.Time) bool {
				for _, d := range ds {
					if d.Sub(now) <= waitLimit {
						return true
					}
				}
				return false
			})
		}()
		select {
		case r := <-done:
			cancel()
			<-armed
			return r.v, r.err
		case err := <-armed:
			if err != nil {
				t.Fatal(err)
			}
			first := now.Add(waitLimit)
			for _, d := range clk.Timers() {
				if d.Before(first) {
					first = d
				}
			}
			clk.Advance(max(first.Sub(now), 0))
		}
	}
}

// login logs in to srv with the credential a secret holds.
func login(ctx context.Context, srv *pgtest.Server, s secrets.Secret) error {
	var c struct{ Username, Password string }
	if err := json.Unmarshal(s.Bytes(), &c); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable", srv.Host, srv.Port))
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = c.Username, c.Password // any character, unescaped
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

// TestRotatePostgres runs the rotation agent over this source: the
// password of a PostgreSQL role, stored in a KV v2 secret, rotated by an
// agent whose token has the documented policy; then a rotation whose
// verification fails and is rolled back; then one whose agent stops after
// setting the password and another agent, with its own client and token,
// finishes it from the record.
func TestRotatePostgres(t *testing.T) {
	srv := pgtest.Start(t)
	v := vaulttest.Start(t)
	root := v.Client(t)
	ctx := testCtx(t)

	super, err := pgx.Connect(ctx, srv.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := super.Exec(ctx, "CREATE ROLE app LOGIN PASSWORD 'initial-app'"); err != nil {
		t.Fatal(err)
	}
	super.Close(context.Background())
	put(t, root, "secret", "pg/db", map[string]any{"username": "app", "password": "initial-app", "dbname": "postgres"})
	const key = "secret/pg/db"

	v.WritePolicy(t, "rotator", readPolicy("secret", "pg/")+writePolicy("secret", "pg/"))
	dsn := fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable connect_timeout=10", srv.Host, srv.Port)
	clk := fakeclock.New(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	agent := func(t *testing.T, owner string, target *rotate.Postgres, opts ...rotate.Option) (*rotate.Agent, *vault.Source) {
		c, _ := newClient(t, v, tokenWith(t, root, "rotator"))
		src := newSource(t, c)
		opts = append([]rotate.Option{rotate.WithClock(clk), rotate.WithLogger(quiet), rotate.WithOwner(owner),
			rotate.WithPollInterval(time.Minute), rotate.WithLease(time.Hour)}, opts...)
		a, err := rotate.New(src, target, 10*time.Second, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return a, src
	}
	// agree checks the end of a rotation: nothing pending, the record
	// closed, and the database taking the store's current credential.
	agree := func(t *testing.T, src *vault.Source) secrets.Versions {
		t.Helper()
		got := mustFetch(t, src, key)
		if !got.Pending.IsZero() {
			t.Fatalf("version %s is still pending", got.Pending.Version())
		}
		if rec, err := src.LoadRotation(ctx, key); err != nil || !rec.Step.Terminal() {
			t.Fatalf("the record: %+v, %v", rec, err)
		}
		if err := login(ctx, srv, got.Current); err != nil {
			t.Fatalf("the database refuses the store's current credential: %v", err)
		}
		return got
	}

	t.Run("rotate", func(t *testing.T) {
		a, src := agent(t, "agent-a", &rotate.Postgres{DSN: dsn})
		rep, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctx, key) })
		if err != nil {
			t.Fatal(err)
		}
		if rep.From != "1" || rep.To != "2" {
			t.Fatalf("report %+v, want version 2 over 1", rep)
		}
		got := agree(t, src)
		if got.Current.Version() != "2" || got.Previous.Version() != "1" {
			t.Fatalf("current %s previous %s", got.Current.Version(), got.Previous.Version())
		}
		if err := login(ctx, srv, got.Previous); err == nil {
			t.Fatal("the old password still logs in")
		}
	})

	t.Run("verify fails", func(t *testing.T) {
		probe := func(context.Context, *pgx.Conn) error { return errors.New("probe: table missing") }
		a, src := agent(t, "agent-a", &rotate.Postgres{DSN: dsn, Probe: probe})
		before := mustFetch(t, src, key)
		_, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctx, key) })
		if !errors.Is(err, rotate.ErrRolledBack) {
			t.Fatalf("err = %v, want ErrRolledBack", err)
		}
		got := agree(t, src)
		if got.Current.Version() != before.Current.Version() || got.Current.Reveal() != before.Current.Reveal() {
			t.Fatal("the current version changed")
		}
		md, err := root.KVv2("secret").GetMetadata(ctx, "pg/db")
		if err != nil {
			t.Fatal(err)
		}
		if st := md.Versions["3"]; md.CurrentVersion != 3 || st.DeletionTime.IsZero() {
			t.Fatalf("the failed version is not the deleted version 3: %+v", md.Versions)
		}
	})

	t.Run("crash after set, another agent finishes", func(t *testing.T) {
		crash := rotate.WithStepHook(func(_ string, step secrets.RotationStep, recorded bool) error {
			if step == secrets.StepSet && recorded {
				return errors.New("killed")
			}
			return nil
		})
		a, src := agent(t, "agent-a", &rotate.Postgres{DSN: dsn}, crash)
		_, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctx, key) })
		if !errors.Is(err, rotate.ErrCrashed) {
			t.Fatalf("err = %v, want ErrCrashed", err)
		}
		mid := mustFetch(t, src, key)
		if mid.Pending.IsZero() {
			t.Fatal("nothing is pending after a crash between set and promote")
		}
		// Another agent watches the record keep its revision for a lease,
		// then takes it over and finishes from the record.
		b, srcB := agent(t, "agent-b", &rotate.Postgres{DSN: dsn})
		rep, err := runClocked(t, clk, func() (rotate.Report, error) { return b.Rotate(ctx, key) })
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Resumed || rep.To != mid.Pending.Version() || rep.From != mid.Current.Version() {
			t.Fatalf("report %+v, want the resumed rotation of %s over %s", rep, mid.Pending.Version(), mid.Current.Version())
		}
		got := agree(t, srcB)
		if got.Current.Version() != mid.Pending.Version() || got.Previous.Version() != mid.Current.Version() {
			t.Fatalf("current %s previous %s", got.Current.Version(), got.Previous.Version())
		}
	})
}
