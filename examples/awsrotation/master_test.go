package main

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/pgtest"
)

// TestMasterSecretOnAnotherPortIsRefused: the masterarn secret names the
// same host but another port (another cluster on that host, or a proxy).
// setSecret compares host, port and engine, refuses, and creates no role
// on the master's cluster.
func TestMasterSecretOnAnotherPortIsRefused(t *testing.T) {
	ctx := ctxT(t)
	other := pgtest.Start(t)
	e := newEnv(t, "alternating")
	role := uniq("mport")
	super(t, ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'old-port-pw'")
	m := map[string]any{"engine": "postgres", "host": pg.Host, "port": other.Port, "username": "postgres",
		"password": other.Password, "dbname": "postgres", "ssl": false}
	b, _ := json.Marshal(m)
	master := e.create(t, "db/"+role+"/master", string(b))
	arn := e.create(t, "db/"+role, dbJSON(role, "old-port-pw", map[string]any{"masterarn": master}))
	token := e.rotate(t, arn)
	e.steps(t, ctx, arn, token, stepCreate)
	setErr := e.step(ctx, arn, token, stepSet)

	conn, err := pgx.Connect(ctx, other.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role+"_clone").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(setErr, errBadSecret) || n > 0 {
		t.Fatalf("setSecret with a master secret on port %d (the secret's: %d): err %v; the clone role created on the master's cluster: %v",
			other.Port, pg.Port, setErr, n > 0)
	}
}
