package env_test

import (
	"context"
	"fmt"
	"os"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/env"
)

func Example() {
	os.Setenv("EXAMPLE_API_KEY", "k-123")
	defer os.Unsetenv("EXAMPLE_API_KEY")

	store, err := secrets.New(nil, secrets.WithSource("env", env.New()))
	if err != nil {
		panic(err)
	}
	defer store.Close()

	key, err := store.Get(context.Background(), "env://EXAMPLE_API_KEY")
	if err != nil {
		panic(err)
	}
	fmt.Println(key.Reveal() == "k-123", key.Source(), key)
	// Output: true env [REDACTED]
}
