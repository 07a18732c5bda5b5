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

// ExampleSource_Stage stages a new value, which readers do not see as
// current until it is promoted.
func ExampleSource_Stage() {
	ctx := context.Background()
	src := memory.New()
	src.Set("db-password", "old")
	v, _ := src.Fetch(ctx, "db-password")

	id, err := src.Stage(ctx, "db-password", secrets.StageRequest{Current: v.Current.Version(), Value: []byte("new")})
	if err != nil {
		panic(err)
	}
	v, _ = src.Fetch(ctx, "db-password")
	fmt.Println("staged: current", v.Current.Reveal(), "pending", v.Pending.Reveal())

	if err := src.Promote(ctx, "db-password", id, v.Current.Version()); err != nil {
		panic(err)
	}
	v, _ = src.Fetch(ctx, "db-password")
	fmt.Println("promoted: current", v.Current.Reveal(), "previous", v.Previous.Reveal())
	// Output:
	// staged: current old pending new
	// promoted: current new previous old
}
