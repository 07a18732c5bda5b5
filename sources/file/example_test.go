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
