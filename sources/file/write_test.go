package file_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
)

// refusesEveryWrite checks that every write of key fails with
// ErrNotWritable (and ErrPermission) without a value in the error, and that
// the key still reads as before.
func refusesEveryWrite(t *testing.T, src *file.Source, key string) {
	t.Helper()
	ctx := ctxT(t)
	v, err := src.Fetch(ctx, key)
	if err != nil {
		t.Fatalf("Fetch of %q (reads follow links): %v", key, err)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, file.ErrNotWritable) || !errors.Is(err, secrets.ErrPermission) {
			t.Errorf("%s of %q: err = %v, want ErrNotWritable and ErrPermission", what, key, err)
		}
		noLeak(t, err)
	}
	_, err = src.Stage(ctx, key, secrets.StageRequest{Current: v.Current.Version(), Value: []byte(canary)})
	check("Stage", err)
	check("Promote", src.Promote(ctx, key, secrets.ContentVersion([]byte(canary)), v.Current.Version()))
	_, err = src.SaveRotation(ctx, key, secrets.Rotation{ID: "r", Step: secrets.StepStarted})
	check("SaveRotation", err)
	if after, err := src.Fetch(ctx, key); err != nil || after.Current.Version() != v.Current.Version() || !after.Pending.IsZero() {
		t.Errorf("after refused writes, %q reads %v, %v", key, after.Current.Version(), err)
	}
}

// noRotorFiles fails the test if any of a rotation's files (".name.rotor-*")
// exists in dir or below it, links not followed.
func noRotorFiles(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if m, _ := filepath.Match(".*.rotor-*", filepath.Base(path)); m {
			t.Errorf("a refused write left %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWriteRefusesNestedKubernetesKey: a nested item of a Kubernetes secret
// volume (tls/key.pem, published as the link tls -> ..data/tls) is a
// Kubernetes-style layout and cannot be written, by whichever name it is
// reached: through the link, through "..data", or with WithDir inside the
// volume. Nothing is created in kubelet's directories.
func TestWriteRefusesNestedKubernetesKey(t *testing.T) {
	vol := newVolume(t, map[string]string{"tls/key.pem": "k1", "password": "p1"})
	for _, tc := range []struct {
		name string
		dir  string
		key  string
	}{
		{"through the visible link", vol.dir, "tls/key.pem"},
		{"through ..data", vol.dir, "..data/tls/key.pem"},
		{"WithDir is the visible link", filepath.Join(vol.dir, "tls"), "key.pem"},
		{"WithDir is inside ..data", filepath.Join(vol.dir, "..data", "tls"), "key.pem"},
		{"absolute key", "", filepath.Join(vol.dir, "tls", "key.pem")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []file.Option
			if tc.dir != "" {
				opts = append(opts, file.WithDir(tc.dir))
			}
			refusesEveryWrite(t, newSource(t, opts...), tc.key)
		})
	}
	noRotorFiles(t, vol.dir)
}

// TestWriteNeverFollowsADirectoryLink: reads follow symbolic links, writes
// do not. A relative key whose directory is a link (dir/sub -> elsewhere) is
// refused with ErrNotWritable, whether the link leaves WithDir or not, and
// nothing is written where it points; so is an absolute key through a
// linked directory. A WithDir that is itself a link is the operator's
// choice, and keys below it are written.
func TestWriteNeverFollowsADirectoryLink(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	mustWrite(t, outside, "secret", "v1")
	mustWrite(t, dir, "real/secret", "v1")
	if err := os.Symlink(outside, filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, file.WithDir(dir))
	t.Run("out of WithDir", func(t *testing.T) { refusesEveryWrite(t, src, "sub/secret") })
	t.Run("inside WithDir", func(t *testing.T) { refusesEveryWrite(t, src, "alias/secret") })
	t.Run("absolute key", func(t *testing.T) { refusesEveryWrite(t, newSource(t), filepath.Join(dir, "sub", "secret")) })
	noRotorFiles(t, outside)
	noRotorFiles(t, dir)

	// A pending file found there (left by hand, or by a version that wrote
	// through links) is not removed through the link either, and no lock
	// file is left beside it.
	t.Run("Discard", func(t *testing.T) {
		pend := filepath.Join(outside, ".secret.rotor-pending")
		if err := os.WriteFile(pend, []byte("v2"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(pend)
		err := src.Discard(ctxT(t), "sub/secret", secrets.ContentVersion([]byte("v2")))
		if !errors.Is(err, file.ErrNotWritable) {
			t.Errorf("Discard through a directory link: err = %v, want ErrNotWritable", err)
		}
		if _, err := os.Stat(pend); err != nil {
			t.Errorf("the pending file: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(outside, ".secret.rotor-lock")); err == nil {
			t.Error("Discard left a lock file beside it")
		}
	})

	t.Run("WithDir is a link", func(t *testing.T) {
		linked := filepath.Join(t.TempDir(), "secrets")
		if err := os.Symlink(filepath.Join(dir, "real"), linked); err != nil {
			t.Fatal(err)
		}
		ctx := ctxT(t)
		src := newSource(t, file.WithDir(linked))
		v, err := src.Fetch(ctx, "secret")
		if err != nil {
			t.Fatal(err)
		}
		id, err := src.Stage(ctx, "secret", secrets.StageRequest{Current: v.Current.Version(), Value: []byte("v2")})
		if err != nil {
			t.Fatalf("Stage below a WithDir that is a link: %v", err)
		}
		if err := src.Promote(ctx, "secret", id, v.Current.Version()); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "real", "secret")); err != nil || string(got) != "v2" {
			t.Errorf("the file holds %q, %v after Promote", got, err)
		}
	})
}
