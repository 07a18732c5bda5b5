package file_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
)

// rotateOnce stages value over the current version of key and promotes it.
func rotateOnce(t *testing.T, src *file.Source, key, value string) (from, to string) {
	t.Helper()
	ctx := ctxT(t)
	v, err := src.Fetch(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := src.Stage(ctx, key, secrets.StageRequest{Current: v.Current.Version(), Value: []byte(value)})
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if err := src.Promote(ctx, key, id, v.Current.Version()); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	return v.Current.Version(), id
}

// TestPreviousSurvivesRestart: a Source started after a promotion (another
// process, a restart) reports the replaced value as Previous, and the
// pending value while one is staged.
func TestPreviousSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "token", "first")
	from, to := rotateOnce(t, newSource(t, file.WithDir(dir)), "token", "second")

	fresh := newSource(t, file.WithDir(dir))
	v, err := fresh.Fetch(ctxT(t), "token")
	if err != nil {
		t.Fatal(err)
	}
	if v.Current.Version() != to || v.Current.Reveal() != "second" || v.Previous.Version() != from || v.Previous.Reveal() != "first" {
		t.Fatalf("a new Source sees current %q previous %q, want %q and %q", v.Current.Version(), v.Previous.Version(), to, from)
	}
	id, err := newSource(t, file.WithDir(dir)).Stage(ctxT(t), "token", secrets.StageRequest{Current: to, Value: []byte("third")})
	if err != nil {
		t.Fatal(err)
	}
	v, err = fresh.Fetch(ctxT(t), "token")
	if err != nil || v.Pending.Version() != id || v.Pending.Reveal() != "third" || v.Current.Reveal() != "second" {
		t.Fatalf("another process's stage: pending %q, current changed %v, err %v", v.Pending.Version(), v.Current.Reveal() != "second", err)
	}
}

// TestRemovePreviousReachesEveryProcess: a Source that saw the change in
// memory reports no previous version once another process removed it.
func TestRemovePreviousReachesEveryProcess(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "key", "k1")
	consumer := newSource(t, file.WithDir(dir))
	if _, err := consumer.Fetch(ctxT(t), "key"); err != nil {
		t.Fatal(err)
	}
	agent := newSource(t, file.WithDir(dir))
	from, _ := rotateOnce(t, agent, "key", "k2")
	if v, _ := consumer.Fetch(ctxT(t), "key"); v.Previous.Version() != from {
		t.Fatalf("the consumer sees previous %q, want %q", v.Previous.Version(), from)
	}
	if err := agent.RemovePrevious(ctxT(t), "key", from); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]*file.Source{"consumer": consumer, "restarted": newSource(t, file.WithDir(dir))} {
		v, err := src.Fetch(ctxT(t), "key")
		if err != nil || !v.Previous.IsZero() || v.Current.Reveal() != "k2" {
			t.Fatalf("%s after RemovePrevious: previous %q, err %v", name, v.Previous.Version(), err)
		}
	}
}

// TestHandWriteAfterRotation: a file written by hand after a rotation is
// read as it always was: Previous is the value it replaced, not the copy a
// rotation made of an older one.
func TestHandWriteAfterRotation(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "key", "one")
	src := newSource(t, file.WithDir(dir))
	_, to := rotateOnce(t, src, "key", "two")
	mustWrite(t, dir, "key", "three")
	v, err := src.Fetch(ctxT(t), "key")
	if err != nil || v.Current.Reveal() != "three" || v.Previous.Version() != to {
		t.Fatalf("after a hand write: previous %q, want %q (err %v)", v.Previous.Version(), to, err)
	}
	if v, _ := newSource(t, file.WithDir(dir)).Fetch(ctxT(t), "key"); !v.Previous.IsZero() {
		t.Fatal("a new Source took a stale copy for the previous version of a hand-written file")
	}
}

// TestRotationFilesAreHidden: a rotation leaves only hidden files beside
// the key, and the key's file keeps its mode.
func TestRotationFilesAreHidden(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "db.json", `{"password":"a"}`)
	if err := os.Chmod(filepath.Join(dir, "db.json"), 0o640); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, file.WithDir(dir))
	rotateOnce(t, src, "db.json", `{"password":"b"}`)
	if _, err := src.SaveRotation(ctxT(t), "db.json", secrets.Rotation{ID: "r", Step: secrets.StepDone}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var visible, hidden []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			hidden = append(hidden, e.Name())
		} else {
			visible = append(visible, e.Name())
		}
	}
	if len(visible) != 1 || visible[0] != "db.json" || len(hidden) != 2 {
		t.Fatalf("visible %v, hidden %v; want db.json alone visible, a previous copy and a record hidden", visible, hidden)
	}
	fi, err := os.Stat(filepath.Join(dir, "db.json"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("the promoted file has mode %v, want 0640 (err %v)", fi.Mode().Perm(), err)
	}
}

// TestStageRefusals: values the key's file could not hold, and keys that
// are a rotation's own files, are refused with ErrInvalid.
func TestStageRefusals(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "db.json", `{"password":"a"}`)
	mustWrite(t, dir, ".db.json.rotor-pending", `{"password":"x"}`)
	src := newSource(t, file.WithDir(dir), file.WithMaxSize(64))
	v, err := src.Fetch(ctxT(t), "db.json")
	if err != nil {
		t.Fatal(err)
	}
	cur := v.Current.Version()
	if err := src.Discard(ctxT(t), "db.json", v.Pending.Version()); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ key, value string }{
		"not JSON":          {"db.json", `{"password":` + canary},
		"too large":         {"db.json", `{"p":"` + strings.Repeat("x", 64) + `"}`},
		"the current value": {"db.json", `{"password":"a"}`},
		"a rotation's file": {".db.json.rotor-pending", `{"password":"b"}`},
	} {
		_, err := src.Stage(ctxT(t), tc.key, secrets.StageRequest{Current: cur, Value: []byte(tc.value)})
		if !errors.Is(err, secrets.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
		noLeak(t, err)
	}
}

// TestNotWritableLayouts: a symbolic link and a file inside a
// Kubernetes-style volume are refused with ErrNotWritable, which is also
// ErrPermission, and nothing is written.
func TestNotWritableLayouts(t *testing.T) {
	vol := newVolume(t, map[string]string{"password": "p1"})
	src := newSource(t, file.WithDir(vol.dir))
	for _, key := range []string{"password", "..data/password"} {
		v, err := src.Fetch(ctxT(t), key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Stage(ctxT(t), key, secrets.StageRequest{Current: v.Current.Version(), Value: []byte(canary)})
		if !errors.Is(err, file.ErrNotWritable) || !errors.Is(err, secrets.ErrPermission) {
			t.Errorf("Stage of %q: err = %v, want ErrNotWritable and ErrPermission", key, err)
		}
		noLeak(t, err)
	}
	outside := t.TempDir()
	mustWrite(t, outside, "real", "value")
	if err := os.Symlink(filepath.Join(outside, "real"), filepath.Join(outside, "link")); err != nil {
		t.Fatal(err)
	}
	_, err := newSource(t).SaveRotation(ctxT(t), filepath.Join(outside, "link"), secrets.Rotation{ID: "r", Step: secrets.StepStarted})
	if !errors.Is(err, file.ErrNotWritable) {
		t.Errorf("SaveRotation of a symbolic link: err = %v, want ErrNotWritable", err)
	}
	if left, _ := filepath.Glob(filepath.Join(vol.dir, ".*rotor-*")); len(left) != 0 {
		t.Fatalf("refused writes left files: %v", left)
	}
}

// TestWatchSeesStage: a Store's watch reports a key when a version is
// staged beside it, and FetchIfChanged then reports the pending version.
func TestWatchSeesStage(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, dir, "token", "v1")
	src := newSource(t, file.WithDir(dir), file.WithResync(0))
	ctx := ctxT(t)
	v, err := src.Fetch(ctx, "token")
	if err != nil {
		t.Fatal(err)
	}
	calls := runWatch(t, src)
	waitKey(t, ctx, calls, "token") // reported when the watch starts covering it
	drain(calls)
	id, err := newSource(t, file.WithDir(dir)).Stage(ctx, "token", secrets.StageRequest{Current: v.Current.Version(), Value: []byte("v2")})
	if err != nil {
		t.Fatal(err)
	}
	waitKey(t, ctx, calls, "token")
	r := src.FetchIfChanged(ctx, secrets.Request{Key: "token", Known: v})
	if r.Err != nil || r.Unchanged || r.Versions.Pending.Version() != id || r.Versions.Current.Version() != v.Current.Version() {
		t.Fatalf("FetchIfChanged after a stage: unchanged %v, pending %q, err %v", r.Unchanged, r.Versions.Pending.Version(), r.Err)
	}
}
