package memory_test

import (
	"context"
	"fmt"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/memory"
)

func Example() {
	src := memory.New()
	src.Set("api-key", "first")
	src.Set("api-key", "second")

	store, err := secrets.New(src)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	v, err := store.Versions(context.Background(), "api-key")
	if err != nil {
		panic(err)
	}
	fmt.Println("current:", v.Current.Reveal(), "version", v.Current.Version())
	fmt.Println("previous:", v.Previous.Reveal(), "version", v.Previous.Version())
	fmt.Println("printed:", v.Current)
	// Output:
	// current: second version 2
	// previous: first version 1
	// printed: [REDACTED]
}
