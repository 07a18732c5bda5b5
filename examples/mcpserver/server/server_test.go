package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/examples/mcpserver/server"
	"github.com/rotorhq/rotor/internal/pgtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// TestDBValidatorPoolURL: a -db URL may carry pgxpool's own parameters
// (pool_max_conns and the like). The pool strips them before it connects;
// the validator must too, or PostgreSQL refuses every candidate with
// "unrecognized configuration parameter" (SQLSTATE 42704) and the password
// never rotates.
func TestDBValidatorPoolURL(t *testing.T) {
	pg := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "create role app login password 'right-password'"); err != nil {
		t.Fatal(err)
	}
	dbURL := fmt.Sprintf("postgres://%s:%d/postgres?sslmode=disable&pool_max_conns=8&pool_min_conns=1&pool_max_conn_lifetime=1m", pg.Host, pg.Port)
	validate := server.DBValidator(dbURL)
	cand := func(pw string) secrets.Versions {
		return secrets.Versions{Current: secrets.NewSecretString("db", "v", `{"username":"app","password":"`+pw+`"}`)}
	}
	if err := validate(ctx, "db", cand("right-password")); err != nil {
		t.Fatalf("the right password was rejected with a pool URL: %v", err)
	}
	if err := validate(ctx, "db", cand("wrong-password")); err == nil {
		t.Fatal("a wrong password was accepted")
	}

	// The pool built from the same URL serves with the same credential.
	backend := memory.New()
	backend.Set("db", `{"username":"app","password":"right-password"}`)
	store, err := secrets.New(backend, secrets.WithValidator(validate, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pool, err := server.NewPool(dbURL, store, "db", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := pool.Config().MaxConns; got != 8 {
		t.Errorf("pool_max_conns=8 gave a pool of %d", got)
	}
	var user string
	if err := pool.QueryRow(ctx, "select current_user").Scan(&user); err != nil || user != "app" {
		t.Fatalf("query through the pool: %q, %v", user, err)
	}
}
