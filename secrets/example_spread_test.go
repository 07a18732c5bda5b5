package secrets_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// A fleet whose instances all get SIGHUP at once spreads its reloads over a
// minute; a reload the program asks for itself starts at once.
func ExampleWithReloadSpread() {
	backend := memory.New()
	backend.Set("api-key", "first")
	store, err := secrets.New(backend, secrets.WithReloadSpread(time.Minute))
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ctx := context.Background()
	if _, err := store.Get(ctx, "api-key"); err != nil {
		panic(err)
	}

	// kill -HUP <pid> now reloads at a random point within the minute,
	// and again after the Store's backoff if the backend throttled it.
	stop := secrets.ReloadOnSignal(ctx, store)
	defer stop()

	backend.Set("api-key", "second")
	if err := store.Reload(ctx); err != nil {
		panic(err)
	}
	key, _ := store.Get(ctx, "api-key")
	fmt.Println(key.Reveal())
	// Output: second
}
