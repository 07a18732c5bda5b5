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

// Rotating a KV v2 secret by hand through the write side of the Source, as
// the rotation agent (package secrets/rotate) does with its record: stage a
// new value as pending (readers keep the current one), then promote it.
func ExampleSource_Stage() {
	src, err := vault.NewFromEnv(vault.WithMount("secret", 2))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	const key = "secret/mcp/db?field=password"

	v, err := src.Fetch(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	// A new version of secret/mcp/db, the password replaced, marked
	// pending in the secret's custom metadata; conditional on the version
	// read (secrets.ErrConflict if another writer got there first).
	pending, err := src.Stage(ctx, key, secrets.StageRequest{Current: v.Current.Version(), Value: []byte("n3w-pa55")})
	if err != nil {
		log.Fatal(err)
	}
	// ... set the password downstream and verify it, then:
	if err := src.Promote(ctx, key, pending, v.Current.Version()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("current version", pending, "previous", v.Current.Version())
}
