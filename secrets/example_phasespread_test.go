package secrets_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

// Each instance of a fleet started together polls its backend first at a
// random point within the TTL, so the fleet's polls spread over the TTL
// instead of arriving in one burst every TTL.
func ExampleWithPhaseSpread() {
	backend := memory.New()
	backend.Set("api-key", "first")
	store, err := secrets.New(backend, secrets.WithTTL(time.Minute), secrets.WithPhaseSpread())
	if err != nil {
		panic(err)
	}
	defer store.Close()
	if _, err := store.Get(context.Background(), "api-key"); err != nil {
		panic(err)
	}
	st, _ := store.Status("api-key")
	fmt.Println(time.Until(st.NextRefresh) <= time.Minute)
	// Output: true
}
