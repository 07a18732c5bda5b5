package awssm_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

// A Store reads a JSON field of a rotated secret, with its previous version.
// Here the client talks to smtest, a fake Secrets Manager; in a program it
// is secretsmanager.NewFromConfig(cfg) with the program's aws.Config.
func Example() {
	fake := smtest.New()
	defer fake.Close()
	fake.Put("mcp/prod", `{"dbPassword":"old"}`)
	fake.Put("mcp/prod", `{"dbPassword":"new"}`) // a rotation: "old" is now AWSPREVIOUS

	src, err := awssm.New(secretsmanager.NewFromConfig(fake.Config()))
	if err != nil {
		panic(err)
	}
	store, err := secrets.New(nil, secrets.WithSource("awssm", src))
	if err != nil {
		panic(err)
	}
	defer store.Close()

	ctx := context.Background()
	v, err := store.Versions(ctx, "awssm://mcp/prod#dbPassword")
	if err != nil {
		panic(err)
	}
	fmt.Println("current:", v.Current.Reveal())
	fmt.Println("previous:", v.Previous.Reveal())
	fmt.Println("printed:", v.Current)

	_, err = store.Get(ctx, "awssm://mcp/missing")
	fmt.Println("missing is ErrNotFound:", errors.Is(err, secrets.ErrNotFound))
	// Output:
	// current: new
	// previous: old
	// printed: [REDACTED]
	// missing is ErrNotFound: true
}

// Polling a secret that has not changed costs one DescribeSecret call, and
// no value is read; after a rotation only the new version is read.
func ExampleSource_FetchIfChanged() {
	fake := smtest.New()
	defer fake.Close()
	fake.Put("api/key", "k1")

	src, err := awssm.New(secretsmanager.NewFromConfig(fake.Config()))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	known, err := src.Fetch(ctx, "api/key")
	if err != nil {
		panic(err)
	}

	fake.ResetCalls()
	r := src.FetchIfChanged(ctx, secrets.Request{Key: "api/key", Known: known})
	fmt.Println("unchanged:", r.Unchanged, "calls:", fake.Calls())

	fake.Put("api/key", "k2")
	fake.ResetCalls()
	r = src.FetchIfChanged(ctx, secrets.Request{Key: "api/key", Known: known})
	fmt.Println("now:", r.Versions.Current.Reveal(), "was:", r.Versions.Previous.Reveal(), "calls:", fake.Calls())
	// Output:
	// unchanged: true calls: map[DescribeSecret:1]
	// now: k2 was: k1 calls: map[DescribeSecret:1 GetSecretValue:1]
}
