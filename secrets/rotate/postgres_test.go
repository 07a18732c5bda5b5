package rotate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

func pgExec(t *testing.T, srv *pgtest.Server, sqls ...string) {
	t.Helper()
	conn, err := pgx.Connect(ctxT(t), srv.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range sqls {
		if _, err := conn.Exec(ctxT(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func credJSON(user, pw string) string {
	b, _ := json.Marshal(map[string]string{"username": user, "password": pw, "dbname": "postgres"})
	return string(b)
}

// login logs in with the credential a secret holds and runs a query.
func login(ctx context.Context, srv *pgtest.Server, s secrets.Secret) error {
	var c struct{ Username, Password string }
	if err := json.Unmarshal(s.Bytes(), &c); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable", srv.Host, srv.Port))
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = c.Username, c.Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

// pgAgree asserts that nothing is pending, the record is closed, and the
// database accepts the store's current credential.
func pgAgree(t *testing.T, srv *pgtest.Server, src *memory.Source, key string) secrets.Versions {
	t.Helper()
	v, err := src.Fetch(ctxT(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Pending.IsZero() {
		t.Fatal("a version is still pending")
	}
	if rec, _ := src.LoadRotation(ctxT(t), key); !rec.Step.Terminal() {
		t.Fatalf("the record is at %q", rec.Step)
	}
	if err := login(ctxT(t), srv, v.Current); err != nil {
		t.Fatalf("the database refuses the store's current credential: %v", err)
	}
	return v
}

func TestPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable connect_timeout=10", srv.Host, srv.Port)
	pgExec(t, srv,
		"ALTER SYSTEM SET log_statement = 'all'", "ALTER SYSTEM SET log_min_messages = 'log'", "SELECT pg_reload_conf()")

	role := 0
	newRole := func(t *testing.T) string {
		role++
		name := fmt.Sprintf("app%d", role)
		pgExec(t, srv, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD 'initial-%s'", name, name))
		return name
	}

	t.Run("single role, self-service", func(t *testing.T) {
		user := newRole(t)
		src := memory.New()
		src.Set("db", credJSON(user, "initial-"+user))
		clk := fakeclock.New(t0)
		a := newAgent(t, src, &rotate.Postgres{DSN: dsn}, clk, "a")
		if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
			t.Fatal(err)
		}
		v := pgAgree(t, srv, src, "db")
		if err := login(ctxT(t), srv, v.Previous); err == nil {
			t.Fatal("the old password still logs in")
		}
		var c struct{ Password, Dbname string }
		_ = json.Unmarshal(v.Current.Bytes(), &c)
		if c.Dbname != "postgres" {
			t.Fatal("the other members of the secret were not kept")
		}
		if strings.Contains(srv.Log(), c.Password) {
			t.Fatal("the new password appears in the server log")
		}
		if !strings.Contains(srv.Log(), "SCRAM-SHA-256$4096:") {
			t.Fatal("log_statement did not log the ALTER ROLE: the test proves nothing")
		}
	})

	t.Run("alternating roles", func(t *testing.T) {
		blue, green := newRole(t), newRole(t)
		src := memory.New()
		src.Set("db", credJSON(blue, "initial-"+blue))
		clk := fakeclock.New(t0)
		target := &rotate.Postgres{DSN: dsn, Admin: srv.SuperURL(), Roles: []string{blue, green}}
		a := newAgent(t, src, target, clk, "a")
		for i, want := range []string{green, blue, green} {
			if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
				t.Fatalf("rotation %d: %v", i, err)
			}
			v := pgAgree(t, srv, src, "db")
			var c struct{ Username string }
			_ = json.Unmarshal(v.Current.Bytes(), &c)
			if c.Username != want {
				t.Fatalf("rotation %d: current role %q, want %q", i, c.Username, want)
			}
			if err := login(ctxT(t), srv, v.Previous); err == nil {
				t.Fatalf("rotation %d: the old role's password was not revoked", i)
			}
		}
	})

	t.Run("alternating waits for old sessions", func(t *testing.T) {
		blue, green := newRole(t), newRole(t)
		src := memory.New()
		src.Set("db", credJSON(blue, "initial-"+blue))
		old, err := pgx.Connect(ctxT(t), srv.URL(blue, "initial-"+blue, "postgres"))
		if err != nil {
			t.Fatal(err)
		}
		clk := fakeclock.New(t0)
		var promoted time.Time
		target := &rotate.Postgres{DSN: dsn, Admin: srv.SuperURL(), Roles: []string{blue, green}}
		a := newAgent(t, src, target, clk, "a", rotate.WithOverlapDeadline(10*time.Minute),
			rotate.WithNotify(func(_ context.Context, e rotate.Event) {
				if e.Kind == rotate.EventPromoted {
					promoted = clk.Now()
				}
			}))
		// The session of the old role stays open through the rotation.
		if _, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") }); err != nil {
			t.Fatal(err)
		}
		if got := clk.Now().Sub(promoted); got < 10*time.Minute {
			t.Fatalf("revoked %v after the promotion with a session of the old role open, before the deadline", got)
		}
		old.Close(context.Background())
		pgAgree(t, srv, src, "db")
	})

	t.Run("verify fails", func(t *testing.T) {
		user := newRole(t)
		src := memory.New()
		src.Set("db", credJSON(user, "initial-"+user))
		clk := fakeclock.New(t0)
		probe := func(ctx context.Context, c *pgx.Conn) error { return errors.New("probe: table missing") }
		var seen []secrets.Versions
		a := newAgent(t, src, &rotate.Postgres{DSN: dsn, Probe: probe}, clk, "a",
			rotate.WithNotify(func(ctx context.Context, e rotate.Event) {
				v, _ := src.Fetch(ctx, "db")
				seen = append(seen, v)
			}))
		_, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") })
		if !errors.Is(err, rotate.ErrRolledBack) || !strings.Contains(err.Error(), "table missing") {
			t.Fatalf("err = %v", err)
		}
		v := pgAgree(t, srv, src, "db")
		for _, s := range seen {
			if s.Current.Version() != v.Current.Version() {
				t.Fatal("a consumer could have been served the failed value as current")
			}
		}
		if v.Current.Reveal() != credJSON(user, "initial-"+user) {
			t.Fatal("the current value changed")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		user := newRole(t)
		closed, _ := net.Listen("tcp", "127.0.0.1:0")
		deadAddr := closed.Addr().(*net.TCPAddr)
		closed.Close()
		for name, tc := range map[string]struct {
			value  string
			target *rotate.Postgres
			class  error
		}{
			"not JSON":        {"not json", &rotate.Postgres{DSN: dsn}, rotate.ErrNotRotatable},
			"no password":     {`{"username":"` + user + `"}`, &rotate.Postgres{DSN: dsn}, rotate.ErrNotRotatable},
			"missing role":    {credJSON("nosuchrole", "x"), &rotate.Postgres{DSN: dsn, Admin: srv.SuperURL()}, rotate.ErrNotRotatable},
			"wrong password":  {credJSON(user, "wrong"), &rotate.Postgres{DSN: dsn}, rotate.ErrNotRotatable},
			"not in the pair": {credJSON(user, "initial-"+user), &rotate.Postgres{DSN: dsn, Admin: srv.SuperURL(), Roles: []string{"x", "y"}}, rotate.ErrNotRotatable},
			"unreachable": {credJSON(user, "initial-"+user),
				&rotate.Postgres{DSN: fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable connect_timeout=5", deadAddr.Port)}, nil},
		} {
			t.Run(name, func(t *testing.T) {
				src := memory.New()
				src.Set("db", tc.value)
				clk := fakeclock.New(t0)
				a := newAgent(t, src, tc.target, clk, "a")
				_, err := a.Rotate(ctxT(t), "db")
				var re *rotate.Error
				if !errors.As(err, &re) || (tc.class != nil && !errors.Is(err, tc.class)) || (tc.class == nil && re.Class != nil) {
					t.Fatalf("err = %v, want an *Error of class %v", err, tc.class)
				}
				if strings.Contains(err.Error(), "initial-") {
					t.Fatal("the error holds a password")
				}
				rec, _ := src.LoadRotation(ctxT(t), "db")
				v, _ := src.Fetch(ctxT(t), "db")
				if rec.Revision != "" || !v.Pending.IsZero() || v.Current.Reveal() != tc.value {
					t.Fatal("bad input left something written")
				}
			})
		}
		// And the role still logs in as before.
		if err := login(ctxT(t), srv, secrets.NewSecretString("k", "1", credJSON(user, "initial-"+user))); err != nil {
			t.Fatal(err)
		}
	})

	// The crash matrix against the real database: single role and
	// alternating, every crash point, verify passing and failing.
	for _, alt := range []bool{false, true} {
		for _, failVerify := range []bool{false, true} {
			for _, step := range []secrets.RotationStep{secrets.StepStarted, secrets.StepStaged, secrets.StepSet, secrets.StepVerified,
				secrets.StepPromoted, secrets.StepOverlapped, secrets.StepDone, secrets.StepRollingBack} {
				for _, recorded := range []bool{false, true} {
					name := fmt.Sprintf("crash/alternating=%v/verifyFails=%v/%s/recorded=%v", alt, failVerify, step, recorded)
					if failVerify != (step == secrets.StepRollingBack) && (failVerify && step != secrets.StepStarted && step != secrets.StepStaged && step != secrets.StepSet) {
						continue // the rotation does not pass this point
					}
					if !failVerify && step == secrets.StepRollingBack || step == secrets.StepStarted && !recorded {
						continue // no such crash point
					}
					t.Run(name, func(t *testing.T) {
						user := newRole(t)
						target := &rotate.Postgres{DSN: dsn}
						if alt {
							other := newRole(t)
							target = &rotate.Postgres{DSN: dsn, Admin: srv.SuperURL(), Roles: []string{user, other}}
						}
						if failVerify {
							target.Probe = func(context.Context, *pgx.Conn) error { return errors.New("probe failed") }
						}
						src := memory.New()
						src.Set("db", credJSON(user, "initial-"+user))
						clk := fakeclock.New(t0)
						crashed := false
						a := newAgent(t, src, target, clk, "a", rotate.WithStepHook(func(_ string, s secrets.RotationStep, rec bool) error {
							if s == step && rec == recorded && !crashed {
								crashed = true
								return errors.New("injected crash")
							}
							return nil
						}))
						_, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") })
						if !crashed || !errors.Is(err, rotate.ErrCrashed) {
							t.Fatalf("crashed %v, err = %v", crashed, err)
						}
						// A consumer that tries current, then pending, gets in.
						v, _ := src.Fetch(ctxT(t), "db")
						if login(ctxT(t), srv, v.Current) != nil && (v.Pending.IsZero() || login(ctxT(t), srv, v.Pending) != nil) {
							t.Fatal("after the crash no stored credential logs in")
						}
						clk.Advance(2 * time.Minute)
						b := newAgent(t, src, target, clk, "b")
						_, err = runClocked(t, clk, func() (rotate.Report, error) { return b.Rotate(ctxT(t), "db") })
						switch {
						case failVerify && !errors.Is(err, rotate.ErrRolledBack):
							t.Fatalf("resumed: err = %v, want ErrRolledBack", err)
						case !failVerify && err != nil:
							t.Fatalf("resumed: %v", err)
						}
						v = pgAgree(t, srv, src, "db")
						if failVerify != (v.Current.Reveal() == credJSON(user, "initial-"+user)) {
							t.Fatal("the outcome is not the expected one")
						}
					})
				}
			}
		}
	}
}
