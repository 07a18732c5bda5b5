package server_test

import (
	"context"
	"log"
	"testing"

	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/examples/mcpserver/server"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The pgxpool pattern: the pool asks the Store for the credential each time
// it opens a connection, so after a rotation new connections log in with the
// new password while open ones drain; a validator logs in with a candidate
// before the Store swaps it in.
func ExampleNewPool() {
	const dbURL = "postgres://db.internal:5432/app?sslmode=verify-full"
	backend := memory.New()
	backend.Set("db", `{"username":"app","password":"s3cret"}`)
	store, err := secrets.New(backend, secrets.WithValidator(server.DBValidator(dbURL), "db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	pool, err := server.NewPool(dbURL, store, "db", 0)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	var one int
	_ = pool.QueryRow(context.Background(), "select 1").Scan(&one)
}
