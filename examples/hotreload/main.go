// Command hotreload serves a credential from a file and shows it rotating
// without a restart: the file changes, the Store sees it (by a file watch, by
// its TTL poll, or on SIGHUP), tests the new value, swaps it in, and tells its
// subscribers. It prints what it does, never the value.
//
// With no flags it runs a self-contained demo: it writes a credential file to
// a temporary directory, rotates it three times (once with a value the
// validator rejects), and exits. With -dir it serves the files of that
// directory (a Kubernetes secret volume, say) until interrupted; edit a file
// or send SIGHUP to see it reload.
//
//	go run ./examples/hotreload
//	go run ./examples/hotreload -dir /run/secrets -key db_password
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/file"
)

func main() {
	dir := flag.String("dir", "", "directory of secret files (default: a demo in a temporary directory)")
	key := flag.String("key", "api_key", "the file in -dir to serve")
	ttl := flag.Duration("ttl", 30*time.Second, "how often to poll the file besides watching it")
	flag.Parse()
	if err := run(*dir, *key, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "hotreload:", err)
		os.Exit(1)
	}
}

func run(dir, name string, ttl time.Duration) error {
	demo := dir == ""
	if demo {
		var err error
		if dir, err = os.MkdirTemp("", "hotreload-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := writeAtomic(filepath.Join(dir, name), newCredential()); err != nil {
			return err
		}
	}
	path, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	key := "file://" + path

	files, err := file.New(file.WithDir(dir))
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := secrets.New(nil,
		secrets.WithSource("file", files),
		secrets.WithTTL(ttl),
		secrets.WithLogger(logger),
		// Test before swap: a real program would try the credential
		// against the system it unlocks.
		secrets.WithValidator(func(_ context.Context, _ string, cand secrets.Versions) error {
			if cand.Current.Len() < 16 {
				return errors.New("credential shorter than 16 bytes")
			}
			return nil
		}, key),
	)
	if err != nil {
		return err
	}
	defer store.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopHUP := secrets.ReloadOnSignal(ctx, store, syscall.SIGHUP)
	defer stopHUP()

	cred, err := store.Get(ctx, key)
	if err != nil {
		return err
	}
	fmt.Printf("serving %s: version %s, %d bytes (the value is never printed: %v)\n", name, cred.Version(), cred.Len(), cred)
	fmt.Printf("pid %d: edit %s or send SIGHUP to reload\n", os.Getpid(), path)

	sub := store.Subscribe()
	defer sub.Close()
	events := make(chan string)
	go func() {
		defer close(events)
		for {
			changes, err := sub.Next(ctx)
			if err != nil {
				return
			}
			for _, c := range changes {
				events <- fmt.Sprintf("rotated %s: version %s -> %s", name, c.OldVersion, c.NewVersion)
			}
		}
	}()

	if !demo {
		for e := range events {
			fmt.Println(e)
		}
		return nil
	}

	// The demo plays the operator: two good rotations and one bad one.
	steps := []struct {
		what  string
		value string
		good  bool
	}{
		{"rotation 1: a new credential", newCredential(), true},
		{"rotation 2: a malformed credential (too short)", "short", false},
		{"rotation 3: a new credential", newCredential(), true},
	}
	for _, st := range steps {
		fmt.Println(st.what)
		if err := writeAtomic(path, st.value); err != nil {
			return err
		}
		if st.good {
			select {
			case e := <-events:
				fmt.Println(" ", e)
			case <-time.After(10 * time.Second):
				return errors.New("the change was not picked up")
			}
			continue
		}
		// A rejected value is not served; Reload says why.
		err := store.Reload(ctx)
		fmt.Printf("  reload refused it: %v\n", errors.Is(err, secrets.ErrRejected))
		st, _ := store.Status(key)
		cur, _ := store.Get(ctx, key)
		fmt.Printf("  still serving version %s (last error: %v)\n", cur.Version(), st.LastError)
	}
	v, _ := store.Versions(ctx, key)
	fmt.Printf("done: current version %s, previous version %s\n", v.Current.Version(), v.Previous.Version())
	return nil
}

func newCredential() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// writeAtomic replaces path's content in one rename, as secret managers do.
func writeAtomic(path, value string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(value), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
