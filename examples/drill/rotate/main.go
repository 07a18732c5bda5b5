// Command rotate is the rotation drill's rotator, run from outside the server
// as an operator's script or a rotation job is: it changes one PostgreSQL
// role's password, with no overlap, in two steps a gap apart, in either
// order, and can then send the server SIGHUP.
//
//   - store first: the new password replaces the one in the store the server
//     reads (the db.json file in -secrets, replaced atomically as a secret
//     volume is), then, -gap later, ALTER ROLE sets it on the database;
//   - alter first: ALTER ROLE, then, -gap later, the store.
//
// The new password is random and never printed. The database's superuser
// URL comes from the environment (ROTOR_DRILL_ADMIN_URL), not the command
// line. It writes what it did, with the times, as one JSON line
// (examples/drill/internal/wire.Rotation).
//
//	ROTOR_DRILL_ADMIN_URL=postgres://... rotate -secrets DIR -role app_a -first store [-gap 2s] [-sighup PID]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/examples/drill/internal/wire"
)

// Orders of the two steps.
const (
	StoreFirst = "store"
	AlterFirst = "alter"
)

func main() {
	dir := flag.String("secrets", "", "the server's -secrets directory, holding db.json")
	role := flag.String("role", "", "the role whose password changes")
	first := flag.String("first", StoreFirst, "which step comes first: store or alter")
	gap := flag.Duration("gap", 2*time.Second, "time between the two steps")
	pid := flag.Int("sighup", 0, "send SIGHUP to this process after both steps (0: none)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rot, err := rotate(ctx, *dir, *role, *first, *gap, *pid, os.Getenv(wire.AdminURLEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "rotate:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(rot)
}

var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func rotate(ctx context.Context, dir, role, first string, gap time.Duration, pid int, adminURL string) (wire.Rotation, error) {
	rot := wire.Rotation{Role: role}
	switch {
	case dir == "" || adminURL == "":
		return rot, fmt.Errorf("-secrets and $%s are required", wire.AdminURLEnv)
	case !roleName.MatchString(role):
		return rot, fmt.Errorf("-role %q is not a plain role name", role)
	case first != StoreFirst && first != AlterFirst:
		return rot, fmt.Errorf("-first is %q; want %s or %s", first, StoreFirst, AlterFirst)
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return rot, fmt.Errorf("connect as the superuser: %w", err)
	}
	defer admin.Close(context.Background())
	pw := newPassword()
	store := func() error {
		if err := writeSecret(dir, role, pw); err != nil {
			return err
		}
		rot.Stored = time.Now()
		return nil
	}
	alter := func() error {
		// pw is hex: nothing in it needs quoting.
		if _, err := admin.Exec(ctx, fmt.Sprintf("alter role %s password '%s'", role, pw)); err != nil {
			return fmt.Errorf("alter role %s: %w", role, err)
		}
		rot.Altered = time.Now()
		return admin.QueryRow(ctx, "select clock_timestamp()").Scan(&rot.AlteredDB)
	}
	steps := []func() error{store, alter}
	if first == AlterFirst {
		steps = []func() error{alter, store}
	}
	if err := steps[0](); err != nil {
		return rot, err
	}
	// The gap is the scenario: the two steps of a rotation without
	// overlap, as far apart as an operator or a job leaves them.
	t := time.NewTimer(gap)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return rot, ctx.Err()
	case <-t.C:
	}
	if err := steps[1](); err != nil {
		return rot, err
	}
	if pid > 0 {
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			return rot, fmt.Errorf("SIGHUP to %d: %w", pid, err)
		}
		rot.Signalled = time.Now()
	}
	return rot, nil
}

// writeSecret replaces db.json atomically, as a secret volume is updated.
func writeSecret(dir, user, pw string) error {
	b, err := json.Marshal(map[string]string{"username": user, "password": pw})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".db.json.rotate")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "db.json"))
}

func newPassword() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
