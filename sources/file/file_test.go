package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/sourcetest"
	"github.com/rotorhq/rotor/sources/file"
)

// canary is a value that must never appear in an error.
const canary = "canary-5d1c0a7e-file-must-never-leak"

// dirHarness writes files atomically in a directory.
//
// Set also fetches the key through the source, as the Store does when the
// watch reports the change. The file source learns a file's previous
// content by reading it, so without that read the conformance suite's
// Previous test (first, second, third written back to back with no read in
// between) would see "first" as the previous of "third": the source never saw
// "second".
type dirHarness struct {
	src *file.Source
	dir string
	abs bool // keys are absolute paths; otherwise names in the WithDir dir
}

func (h *dirHarness) Key(name string) string {
	if h.abs {
		return filepath.Join(h.dir, name)
	}
	return name
}

func (h *dirHarness) Set(ctx context.Context, name, value string) error {
	if err := writeAtomic(h.dir, name, value); err != nil {
		return err
	}
	_, err := h.src.Fetch(ctx, h.Key(name))
	return err
}

func (h *dirHarness) Delete(_ context.Context, name string) error {
	return os.Remove(filepath.Join(h.dir, name))
}

// volumeHarness changes a Kubernetes-style volume; Set fetches afterwards
// for the reason dirHarness gives.
type volumeHarness struct {
	src *file.Source
	vol *volume
}

func (h *volumeHarness) Key(name string) string { return name }

func (h *volumeHarness) Set(ctx context.Context, name, value string) error {
	if err := h.vol.publish(h.vol.with(name, value)); err != nil {
		return err
	}
	_, err := h.src.Fetch(ctx, name)
	return err
}

func (h *volumeHarness) Delete(_ context.Context, name string) error {
	files := h.vol.with(name, "")
	delete(files, name)
	return h.vol.publish(files)
}

func TestConformance(t *testing.T) {
	t.Run("RelativeToDir", func(t *testing.T) {
		sourcetest.Run(t, sourcetest.Config{
			New: func(t *testing.T) (secrets.Source, sourcetest.Harness) {
				dir := t.TempDir()
				src := newSource(t, file.WithDir(dir))
				return src, &dirHarness{src: src, dir: dir}
			},
			KeepsPrevious: true,
		})
	})
	t.Run("AbsolutePaths", func(t *testing.T) {
		sourcetest.Run(t, sourcetest.Config{
			New: func(t *testing.T) (secrets.Source, sourcetest.Harness) {
				dir := t.TempDir()
				src := newSource(t)
				return src, &dirHarness{src: src, dir: dir, abs: true}
			},
			KeepsPrevious: true,
		})
	})
	t.Run("KubernetesVolume", func(t *testing.T) {
		sourcetest.Run(t, sourcetest.Config{
			New: func(t *testing.T) (secrets.Source, sourcetest.Harness) {
				vol := newVolume(t, map[string]string{"unrelated": "x"})
				src := newSource(t, file.WithDir(vol.dir))
				return src, &volumeHarness{src: src, vol: vol}
			},
			KeepsPrevious: true,
			NotWritable:   file.ErrNotWritable,
		})
	})
}

// TestKubernetesSwap rotates a Kubernetes-style volume the way kubelet does
// and checks that Watch reports it and that Fetch and FetchIfChanged see it,
// with the old value as Previous.
func TestKubernetesSwap(t *testing.T) {
	ctx := ctxT(t)
	vol := newVolume(t, map[string]string{"password": "old-pass", "username": "app"})
	src := newSource(t, file.WithDir(vol.dir), file.WithResync(0))

	v1, err := src.Fetch(ctx, "password")
	if err != nil {
		t.Fatal(err)
	}
	if v1.Current.Reveal() != "old-pass" || !v1.Previous.IsZero() {
		t.Fatalf("first read: current %q, previous zero %v", v1.Current.Reveal(), v1.Previous.IsZero())
	}
	calls := runWatch(t, src)
	// The watch reports a key once it watches its directory.
	waitKey(t, ctx, calls, "password")
	drain(calls)

	if r := src.FetchIfChanged(ctx, secrets.Request{Key: "password", Known: v1}); r.Err != nil || !r.Unchanged {
		t.Fatalf("FetchIfChanged before the swap: unchanged=%v err=%v", r.Unchanged, r.Err)
	}

	if err := vol.publish(vol.with("password", "new-pass")); err != nil {
		t.Fatal(err)
	}
	waitKey(t, ctx, calls, "password")

	r := src.FetchIfChanged(ctx, secrets.Request{Key: "password", Known: v1})
	if r.Err != nil || r.Unchanged {
		t.Fatalf("FetchIfChanged after the swap: unchanged=%v err=%v", r.Unchanged, r.Err)
	}
	if r.Versions.Current.Reveal() != "new-pass" || r.Versions.Previous.Reveal() != "old-pass" {
		t.Fatalf("after the swap: current %q previous %q", r.Versions.Current.Reveal(), r.Versions.Previous.Reveal())
	}
	if r.Versions.Previous.Version() != v1.Current.Version() {
		t.Fatalf("previous version id %q, want the old current %q", r.Versions.Previous.Version(), v1.Current.Version())
	}
	v2, err := src.Fetch(ctx, "password")
	if err != nil || !sameVersions(v2, r.Versions) {
		t.Fatalf("Fetch after the swap: %v, versions differ from FetchIfChanged's", err)
	}
	// The other key of the volume did not change.
	u, err := src.Fetch(ctx, "username")
	if err != nil || u.Current.Reveal() != "app" || !u.Previous.IsZero() {
		t.Fatalf("username after the swap: err=%v", err)
	}
}

func sameVersions(a, b secrets.Versions) bool {
	return a.Current.Version() == b.Current.Version() && a.Previous.Version() == b.Previous.Version() &&
		a.Current.Reveal() == b.Current.Reveal() && a.Previous.Reveal() == b.Previous.Reveal()
}

// TestKubernetesRotationReachesStore checks that a Store over the source
// serves a rotated Kubernetes secret as soon as the watch sees the swap: the
// Store's clock never moves.
func TestKubernetesRotationReachesStore(t *testing.T) {
	ctx := ctxT(t)
	vol := newVolume(t, map[string]string{"password": "old-pass", "username": "app"})
	src := &watchSpy{Source: newSource(t, file.WithDir(vol.dir), file.WithResync(0)), calls: make(chan string, 1024)}
	clk := fakeclock.New(time.Date(2026, 11, 22, 2, 20, 0, 0, time.UTC))
	store, err := secrets.New(nil, secrets.WithSource("file", src), secrets.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sub := store.Subscribe()
	defer sub.Close()

	const key = "file://password"
	if got, err := store.Get(ctx, key); err != nil || got.Reveal() != "old-pass" {
		t.Fatalf("Get before the rotation: %v", err)
	}
	waitKey(t, ctx, src.calls, "password") // the watch covers the volume

	if err := vol.publish(vol.with("password", "new-pass")); err != nil {
		t.Fatal(err)
	}
	changes, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("waiting for the Store to apply the rotation: %v", err)
	}
	if len(changes) != 1 || changes[0].Key != key {
		t.Fatalf("changes = %+v, want one for %s", changes, key)
	}
	v, err := store.Versions(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if v.Current.Reveal() != "new-pass" || v.Previous.Reveal() != "old-pass" {
		t.Fatalf("after the rotation: current %q previous %q", v.Current.Reveal(), v.Previous.Reveal())
	}
	if changes[0].NewVersion != v.Current.Version() || changes[0].OldVersion != v.Previous.Version() {
		t.Fatalf("change %+v does not match versions %q, %q", changes[0], v.Current.Version(), v.Previous.Version())
	}
}

// TestJSONFieldsThroughStore reads fields of a JSON file through a Store,
// by absolute path and by name in the directory, and rotates it.
func TestJSONFieldsThroughStore(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	mustWrite(t, dir, "app.json", `{"db_password":"pw-1","api_key":"key-1"}`)
	src := newSource(t, file.WithDir(dir), file.WithResync(0))
	store, err := secrets.New(nil, secrets.WithSource("file", src))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	abs := "file://" + filepath.ToSlash(filepath.Join(dir, "app.json")) + "#db_password"
	if !strings.HasPrefix(abs, "file:///") {
		t.Fatalf("reference %q is not of the form file:///path", abs)
	}
	rel := "file://app.json#api_key"
	if got, err := store.Get(ctx, abs); err != nil || got.Reveal() != "pw-1" {
		t.Fatalf("Get(%s): %v", abs, err)
	}
	if got, err := store.Get(ctx, rel); err != nil || got.Reveal() != "key-1" {
		t.Fatalf("Get(%s): %v", rel, err)
	}

	mustWrite(t, dir, "app.json", `{"db_password":"pw-2","api_key":"key-1"}`)
	if err := store.Refresh(ctx, abs); err != nil {
		t.Fatal(err)
	}
	v, err := store.Versions(ctx, abs)
	if err != nil || v.Current.Reveal() != "pw-2" || v.Previous.Reveal() != "pw-1" {
		t.Fatalf("after the rotation: err=%v current %q previous %q", err, v.Current.Reveal(), v.Previous.Reveal())
	}
	if v.Current.Key() != abs || v.Current.Source() != "file" {
		t.Fatalf("secret stamped key %q source %q", v.Current.Key(), v.Current.Source())
	}
}

// TestEmptyFileKeepsLastGood: an empty file is refused and the Store keeps
// serving the value before it.
func TestEmptyFileKeepsLastGood(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	mustWrite(t, dir, "token", "good-token")
	src := newSource(t, file.WithDir(dir), file.WithResync(0))
	store, err := secrets.New(nil, secrets.WithSource("file", src))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const key = "file://token"
	if got, err := store.Get(ctx, key); err != nil || got.Reveal() != "good-token" {
		t.Fatalf("Get: %v", err)
	}

	mustWrite(t, dir, "token", "")
	if _, err := src.Fetch(ctx, "token"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Fetch of an empty file: err = %v, want ErrInvalid", err)
	}
	if err := store.Refresh(ctx, key); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Refresh over an empty file: err = %v, want ErrInvalid", err)
	}
	if got, err := store.Get(ctx, key); err != nil || got.Reveal() != "good-token" {
		t.Fatalf("Get after the empty file: err=%v, want the last good value", err)
	}
	st, ok := store.Status(key)
	if !ok || !errors.Is(st.LastError, secrets.ErrInvalid) {
		t.Fatalf("Status(%s).LastError = %v, want ErrInvalid", key, st.LastError)
	}

	// Once the file holds a value again, it is served, with the last good one
	// as previous.
	mustWrite(t, dir, "token", "next-token")
	if err := store.Refresh(ctx, key); err != nil {
		t.Fatal(err)
	}
	v, err := store.Versions(ctx, key)
	if err != nil || v.Current.Reveal() != "next-token" || v.Previous.Reveal() != "good-token" {
		t.Fatalf("after recovery: err=%v current %q previous %q", err, v.Current.Reveal(), v.Previous.Reveal())
	}
}

// TestHalfWrittenJSON: a truncated JSON file is refused, whatever field the
// Store wants from it.
func TestHalfWrittenJSON(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	mustWrite(t, dir, "app.json", `{"password":"`+canary+`"}`)
	src := newSource(t, file.WithDir(dir), file.WithResync(0))
	store, err := secrets.New(nil, secrets.WithSource("file", src))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const key = "file://app.json"
	if got, err := store.Get(ctx, key+"#password"); err != nil || got.Reveal() != canary {
		t.Fatalf("Get: %v", err)
	}
	if got, err := store.Get(ctx, key); err != nil || got.Reveal() != `{"password":"`+canary+`"}` {
		t.Fatalf("Get of the whole file: %v", err)
	}
	mustWrite(t, dir, "app.json", `{"password":"`+canary[:10])
	err = store.Refresh(ctx, key)
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Refresh over a truncated JSON file: err = %v, want ErrInvalid", err)
	}
	noLeak(t, err)
	if got, err := store.Get(ctx, key+"#password"); err != nil || got.Reveal() != canary {
		t.Fatalf("Get after the truncation: err=%v, want the last good value", err)
	}
	if got, err := store.Get(ctx, key); err != nil || !strings.HasSuffix(got.Reveal(), `"}`) {
		t.Fatalf("Get of the whole file after the truncation: err=%v, want the last good value", err)
	}
	st, _ := store.Status(key)
	if !errors.Is(st.LastError, secrets.ErrInvalid) {
		t.Fatalf("Status LastError = %v, want ErrInvalid", st.LastError)
	}
}

func noLeak(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if strings.Contains(s, canary) || strings.Contains(s, canary[:10]) {
			t.Fatalf("error holds (part of) a secret value: %s", s)
		}
	}
}

// TestNoValueInErrors provokes every failure that involves a file's content
// and checks that no error carries it.
func TestNoValueInErrors(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	src := newSource(t, file.WithDir(dir), file.WithMaxSize(64), file.WithResync(0))

	cases := map[string]string{
		"big":         strings.Repeat(canary, 4),            // over the limit
		"cut.json":    `{"a":"` + canary,                    // truncated JSON
		"bad.json":    `{"` + canary + `": }`,               // invalid JSON
		"notjson":     canary,                               // a field of a non-JSON value
		"fields.json": `{"a":"` + canary + `","b":{"c":1}}`, // a missing field
	}
	for name, value := range cases {
		mustWrite(t, dir, name, value)
	}
	for _, name := range []string{"big", "cut.json", "bad.json"} {
		_, err := src.Fetch(ctx, name)
		if !errors.Is(err, secrets.ErrInvalid) {
			t.Errorf("Fetch(%s): err = %v, want ErrInvalid", name, err)
		}
		noLeak(t, err)
	}

	store, err := secrets.New(nil, secrets.WithSource("file", src))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, key := range []string{"file://notjson#a", "file://fields.json#nope", "file://fields.json#/b/c/d", "file://big", "file://cut.json#a"} {
		_, err := store.Get(ctx, key)
		if err == nil {
			t.Errorf("Get(%s) succeeded", key)
		}
		noLeak(t, err)
	}
	// Missing, a directory, and a path through a file.
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]error{
		"missing":        secrets.ErrNotFound,
		"sub":            secrets.ErrInvalid,
		"notjson/deeper": secrets.ErrNotFound,
	} {
		_, err := src.Fetch(ctx, key)
		if !errors.Is(err, want) {
			t.Errorf("Fetch(%s): err = %v, want %v", key, err, want)
		}
		noLeak(t, err)
	}
}

// TestKeys covers how keys name files, and the keys refused.
func TestKeys(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	mustWrite(t, dir, "a", "value-a")
	mustWrite(t, dir, "sub/b", "value-b")
	outside := t.TempDir()
	mustWrite(t, outside, "secret", canary)

	src := newSource(t, file.WithDir(dir))
	for key, want := range map[string]string{
		"a":                              "value-a",
		"sub/b":                          "value-b",
		"sub/../a":                       "value-a",
		"./a":                            "value-a",
		filepath.Join(dir, "a"):          "value-a",
		filepath.Join(outside, "secret"): canary, // absolute keys may name any file
	} {
		v, err := src.Fetch(ctx, key)
		if err != nil || v.Current.Reveal() != want {
			t.Errorf("Fetch(%q): err=%v", key, err)
		}
	}

	rel, err := filepath.Rel(dir, filepath.Join(outside, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "..", "../x", "sub/../../x", rel, "a\x00b"} {
		_, err := src.Fetch(ctx, key)
		if !errors.Is(err, secrets.ErrInvalid) {
			t.Errorf("Fetch(%q): err = %v, want ErrInvalid", key, err)
		}
		noLeak(t, err)
		r := src.FetchIfChanged(ctx, secrets.Request{Key: key, Known: secrets.Versions{Current: secrets.NewSecretString(key, "x", "y")}})
		if !errors.Is(r.Err, secrets.ErrInvalid) {
			t.Errorf("FetchIfChanged(%q): err = %v, want ErrInvalid", key, r.Err)
		}
	}

	noDir := newSource(t)
	if _, err := noDir.Fetch(ctx, "a"); !errors.Is(err, secrets.ErrInvalid) {
		t.Errorf("relative key without WithDir: err = %v, want ErrInvalid", err)
	}
	if v, err := noDir.Fetch(ctx, filepath.Join(dir, "a")); err != nil || v.Current.Reveal() != "value-a" {
		t.Errorf("absolute key without WithDir: err = %v", err)
	}
}

// TestVersions: equal content gives equal ids, in one Source and across
// Sources; a rewrite with the same bytes is no change; going back to an
// earlier value swaps current and previous; and a new Source (a restart)
// knows no previous.
func TestVersions(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	src := newSource(t, file.WithDir(dir))
	fetch := func(src *file.Source, key string) secrets.Versions {
		t.Helper()
		v, err := src.Fetch(ctx, key)
		if err != nil {
			t.Fatalf("Fetch(%s): %v", key, err)
		}
		return v
	}
	mustWrite(t, dir, "x", "A")
	mustWrite(t, dir, "y", "A")
	a := fetch(src, "x")
	if id := fetch(src, "y").Current.Version(); id != a.Current.Version() {
		t.Fatalf("equal content, ids %q and %q", a.Current.Version(), id)
	}
	if len(a.Current.Version()) != 16 {
		t.Fatalf("version id %q is not 16 hex digits", a.Current.Version())
	}
	mustWrite(t, dir, "x", "A") // same bytes, new file
	if v := fetch(src, "x"); v.Current.Version() != a.Current.Version() || !v.Previous.IsZero() {
		t.Fatalf("a rewrite with the same bytes counted as a change")
	}
	mustWrite(t, dir, "x", "B")
	b := fetch(src, "x")
	if b.Current.Reveal() != "B" || b.Previous.Reveal() != "A" || b.Previous.Version() != a.Current.Version() {
		t.Fatalf("after A then B: current %q previous %q", b.Current.Reveal(), b.Previous.Reveal())
	}
	mustWrite(t, dir, "x", "A")
	back := fetch(src, "x")
	if back.Current.Reveal() != "A" || back.Previous.Reveal() != "B" ||
		back.Current.Version() != a.Current.Version() || back.Previous.Version() != b.Current.Version() {
		t.Fatalf("after A, B, A: current %q previous %q", back.Current.Reveal(), back.Previous.Reveal())
	}
	// "x" and "<dir>/x" are one file with one history.
	if v := fetch(src, filepath.Join(dir, "x")); !sameVersions(v, back) {
		t.Fatal("a relative and an absolute key of one file disagree")
	}

	// A new Source (a restart, another replica) gives the same content the
	// same id, and knows no previous version.
	restarted := newSource(t, file.WithDir(dir))
	v := fetch(restarted, "x")
	if v.Current.Reveal() != "A" || !v.Previous.IsZero() {
		t.Fatalf("a new Source has a previous version")
	}
	if v.Current.Version() != a.Current.Version() {
		t.Fatalf("a new Source gave content id %q, the first %q", v.Current.Version(), a.Current.Version())
	}
}

// TestDetectorRacyStat: a file rewritten in place right after it was read,
// with the same size and its modification time put back, is still seen to
// change: its change time moved, and a file changed so recently is compared
// by content anyway.
func TestDetectorRacyStat(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("aaaa"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	src := newSource(t)
	v, err := src.Fetch(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite in place, same size, and put the modification time back, as
	// cp -p would.
	if err := os.WriteFile(path, []byte("bbbb"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, time.Time{}, fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	r := src.FetchIfChanged(ctx, secrets.Request{Key: path, Known: v})
	if r.Err != nil || r.Unchanged || r.Versions.Current.Reveal() != "bbbb" {
		t.Fatalf("FetchIfChanged after a same-size rewrite: unchanged=%v err=%v", r.Unchanged, r.Err)
	}
}

// TestOptions checks that bad options are refused.
func TestOptions(t *testing.T) {
	for name, opt := range map[string]file.Option{
		"WithDir empty":       file.WithDir(""),
		"WithResync negative": file.WithResync(-time.Second),
		"WithClock nil":       file.WithClock(nil),
		"WithMaxSize zero":    file.WithMaxSize(0),
	} {
		if _, err := file.New(opt); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	src := newSource(t, file.WithResync(0))
	if err := src.Watch(context.Background(), nil); err == nil {
		t.Error("Watch with a nil callback succeeded")
	}
}

func TestMaxSize(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	src := newSource(t, file.WithDir(dir), file.WithMaxSize(8))
	mustWrite(t, dir, "ok", "12345678")
	mustWrite(t, dir, "big", "123456789")
	if v, err := src.Fetch(ctx, "ok"); err != nil || v.Current.Len() != 8 {
		t.Fatalf("a file of exactly the limit: %v", err)
	}
	if _, err := src.Fetch(ctx, "big"); !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("a file over the limit: err = %v, want ErrInvalid", err)
	}
}

// TestKeysInErrorsAreBounded asks for 1 MiB keys and keys holding a newline,
// absolute and relative, missing and present but unreadable: every error is
// short and on one line, and still says what happened.
func TestKeysInErrorsAreBounded(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "A\nB.json", "{not json")
	if err := os.Mkdir(filepath.Join(dir, "sub\ndir"), 0o700); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, file.WithDir(dir))
	long := strings.Repeat("k", 1<<20)
	for _, tc := range []struct {
		name, key string
		class     error
	}{
		{"1 MiB absolute", "/" + long, secrets.ErrInvalid},
		{"1 MiB relative", long, secrets.ErrInvalid},
		{"1 MiB of segments", strings.Repeat("d/", 1<<19) + "k", secrets.ErrInvalid}, // ENAMETOOLONG
		{"1 MiB escaping", strings.Repeat("../", 1<<18), secrets.ErrInvalid},
		{"newline, missing", "/nonexistent\n/x", secrets.ErrNotFound},
		{"newline, relative missing", "A\nC", secrets.ErrNotFound},
		{"newline, not JSON", "A\nB.json", secrets.ErrInvalid},
		{"newline, directory", "sub\ndir", secrets.ErrInvalid},
		{"newline, NUL", "A\n\x00", secrets.ErrInvalid},
	} {
		for _, fetch := range []func() error{
			func() error { _, err := src.Fetch(ctxT(t), tc.key); return err },
			func() error { return src.FetchIfChanged(ctxT(t), secrets.Request{Key: tc.key}).Err },
		} {
			err := fetch()
			if !errors.Is(err, tc.class) {
				t.Errorf("%s: err = %.300v, want %v", tc.name, err, tc.class)
				continue
			}
			if msg := err.Error(); len(msg) >= 1024 || strings.ContainsAny(msg, "\n\r") {
				t.Errorf("%s: message of %d bytes, or not on one line: %.300q", tc.name, len(msg), msg)
			}
		}
	}
	var pe *os.PathError
	_, err := src.Fetch(ctxT(t), "A\nC")
	if !errors.As(err, &pe) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the os error is no longer in the chain: %v", err)
	}
	if want := `file: read "` + dir + `/A\nC": secret not found: stat: no such file or directory`; err.Error() != want {
		t.Errorf("message:\n%s\nwant\n%s", err, want)
	}
	if _, err := file.New(file.WithDir("/tmp/" + long)); err != nil {
		if msg := err.Error(); len(msg) >= 1024 || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("WithDir: message of %d bytes", len(msg))
		}
	}
}
