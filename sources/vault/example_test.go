package vault_test

import (
	"context"
	"fmt"
	"log"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

// Reading a field of a KV v2 secret, with its previous version, through a
// Store. The client comes from VAULT_ADDR and VAULT_TOKEN; a program that
// logs in would add vault.WithAuth(method).
func Example() {
	src, err := vault.NewFromEnv(vault.WithMount("secret", 2))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()

	store, err := secrets.New(nil, secrets.WithSource("vault", src))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	ctx := context.Background()
	v, err := store.Versions(ctx, "vault://secret/mcp/db#password")
	if err != nil {
		log.Fatal(err) // e.g. secrets.ErrNotFound, secrets.ErrPermission
	}
	fmt.Println("current version", v.Current.Version(), "previous", v.Previous.Version())
	dsn := "postgres://app:" + v.Current.Reveal() + "@db/app"
	_ = dsn
}

// Watching the token's lifecycle, for a metric or a health check.
func ExampleWithTokenEvents() {
	src, err := vault.NewFromEnv(vault.WithTokenEvents(func(ev vault.TokenEvent) {
		if ev.Kind == vault.TokenLoginFailed {
			log.Printf("vault login failed: %v", ev.Err)
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
}
