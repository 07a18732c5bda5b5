package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/rotorhq/rotor/examples/mcpserver/server"
	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// TestDBWhoamiSessionEnded: PostgreSQL ends a pooled connection's session
// while it sits idle (pg_terminate_backend, as a rotation agent revoking a
// role does; idle_session_timeout), and the next call gets that connection
// from the pool, which pings only connections idle for over a second. The
// call must still answer, from a new session, rather than fail with SQLSTATE
// 57P01 or 57P05.
func TestDBWhoamiSessionEnded(t *testing.T) {
	pg := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "create role app login password 'app-password'"); err != nil {
		t.Fatal(err)
	}

	backend := memory.New()
	backend.Set("db", `{"username":"app","password":"app-password"}`)
	store, err := secrets.New(backend)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv, err := server.New(server.Config{
		Store:       store,
		DatabaseURL: fmt.Sprintf("postgres://%s:%d/postgres?sslmode=disable&pool_max_conns=1", pg.Host, pg.Port),
		DBCredKey:   "db",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.MCP.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "v0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	whoami := func() server.DBResult {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "db_whoami"})
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError {
			b, _ := json.Marshal(res.Content)
			t.Fatalf("db_whoami failed: %s", b)
		}
		b, _ := json.Marshal(res.StructuredContent)
		var out server.DBResult
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// gone waits until PostgreSQL has no session with pid.
	gone := func(pid int32) {
		t.Helper()
		for {
			var n int
			if err := admin.QueryRow(ctx, "select count(*) from pg_stat_activity where pid = $1", pid).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("session %d never ended", pid)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}

	// Terminated by an administrator: SQLSTATE 57P01.
	first := whoami()
	if _, err := admin.Exec(ctx, "select pg_terminate_backend($1)", first.PID); err != nil {
		t.Fatal(err)
	}
	gone(first.PID)
	second := whoami()
	if second.PID == first.PID {
		t.Fatalf("the call ran in session %d, which was terminated", first.PID)
	}

	// Ended by idle_session_timeout: SQLSTATE 57P05. The setting applies
	// to sessions that log in after it is made, so end the current one
	// first; the call after it opens a session that has the timeout.
	if _, err := admin.Exec(ctx, "alter role app set idle_session_timeout = 100"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "select pg_terminate_backend($1)", second.PID); err != nil {
		t.Fatal(err)
	}
	gone(second.PID)
	third := whoami()
	gone(third.PID)
	fourth := whoami()
	if fourth.PID == third.PID {
		t.Fatalf("the call ran in session %d, which the idle timeout ended", third.PID)
	}
}
