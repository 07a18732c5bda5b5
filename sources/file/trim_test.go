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

// TestTrimNewlineStagedVersionKeepsItsIDWhenPromoted: with WithTrimNewline
// the value rule applies to every version, not only the current file's: a
// staged value that ends in a newline (every PEM key does) is served as
// Pending without it, under the id Stage returned; once promoted it is
// served as Current under that same id, so Promote called again (an agent
// resuming after a crash) is idempotent, and a restarted reader finds the
// previous version, whose copy is named after that id.
func TestTrimNewlineStagedVersionKeepsItsIDWhenPromoted(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "key.pem", "old-key\n")
	src := newSource(t, file.WithDir(dir), file.WithTrimNewline())
	ctx := ctxT(t)
	v, err := src.Fetch(ctx, "key.pem")
	if err != nil {
		t.Fatal(err)
	}
	if v.Current.Reveal() != "old-key" {
		t.Fatalf("current not trimmed")
	}
	id, err := src.Stage(ctx, "key.pem", secrets.StageRequest{Current: v.Current.Version(), Value: []byte("new-key\n")})
	if err != nil {
		t.Fatal(err)
	}
	if id != secrets.ContentVersion([]byte("new-key")) {
		t.Errorf("Stage returned %s, not the id of the value it will serve", id)
	}
	pv, err := src.Fetch(ctx, "key.pem")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Pending.Version() != id {
		t.Fatalf("pending id %s, Stage said %s", pv.Pending.Version(), id)
	}
	if pv.Pending.Reveal() != "new-key" {
		t.Errorf("the pending value is served with its newline; the current one would not be")
	}
	// The same value staged again, with or without its newline, is the same
	// version: Stage is idempotent on what is served.
	for _, again := range []string{"new-key\n", "new-key"} {
		if got, err := src.Stage(ctx, "key.pem", secrets.StageRequest{Current: v.Current.Version(), Value: []byte(again)}); err != nil || got != id {
			t.Errorf("Stage again (%d bytes): %s, %v; want %s", len(again), got, err, id)
		}
	}
	if err := src.Promote(ctx, "key.pem", id, v.Current.Version()); err != nil {
		t.Fatal(err)
	}
	after, err := src.Fetch(ctx, "key.pem")
	if err != nil {
		t.Fatal(err)
	}
	if after.Current.Version() != id || after.Current.Reveal() != "new-key" {
		t.Errorf("promoted version %s is current under id %s", id, after.Current.Version())
	}
	if err := src.Promote(ctx, "key.pem", id, v.Current.Version()); err != nil {
		t.Errorf("Promote again (idempotent): %v", err)
	}
	// A restarted reader: the previous copy must be found.
	fresh := newSource(t, file.WithDir(dir), file.WithTrimNewline())
	fv, err := fresh.Fetch(ctx, "key.pem")
	if err != nil {
		t.Fatal(err)
	}
	if fv.Previous.Version() != v.Current.Version() || fv.Previous.Reveal() != "old-key" {
		t.Errorf("a restarted reader sees previous %q, want %q", fv.Previous.Version(), v.Current.Version())
	}
}

// TestTrimNewlineRuleAppliesOnceToEveryVersion: the rule drops one line
// ending, once, from whatever file a version is read from. A current value
// that keeps a newline after the trim ("old\n\n" is served as "old\n")
// is served as the same value and id once it is the previous version,
// through its copy, in a restarted reader too; a pending file is discarded
// by the id it is served under; and a value that is a line ending alone is
// refused as an empty one.
func TestTrimNewlineRuleAppliesOnceToEveryVersion(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "pw", "old\n\n")
	src := newSource(t, file.WithDir(dir), file.WithTrimNewline())
	ctx := ctxT(t)
	v, err := src.Fetch(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if v.Current.Reveal() != "old\n" {
		t.Fatalf("current %q, want one newline dropped", v.Current.Reveal())
	}
	cur := v.Current.Version()
	if _, err := src.Stage(ctx, "pw", secrets.StageRequest{Current: cur, Value: []byte("\r\n")}); !errors.Is(err, secrets.ErrInvalid) {
		t.Errorf("Stage of a line ending alone: %v, want ErrInvalid", err)
	}
	if _, err := src.Stage(ctx, "pw", secrets.StageRequest{Current: cur, Value: []byte("old\n\n")}); !errors.Is(err, secrets.ErrInvalid) {
		t.Errorf("Stage of the value served as current: %v, want ErrInvalid", err)
	}
	id, err := src.Stage(ctx, "pw", secrets.StageRequest{Current: cur, Value: []byte("dropped\n")})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Discard(ctx, "pw", id); err != nil {
		t.Fatalf("Discard by the id Stage returned: %v", err)
	}
	if v, err := src.Fetch(ctx, "pw"); err != nil || !v.Pending.IsZero() {
		t.Fatalf("after Discard: pending %q, %v", v.Pending.Version(), err)
	}
	id, err = src.Stage(ctx, "pw", secrets.StageRequest{Current: cur, Value: []byte("new\n")})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Promote(ctx, "pw", id, cur); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*file.Source{"same": src, "restarted": newSource(t, file.WithDir(dir), file.WithTrimNewline())} {
		v, err := s.Fetch(ctx, "pw")
		if err != nil {
			t.Fatal(err)
		}
		if v.Current.Version() != id || v.Current.Reveal() != "new" {
			t.Errorf("%s reader: current %s, want %s", name, v.Current.Version(), id)
		}
		if v.Previous.Version() != cur || v.Previous.Reveal() != "old\n" {
			t.Errorf("%s reader: previous %s (%d bytes), want %s (4 bytes)", name, v.Previous.Version(), len(v.Previous.Reveal()), cur)
		}
	}
}
