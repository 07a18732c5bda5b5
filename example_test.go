package rotor_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/env"
	"github.com/rotorhq/rotor/sources/file"
)

// The quick start: credentials from files (a Kubernetes secret volume, say)
// and from the environment, read at the point of use and kept current.
func Example() {
	dir, _ := os.MkdirTemp("", "rotor-example-")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "db.json"), []byte(`{"user":"app","password":"first"}`), 0o600)
	os.Setenv("DB_PASSWORD", "file://"+filepath.Join(dir, "db.json")+"#password")
	defer os.Unsetenv("DB_PASSWORD")

	files, err := file.New(file.WithDir(dir))
	if err != nil {
		log.Fatal(err)
	}
	store, err := secrets.New(nil, secrets.WithSource("file", files), secrets.WithSource("env", env.New()))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()

	fmt.Println(store.Getenv("DB_PASSWORD"))

	// The secret rotates; the Store sees it (here at once, through Reload).
	os.WriteFile(filepath.Join(dir, "db.json"), []byte(`{"user":"app","password":"second"}`), 0o600)
	if err := store.Reload(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(store.Getenv("DB_PASSWORD"))
	v, _ := store.Versions(ctx, "file://"+filepath.Join(dir, "db.json")+"#password")
	fmt.Println("previous:", v.Previous.Reveal(), "printed:", v.Current)
	// Output:
	// first
	// second
	// previous: first printed: [REDACTED]
}
