package vault_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/vault"
)

// A pgxpool that logs in with dynamic credentials of Vault's database
// secrets engine (vault read database/creds/orders). The source renews the
// lease at two thirds of each term; when the role's max_ttl is near it reads
// a new pair, which the validator logs in with before the Store serves it,
// and the username changes. Connections opened before keep the old pair,
// which works until its lease ends: MaxConnLifetime well under a third of
// the role's default_ttl moves the pool to the new pair in time.
func Example_dynamicCredentials() {
	ctx := context.Background()
	src, err := vault.NewFromEnv(vault.WithDatabaseMount("database"))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()

	const creds = "vault://database/creds/orders"
	canLogIn := func(ctx context.Context, key string, v secrets.Versions) error {
		user, err := v.Current.Field("username")
		if err != nil {
			return err
		}
		pw, err := v.Current.Field("password")
		if err != nil {
			return err
		}
		cfg, err := pgx.ParseConfig("postgres://db:5432/orders")
		if err != nil {
			return err
		}
		cfg.User, cfg.Password = user.Reveal(), pw.Reveal()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}
	store, err := secrets.New(nil, secrets.WithSource("vault", src), secrets.WithValidator(canLogIn, creds))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // before src.Close: deferred calls run last in, first out

	cfg, err := pgxpool.ParseConfig("postgres://db:5432/orders")
	if err != nil {
		log.Fatal(err)
	}
	cfg.MaxConnLifetime = 5 * time.Minute // for a role with default_ttl of an hour
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		// One View, so that the username and the password are those of
		// one pair even if a new pair is swapped in between the two reads.
		v := secrets.ViewFrom(ctx, store)
		user, err := v.Get(ctx, creds+"#username")
		if err != nil {
			return err
		}
		pw, err := v.Get(ctx, creds+"#password")
		if err != nil {
			return err
		}
		cc.User, cc.Password = user.Reveal(), pw.Reveal()
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
}

// A static role (vault read database/static-creds/app): Vault changes the
// password of an existing user on its schedule, with no overlap. The Store
// reads the role again just after the rotation Vault announces; a call that
// meets the refused password in between refreshes it and runs again.
func Example_staticRole() {
	ctx := context.Background()
	src, err := vault.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	store, err := secrets.New(nil, secrets.WithSource("vault", src))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	const creds = "vault://database/static-creds/app"
	err = secrets.Call(ctx, store, func(ctx context.Context) error {
		pair, err := secrets.ViewFrom(ctx, store).Get(ctx, creds)
		if err != nil {
			return err
		}
		user, _ := pair.Field("username")
		pw, _ := pair.Field("password")
		cfg, err := pgx.ParseConfig("postgres://db:5432/app")
		if err != nil {
			return err
		}
		cfg.User, cfg.Password = user.Reveal(), pw.Reveal()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err // 28P01 after a rotation: Call refreshes and retries
		}
		return conn.Close(ctx)
	}, secrets.RetryOn(secrets.IsPostgresAuthError))
	if err != nil {
		log.Fatal(err)
	}
}

// Counting what happens to the leases of dynamic credentials, for a metric
// or a health check: renewals, new pairs, leases lost.
func ExampleWithLeaseEvents() {
	src, err := vault.NewFromEnv(vault.WithLeaseEvents(func(ev vault.LeaseEvent) {
		if ev.Kind == vault.LeaseLost {
			log.Printf("vault: the lease of %s (pair %s) was revoked", ev.Key, ev.Version)
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
}

// What a lease event says: the role, the pair's version, the time left,
// never the credential or the lease id.
func ExampleLeaseEvent() {
	ev := vault.LeaseEvent{Kind: vault.LeaseEnding, Key: "database/creds/orders", Version: "4f1c2a9e8b7d6c5e", TTL: 20 * time.Minute}
	fmt.Printf("%s: %s, pair %s, %v left\n", ev.Kind, ev.Key, ev.Version, ev.TTL)
	// Output:
	// ending: database/creds/orders, pair 4f1c2a9e8b7d6c5e, 20m0s left
}
