package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rotorhq/rotor/secrets"
)

const internalCanary = "canary-91b2e4f0-internal-must-never-leak"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustNew(t *testing.T, opts ...Option) *Source {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fs.ErrNotExist, secrets.ErrNotFound},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}, secrets.ErrNotFound},
		{&fs.PathError{Op: "open", Path: "/x/y", Err: syscall.ENOTDIR}, secrets.ErrNotFound},
		{fs.ErrPermission, secrets.ErrPermission},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, secrets.ErrPermission},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.EPERM}, secrets.ErrPermission},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.ELOOP}, secrets.ErrInvalid},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.ENAMETOOLONG}, secrets.ErrInvalid},
		{&fs.PathError{Op: "read", Path: "/x", Err: syscall.EIO}, secrets.ErrTransient},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.EMFILE}, secrets.ErrTransient},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
		err := ioError("/x", tc.err)
		if !errors.Is(err, tc.want) || !errors.Is(err, tc.err) {
			t.Errorf("ioError(%v) = %v: does not wrap both the class and the cause", tc.err, err)
		}
	}
}

// TestPermissionDenied: a file the process may not read fails with
// ErrPermission. Root reads through mode 000, so as root the test checks the
// classification of the error the kernel would have returned instead.
func TestPermissionDenied(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "locked")
	if err := os.WriteFile(path, []byte(internalCanary), 0o000); err != nil {
		t.Fatal(err)
	}
	src := mustNew(t, WithDir(dir))
	var err error
	if os.Geteuid() == 0 {
		err = ioError(path, &fs.PathError{Op: "open", Path: path, Err: fs.ErrPermission})
	} else {
		_, err = src.Fetch(ctx, "locked")
	}
	if !errors.Is(err, secrets.ErrPermission) {
		t.Fatalf("err = %v, want ErrPermission", err)
	}
	if strings.Contains(err.Error(), internalCanary) {
		t.Fatalf("error holds the value: %v", err)
	}
}

// appendOnRead makes every read of src see its file grow while it reads, as
// a writer appending in place would make it.
func appendOnRead(t *testing.T, src *Source) (reads *atomic.Int64) {
	reads = new(atomic.Int64)
	hook := func(path string) {
		reads.Add(1)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Errorf("hook: %v", err)
			return
		}
		defer f.Close()
		if _, err := f.WriteString("+"); err != nil {
			t.Errorf("hook: %v", err)
		}
	}
	src.testHookRead.Store(&hook)
	return reads
}

// TestRewrittenWhileRead: a file that changes while it is read fails with
// ErrTransient after the retries, and no error holds its content.
func TestRewrittenWhileRead(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte(internalCanary), 0o600); err != nil {
		t.Fatal(err)
	}
	src := mustNew(t, WithDir(dir))
	reads := appendOnRead(t, src)
	_, err := src.Fetch(ctx, "token")
	if !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
	if n := reads.Load(); n != readAttempts {
		t.Fatalf("%d reads, want %d attempts", n, readAttempts)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", err, err), internalCanary) {
		t.Fatalf("error holds the value: %v", err)
	}
	src.testHookRead.Store(nil)
	v, err := src.Fetch(ctx, "token")
	if err != nil || v.Current.Reveal() != internalCanary+"+++" {
		t.Fatalf("once the file is quiet: err=%v", err)
	}
}

// fetchOnly hides the source's Watch from the Store, so that the test alone
// decides when the file is read.
type fetchOnly struct{ s *Source }

func (f fetchOnly) Fetch(ctx context.Context, key string) (secrets.Versions, error) {
	return f.s.Fetch(ctx, key)
}

func (f fetchOnly) FetchIfChanged(ctx context.Context, req secrets.Request) secrets.Result {
	return f.s.FetchIfChanged(ctx, req)
}

// TestRewrittenWhileReadKeepsLastGood: a Store whose refresh catches a file
// mid-write keeps serving the value before it.
func TestRewrittenWhileReadKeepsLastGood(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("good"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := mustNew(t, WithDir(dir))
	store, err := secrets.New(nil, secrets.WithSource("file", fetchOnly{src}))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const key = "file://token"
	if got, err := store.Get(ctx, key); err != nil || got.Reveal() != "good" {
		t.Fatalf("Get: %v", err)
	}
	appendOnRead(t, src)
	if err := store.Refresh(ctx, key); !errors.Is(err, secrets.ErrTransient) {
		t.Fatalf("Refresh while the file is being written: err = %v, want ErrTransient", err)
	}
	if got, err := store.Get(ctx, key); err != nil || got.Reveal() != "good" {
		t.Fatalf("Get after the failed refresh: err=%v, want the last good value", err)
	}
	st, ok := store.Status(key)
	if !ok || !errors.Is(st.LastError, secrets.ErrTransient) {
		t.Fatalf("Status LastError = %v, want ErrTransient", st.LastError)
	}
}

// TestDetectorAvoidsReadOfQuietFile: FetchIfChanged of a file whose stat has
// not moved since a read well after its last change answers Unchanged
// without reading it; a file read within racyWindow of its last change is
// read again.
func TestDetectorAvoidsReadOfQuietFile(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("value"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := mustNew(t, WithDir(dir))
	// The file was last changed an hour before it is read.
	src.wallNow = func() time.Time { return time.Now().Add(time.Hour) }
	v, err := src.Fetch(ctx, "token")
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	hook := func(string) { reads.Add(1) }
	src.testHookRead.Store(&hook)
	r := src.FetchIfChanged(ctx, secrets.Request{Key: "token", Known: v})
	if r.Err != nil || !r.Unchanged {
		t.Fatalf("unchanged=%v err=%v", r.Unchanged, r.Err)
	}
	if n := reads.Load(); n != 0 {
		t.Fatalf("a quiet, unmoved file was read %d times", n)
	}
	// Known versions other than the Source's are answered from memory.
	r = src.FetchIfChanged(ctx, secrets.Request{Key: "token", Known: secrets.Versions{Current: secrets.NewSecretString("token", "other", "x")}})
	if r.Err != nil || r.Unchanged || r.Versions.Current.Reveal() != "value" || reads.Load() != 0 {
		t.Fatalf("with foreign Known: unchanged=%v err=%v reads=%d", r.Unchanged, r.Err, reads.Load())
	}

	// Read right after its last change, the file's stat proves nothing: it
	// is read again, and found unchanged by its digest.
	src.wallNow = time.Now
	if _, err := src.Fetch(ctx, "token"); err != nil {
		t.Fatal(err)
	}
	reads.Store(0)
	r = src.FetchIfChanged(ctx, secrets.Request{Key: "token", Known: v})
	if r.Err != nil || !r.Unchanged || reads.Load() != 1 {
		t.Fatalf("racy stat: unchanged=%v err=%v reads=%d, want unchanged after one read", r.Unchanged, r.Err, reads.Load())
	}

	// A change moves the stat: read, and not unchanged.
	if err := os.WriteFile(path, []byte("VALUE"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = src.FetchIfChanged(ctx, secrets.Request{Key: "token", Known: v})
	if r.Err != nil || r.Unchanged || r.Versions.Current.Reveal() != "VALUE" || reads.Load() != 2 {
		t.Fatalf("after a change: unchanged=%v err=%v reads=%d", r.Unchanged, r.Err, reads.Load())
	}
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		p, dir string
		want   bool
	}{
		{"/a/b", "/a", true},
		{"/a", "/a", true},
		{"/ab", "/a", false},
		{"/a/b/c", "/a", true},
		{"/a", "/", true},
		{"/", "/", true},
		{"/a", "/a/b", false},
	} {
		if got := within(tc.p, tc.dir); got != tc.want {
			t.Errorf("within(%q, %q) = %v", tc.p, tc.dir, got)
		}
	}
}

// TestDetectorSeesPendingOfQuietFile: FetchIfChanged of a quiet file whose
// stat has not moved still reports a version staged beside it, and one
// discarded.
func TestDetectorSeesPendingOfQuietFile(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("value"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := mustNew(t, WithDir(dir))
	src.wallNow = func() time.Time { return time.Now().Add(time.Hour) }
	v, err := src.Fetch(ctx, "token")
	if err != nil {
		t.Fatal(err)
	}
	other := mustNew(t, WithDir(dir))
	id, err := other.Stage(ctx, "token", secrets.StageRequest{Current: v.Current.Version(), Value: []byte("next")})
	if err != nil {
		t.Fatal(err)
	}
	r := src.FetchIfChanged(ctx, secrets.Request{Key: "token", Known: v})
	if r.Err != nil || r.Unchanged || r.Versions.Pending.Version() != id {
		t.Fatalf("after a stage: unchanged %v, pending %q, err %v", r.Unchanged, r.Versions.Pending.Version(), r.Err)
	}
	if err := other.Discard(ctx, "token", id); err != nil {
		t.Fatal(err)
	}
	r2 := src.FetchIfChanged(ctx, secrets.Request{Key: "token", Known: r.Versions})
	if r2.Err != nil || r2.Unchanged || !r2.Versions.Pending.IsZero() {
		t.Fatalf("after a discard: unchanged %v, pending %q, err %v", r2.Unchanged, r2.Versions.Pending.Version(), r2.Err)
	}
}

// TestReadOnlyFileSystem: EROFS from a write is ErrNotWritable and
// ErrPermission.
func TestReadOnlyFileSystem(t *testing.T) {
	err := writeIOErr("stage", "/x", &fs.PathError{Op: "open", Path: "/x", Err: syscall.EROFS})
	if !errors.Is(err, ErrNotWritable) || !errors.Is(err, secrets.ErrPermission) {
		t.Fatalf("err = %v", err)
	}
}
