package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

func Example() {
	// A backend; in production, sources/awssm, sources/vault or sources/file.
	backend := memory.New()
	backend.Set("db", `{"user":"app","password":"first"}`)

	store, err := secrets.New(backend)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ctx := context.Background()

	// Read at the point of use, not once at start-up: a loaded key is
	// served from memory, without a lock or an allocation.
	pw, err := store.Get(ctx, "db#password")
	if err != nil {
		panic(err)
	}
	fmt.Println("password:", pw.Reveal(), "version:", pw.Version())
	fmt.Println("printed or logged:", pw)

	// The backend rotates; the Store picks it up on its next poll, on
	// Reload, or at once with Refresh.
	backend.Set("db", `{"user":"app","password":"second"}`)
	if err := store.Reload(ctx); err != nil {
		panic(err)
	}
	v, _ := store.Versions(ctx, "db#password")
	fmt.Println("current:", v.Current.Reveal(), "previous:", v.Previous.Reveal())
	// Output:
	// password: first version: 1
	// printed or logged: [REDACTED]
	// current: second previous: first
}

// A validator tests a new credential before the Store swaps it in: here a
// stand-in for logging in to a database with the candidate password.
func ExampleWithValidator() {
	backend := memory.New()
	backend.Set("db-password", "good-1")

	canLogin := func(ctx context.Context, key string, cand secrets.Versions) error {
		if cand.Current.Reveal() == "typo" {
			return errors.New("password authentication failed")
		}
		return nil
	}
	store, _ := secrets.New(backend, secrets.WithValidator(canLogin, "db-password"))
	defer store.Close()
	ctx := context.Background()
	store.Get(ctx, "db-password")

	backend.Set("db-password", "typo")
	err := store.Reload(ctx)
	fmt.Println("reload rejected:", errors.Is(err, secrets.ErrRejected))
	pw, _ := store.Get(ctx, "db-password")
	fmt.Println("still serving:", pw.Reveal())
	// Output:
	// reload rejected: true
	// still serving: good-1
}

// Getenv replaces os.Getenv for credentials: a variable may hold a reference
// instead of the value.
func ExampleStore_Getenv() {
	backend := memory.New()
	backend.Set("prod/api", "k-123")
	store, _ := secrets.New(nil, secrets.WithSource("mem", backend))
	defer store.Close()

	os.Setenv("API_KEY", "mem://prod/api")
	os.Setenv("REGION", "eu-west-1")
	defer os.Unsetenv("API_KEY")
	defer os.Unsetenv("REGION")

	fmt.Println(store.Getenv("API_KEY"))
	fmt.Println(store.Getenv("REGION"))
	// Output:
	// k-123
	// eu-west-1
}

// A subscriber learns which keys changed, to re-dial a connection pool, say.
func ExampleStore_Subscribe() {
	backend := memory.New()
	backend.Set("api-key", "a")
	store, _ := secrets.New(backend)
	defer store.Close()
	ctx := context.Background()
	store.Get(ctx, "api-key")

	sub := store.Subscribe()
	defer sub.Close()

	backend.Set("api-key", "b")
	store.Refresh(ctx, "api-key")

	changes, _ := sub.Next(ctx)
	for _, c := range changes {
		fmt.Printf("%s: version %s -> %s\n", c.Key, c.OldVersion, c.NewVersion)
	}
	// Output:
	// api-key: version 1 -> 2
}

func ExampleStore_Status() {
	backend := memory.New()
	backend.Set("token", "t")
	store, _ := secrets.New(backend)
	defer store.Close()
	store.Get(context.Background(), "token")

	backend.Delete("token")
	err := store.Refresh(context.Background(), "token")
	fmt.Println("refresh:", errors.Is(err, secrets.ErrNotFound))

	st, _ := store.Status("token")
	fmt.Println("serving version", st.Version, "after", st.Failures, "failure")
	fmt.Println("healthy:", store.Health(context.Background()) == nil)
	// Output:
	// refresh: true
	// serving version 1 after 1 failure
	// healthy: true
}

// ReloadOnSignal is opt-in: nothing handles SIGHUP unless it is called.
func ExampleReloadOnSignal() {
	store, _ := secrets.New(memory.New())
	defer store.Close()

	stop := secrets.ReloadOnSignal(context.Background(), store, syscall.SIGHUP)
	defer stop()
	// kill -HUP <pid> now reloads every key, all or nothing.
}

// WithRequired names the keys a readiness probe depends on: they load from
// New on, and Health looks at them alone, so an optional key that is
// missing does not take the server out of rotation.
func ExampleWithRequired() {
	backend := memory.New()
	backend.Set("db", `{"password":"pw"}`)
	store, err := secrets.New(backend, secrets.WithRequired("db#password"))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ctx := context.Background()

	if _, err := store.Get(ctx, "db#password"); err != nil {
		panic(err)
	}
	_, err = store.Get(ctx, "feature-flag-token") // optional, and missing
	fmt.Println("optional key:", errors.Is(err, secrets.ErrNotFound))
	fmt.Println("healthy:", store.Health(ctx) == nil)
	// Output:
	// optional key: true
	// healthy: true
}

// Forget drops a key the program no longer reads: it stops being polled,
// retried and checked by Health.
func ExampleStore_Forget() {
	backend := memory.New()
	store, err := secrets.New(backend)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ctx := context.Background()

	_, err = store.Get(ctx, "retired-api-key")
	fmt.Println("missing:", errors.Is(err, secrets.ErrNotFound))
	fmt.Println("healthy before Forget:", store.Health(ctx) == nil)
	store.Forget("retired-api-key")
	fmt.Println("healthy after Forget:", store.Health(ctx) == nil)
	// Output:
	// missing: true
	// healthy before Forget: false
	// healthy after Forget: true
}
