package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
)

// A Store reads fields of a JSON file, once by absolute path
// (file:///.../app.json#field) and once by name in the WithDir directory.
func Example() {
	dir, err := os.MkdirTemp("", "rotor-file-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	app := filepath.Join(dir, "app.json")
	if err := os.WriteFile(app, []byte(`{"db_password":"s3cr3t","api_key":"k-123"}`), 0o600); err != nil {
		panic(err)
	}

	src, err := file.New(file.WithDir(dir))
	if err != nil {
		panic(err)
	}
	store, err := secrets.New(nil, secrets.WithSource("file", src))
	if err != nil {
		panic(err)
	}
	defer store.Close()

	ctx := context.Background()
	pw, err := store.Get(ctx, "file://"+filepath.ToSlash(app)+"#db_password")
	if err != nil {
		panic(err)
	}
	key, err := store.Get(ctx, "file://app.json#api_key")
	if err != nil {
		panic(err)
	}
	fmt.Println("db_password:", pw.Reveal())
	fmt.Println("api_key:", key.Reveal())
	fmt.Println("printed:", pw)
	// Output:
	// db_password: s3cr3t
	// api_key: k-123
	// printed: [REDACTED]
}

// ExampleSource_Stage stages a new value beside a file, promotes it, and
// reads it from a Source started afterwards, as a restarted server would:
// the replaced value is still its previous version.
func ExampleSource_Stage() {
	dir, err := os.MkdirTemp("", "rotor-file-stage-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "api_key"), []byte("old-key"), 0o600); err != nil {
		panic(err)
	}
	ctx := context.Background()
	src, err := file.New(file.WithDir(dir))
	if err != nil {
		panic(err)
	}
	v, _ := src.Fetch(ctx, "api_key")
	id, err := src.Stage(ctx, "api_key", secrets.StageRequest{Current: v.Current.Version(), Value: []byte("new-key")})
	if err != nil {
		panic(err)
	}
	v, _ = src.Fetch(ctx, "api_key")
	fmt.Println("staged: current", v.Current.Reveal(), "pending", v.Pending.Reveal())
	if err := src.Promote(ctx, "api_key", id, v.Current.Version()); err != nil {
		panic(err)
	}

	restarted, _ := file.New(file.WithDir(dir))
	v, _ = restarted.Fetch(ctx, "api_key")
	fmt.Println("promoted: current", v.Current.Reveal(), "previous", v.Previous.Reveal())
	// Output:
	// staged: current old-key pending new-key
	// promoted: current new-key previous old-key
}
