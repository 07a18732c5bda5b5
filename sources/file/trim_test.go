package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
)

// TestTrimNewline: with WithTrimNewline one line ending is dropped, and the
// version id is that of the value served; without it the bytes are kept.
func TestTrimNewline(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("lf", "key-1\n")
	write("crlf", "key-1\r\n")
	write("two", "key-1\n\n")
	write("bare", "key-1")
	write("only", "\n")
	trim, err := file.New(file.WithDir(dir), file.WithTrimNewline())
	if err != nil {
		t.Fatal(err)
	}
	keep, err := file.New(file.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, want := range map[string]string{"lf": "key-1", "crlf": "key-1", "two": "key-1\n", "bare": "key-1"} {
		v, err := trim.Fetch(ctx, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := v.Current.Reveal(); got != want {
			t.Errorf("%s: trimmed to %q, want %q", name, got, want)
		}
		if v.Current.Version() != secrets.ContentVersion([]byte(want)) {
			t.Errorf("%s: the version id is not that of the value served", name)
		}
	}
	if _, err := trim.Fetch(ctx, "only"); !errors.Is(err, secrets.ErrInvalid) {
		t.Errorf("a file of a newline alone: %v, want ErrInvalid", err)
	}
	if v, err := keep.Fetch(ctx, "lf"); err != nil || v.Current.Reveal() != "key-1\n" {
		t.Errorf("without the option the newline went: %q, %v", v.Current.Reveal(), err)
	}
}
