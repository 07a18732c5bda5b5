package file_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rotorhq/rotor/internal/fakeclock"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
)

var epoch = time.Date(2026, 11, 22, 2, 20, 0, 0, time.UTC)

// TestWatchResync: each resync interval of the source's clock, Watch reports
// that anything may have changed.
func TestWatchResync(t *testing.T) {
	ctx := ctxT(t)
	clk := fakeclock.New(epoch)
	src := newSource(t, file.WithDir(t.TempDir()), file.WithClock(clk), file.WithResync(time.Minute))
	calls := runWatch(t, src)
	for i := 1; i <= 2; i++ {
		if err := clk.WaitTimerAt(ctx, epoch.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatalf("waiting for resync timer %d: %v", i, err)
		}
		clk.Advance(time.Minute)
		waitKey(t, ctx, calls, "")
	}
}

// TestWatchKeysFetchedBeforeAndAfter: Watch covers keys fetched before it
// started and keys fetched while it runs, in directories of their own.
func TestWatchKeysFetchedBeforeAndAfter(t *testing.T) {
	ctx := ctxT(t)
	before, after := t.TempDir(), t.TempDir()
	mustWrite(t, before, "one", "1")
	mustWrite(t, after, "two", "2")
	src := newSource(t, file.WithResync(0))
	keyOne, keyTwo := filepath.Join(before, "one"), filepath.Join(after, "two")

	if _, err := src.Fetch(ctx, keyOne); err != nil {
		t.Fatal(err)
	}
	calls := runWatch(t, src)
	waitKey(t, ctx, calls, keyOne)

	if _, err := src.Fetch(ctx, keyTwo); err != nil {
		t.Fatal(err)
	}
	waitKey(t, ctx, calls, keyTwo) // its directory is now watched
	drain(calls)

	mustWrite(t, after, "two", "2b")
	waitKey(t, ctx, calls, keyTwo)
	mustWrite(t, before, "one", "1b")
	waitKey(t, ctx, calls, keyOne)

	// An edit in place (no rename) is seen too.
	drain(calls)
	if err := os.WriteFile(keyTwo, []byte("2c"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitKey(t, ctx, calls, keyTwo)
}

// TestWatchMissingDirectory: a directory that does not exist when the key is
// fetched is watched once it appears, found at the next resync; the key is
// then reported, and later changes are seen as events.
func TestWatchMissingDirectory(t *testing.T) {
	ctx := ctxT(t)
	dir := filepath.Join(t.TempDir(), "later")
	clk := fakeclock.New(epoch)
	src := newSource(t, file.WithDir(dir), file.WithClock(clk), file.WithResync(time.Minute))
	if _, err := src.Fetch(ctx, "token"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Fetch from a missing directory: err = %v, want ErrNotFound", err)
	}
	calls := runWatch(t, src)
	mustWrite(t, dir, "token", "v1")
	if err := clk.WaitTimerAt(ctx, epoch.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	waitKey(t, ctx, calls, "token")
	if v, err := src.Fetch(ctx, "token"); err != nil || v.Current.Reveal() != "v1" {
		t.Fatalf("Fetch once the file exists: %v", err)
	}
	drain(calls)
	mustWrite(t, dir, "token", "v2")
	waitKey(t, ctx, calls, "token")
}

// TestWatchSubdirectoryCreated: a missing subdirectory of a watched
// directory is picked up as soon as it is created, without a resync.
func TestWatchSubdirectoryCreated(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	src := newSource(t, file.WithDir(dir), file.WithResync(0))
	if _, err := src.Fetch(ctx, "tls/key.pem"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	calls := runWatch(t, src)
	mustWrite(t, dir, "tls/key.pem", "pem")
	waitKey(t, ctx, calls, "tls/key.pem")
	drain(calls)
	mustWrite(t, dir, "tls/key.pem", "pem2")
	waitKey(t, ctx, calls, "tls/key.pem")
}

// TestWatchRecreatedDirectory: a watched directory removed and made again is
// watched again.
func TestWatchRecreatedDirectory(t *testing.T) {
	ctx := ctxT(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "secrets")
	mustWrite(t, dir, "token", "v1")
	src := newSource(t, file.WithResync(0))
	// A key in the parent keeps the parent watched, so the removal and the
	// re-creation of the directory are both events.
	mustWrite(t, parent, "other", "o")
	key := filepath.Join(dir, "token")
	for _, k := range []string{key, filepath.Join(parent, "other")} {
		if _, err := src.Fetch(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	calls := runWatch(t, src)
	waitKey(t, ctx, calls, key)

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	waitKey(t, ctx, calls, key)
	mustWrite(t, dir, "token", "v2")
	waitKey(t, ctx, calls, key)
	drain(calls)
	// The new directory is watched: a change in it is an event.
	mustWrite(t, dir, "token", "v3")
	waitKey(t, ctx, calls, key)
}

// TestWatchSharedByTwoStores: two Stores over one Source each run a watch of
// their own, and each applies a change as soon as it happens.
func TestWatchSharedByTwoStores(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	mustWrite(t, dir, "token", "v1")
	src := newSource(t, file.WithDir(dir), file.WithResync(0))
	var subs []*secrets.Subscription
	for range 2 {
		spy := &watchSpy{Source: src, calls: make(chan string, 1024)}
		store, err := secrets.New(nil, secrets.WithSource("file", spy), secrets.WithClock(fakeclock.New(epoch)))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		if _, err := store.Get(ctx, "file://token"); err != nil {
			t.Fatal(err)
		}
		waitKey(t, ctx, spy.calls, "token") // this Store's watch covers the directory
		sub := store.Subscribe()
		defer sub.Close()
		subs = append(subs, sub)
	}
	mustWrite(t, dir, "token", "v2")
	for i, sub := range subs {
		changes, err := sub.Next(ctx)
		if err != nil || len(changes) != 1 || changes[0].Key != "file://token" {
			t.Fatalf("store %d: changes %+v, err %v", i, changes, err)
		}
	}
}
