package rotate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestPostgresQuotesRoleNamesAndRevealsNoPassword: alternating roles whose names need
// quoting (a quote, a semicolon, SQL after it), rotated twice and then once
// with a failing probe (restore and scramble); a single role with such a
// name, self-service. Nothing but these roles changes (the victim role
// survives), and no password appears in slog output, events, webhook
// bodies, rotation records, errors or the server log (log_statement=all).
func TestPostgresQuotesRoleNamesAndRevealsNoPassword(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable connect_timeout=10", srv.Host, srv.Port)
	blue := `Blue "q" role`
	green := `green'; DROP ROLE victim; --`
	single := `Single"; DROP ROLE victim; --`
	q := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	pgExec(t, srv,
		"CREATE ROLE victim LOGIN PASSWORD 'victim-pw'",
		"CREATE ROLE "+q(blue)+" LOGIN PASSWORD 'initial-blue-pw'",
		"CREATE ROLE "+q(green)+" LOGIN PASSWORD 'initial-green-pw'",
		"CREATE ROLE "+q(single)+" LOGIN PASSWORD 'initial-single-pw'",
		"ALTER SYSTEM SET log_statement = 'all'", "ALTER SYSTEM SET log_min_messages = 'log'",
		"ALTER SYSTEM SET log_connections = on", "SELECT pg_reload_conf()")

	var logs syncBuf
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var posts syncBuf
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posts.Write(append(b, '\n'))
	}))
	defer hook.Close()
	var events syncBuf
	notify := func(_ context.Context, e rotate.Event) {
		fmt.Fprintf(&events, "%s %+v %v\n", e.Text(), e.Rotation, e.Err)
	}

	var seen []string // every value the store held
	collect := func(src *memory.Source) {
		v, _ := src.Fetch(context.Background(), "db")
		for _, s := range []secrets.Secret{v.Current, v.Previous, v.Pending} {
			if !s.IsZero() {
				var c struct{ Password string }
				_ = json.Unmarshal(s.Bytes(), &c)
				seen = append(seen, c.Password)
			}
		}
	}
	var errs []string
	var recs []string

	run := func(src *memory.Source, target *rotate.Postgres, wantErr bool) {
		t.Helper()
		clk := fakeclock.New(t0)
		a := newAgent(t, src, target, clk, "a", rotate.WithLogger(logger), rotate.WithNotify(notify),
			rotate.WithNotify(rotate.Webhook(hook.URL, nil, 10*time.Second, logger)),
			rotate.WithNotify(func(context.Context, rotate.Event) { collect(src) }))
		_, err := runClocked(t, clk, func() (rotate.Report, error) { return a.Rotate(ctxT(t), "db") })
		if (err != nil) != wantErr {
			t.Fatalf("err = %v", err)
		}
		if err != nil {
			errs = append(errs, err.Error(), fmt.Sprintf("%+v %#v", err, err))
		}
		rec, _ := src.LoadRotation(ctxT(t), "db")
		b, _ := json.Marshal(rec)
		recs = append(recs, string(b))
		pgAgree(t, srv, src, "db")
	}

	alt := memory.New()
	alt.Set("db", credJSON(blue, "initial-blue-pw"))
	collect(alt)
	tgt := &rotate.Postgres{DSN: dsn, Admin: srv.SuperURL(), Roles: []string{blue, green}}
	run(alt, tgt, false)
	run(alt, tgt, false)
	failing := *tgt
	failing.Probe = func(context.Context, *pgx.Conn) error { return errors.New("probe failed") }
	run(alt, &failing, true)

	one := memory.New()
	one.Set("db", credJSON(single, "initial-single-pw"))
	collect(one)
	run(one, &rotate.Postgres{DSN: dsn}, false)

	if err := login(ctxT(t), srv, secrets.NewSecretString("v", "1", credJSON("victim", "victim-pw"))); err != nil {
		t.Fatalf("the victim role was touched: %v", err)
	}
	texts := map[string]string{
		"slog": logs.String(), "events": events.String(), "webhook": posts.String(),
		"errors": strings.Join(errs, "\n"), "records": strings.Join(recs, "\n"), "server log": srv.Log(),
	}
	for _, pw := range seen {
		if pw == "" {
			continue
		}
		for where, text := range texts {
			if strings.Contains(text, pw) {
				i := strings.Index(text, pw)
				t.Errorf("a password appears in the %s: ...%s...", where, text[max(0, i-200):i])
			}
		}
	}
	if !strings.Contains(posts.String(), "rolled-back") {
		t.Error("no webhook post for the rollback")
	}
}

var _ = pgtest.SuperUser
