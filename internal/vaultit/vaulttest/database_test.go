package vaulttest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
)

// TestDatabaseEngine checks that the database engine, with the builtin
// PostgreSQL plugin, makes dynamic and static credentials that log in to a
// real PostgreSQL.
func TestDatabaseEngine(t *testing.T) {
	pg := pgtest.Start(t)
	v := vaulttest.Start(t)
	v.MountDatabase(t, "database")
	v.ConnectPostgres(t, "database", "pg", vaulttest.Postgres{
		Host: pg.Host, Port: pg.Port, Username: pgtest.SuperUser, Password: pg.Password,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := v.Client(t)

	loginAs := func(user, password string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, pg.URL(user, password, "postgres"))
		if err != nil {
			t.Fatalf("log in as the role Vault gave: %v", err)
		}
		var who string
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close(ctx)
		if who != user {
			t.Fatalf("current_user = %q, want %q", who, user)
		}
	}

	v.DynamicRole(t, "database", "app", "pg", time.Hour, 2*time.Hour)
	sec, err := c.Logical().Read("database/creds/app")
	if err != nil || sec == nil {
		t.Fatalf("read database/creds/app: %v", err)
	}
	if sec.LeaseID == "" || sec.LeaseDuration != 3600 || !sec.Renewable {
		t.Fatalf("lease %q of %ds, renewable %v; want a renewable lease of an hour", sec.LeaseID, sec.LeaseDuration, sec.Renewable)
	}
	user, _ := sec.Data["username"].(string)
	pw, _ := sec.Data["password"].(string)
	loginAs(user, pw)

	conn, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE ROLE fixed LOGIN PASSWORD 'initial'`); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)
	v.StaticRole(t, "database", "fixed", "pg", "fixed", time.Hour)
	sec, err = c.Logical().Read("database/static-creds/fixed")
	if err != nil || sec == nil {
		t.Fatalf("read database/static-creds/fixed: %v", err)
	}
	if sec.LeaseID != "" || sec.Data["last_vault_rotation"] == nil || sec.Data["ttl"] == nil {
		t.Fatalf("static credentials: lease %q, data keys %v", sec.LeaseID, keys(sec.Data))
	}
	pw, _ = sec.Data["password"].(string)
	if pw == "initial" {
		t.Fatal("Vault did not set a password of its own")
	}
	loginAs("fixed", pw)
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
