package main

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// member reports whether role is a member of group.
func member(t *testing.T, ctx context.Context, role, group string) bool {
	t.Helper()
	conn, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var m bool
	if err := conn.QueryRow(ctx, "SELECT pg_has_role($1, $2, 'MEMBER')", role, group).Scan(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCloneRoleAndGrantAreOneTransaction: the alternating scheme's
// setSecret creates the clone role and grants it the base role in one
// transaction. A GRANT cancelled while it waits for a lock (as a
// lock_timeout or the Lambda's end stops it) leaves no role behind, and
// Secrets Manager's retry of setSecret ends with the clone a member of the
// base role: the application keeps its privileges after finishSecret.
func TestCloneRoleAndGrantAreOneTransaction(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, "alternating")
	role := uniq("grant")
	arn := e.setup(t, ctx, "alternating", role, "old-grant-pw")
	token := e.rotate(t, arn)
	e.steps(t, ctx, arn, token, stepCreate)

	// Hold a lock that the GRANT (pg_auth_members, RowExclusiveLock)
	// waits for, and CREATE ROLE does not.
	locker, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(context.Background())
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE pg_catalog.pg_auth_members IN SHARE MODE"); err != nil {
		t.Fatalf("cannot lock pg_auth_members: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- e.step(ctx, arn, token, stepSet) }()
	// Wait (on behaviour, not time) for the GRANT to wait on the lock,
	// then cancel it.
	watcher, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(context.Background())
	for {
		var n int
		err := watcher.QueryRow(ctx, `SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity
			WHERE query LIKE 'GRANT %' AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("setSecret returned before its GRANT waited: %v", err)
		case <-time.After(10 * time.Millisecond): // polling an observable state, not a timing assumption
		}
	}
	if err := <-done; err == nil {
		t.Fatal("setSecret succeeded though its GRANT was cancelled")
	}
	_ = tx.Rollback(ctx)
	if roleExists(t, ctx, role+"_clone") {
		t.Fatal("the cancelled setSecret left the clone role behind without its GRANT")
	}
	// Secrets Manager retries setSecret, then goes on.
	e.steps(t, ctx, arn, token, stepSet, stepTest, stepFinish)
	if !member(t, ctx, role+"_clone", role) {
		t.Fatalf("AWSCURRENT is now %s_clone, which is not a member of %s", role, role)
	}
}

// TestSetSecretGrantsMissingMembership: a clone role that exists without
// the membership (left so by hand, or by an earlier version of this
// function that committed CREATE ROLE and GRANT apart) gets it from
// setSecret, which checks the membership whether or not the role existed.
func TestSetSecretGrantsMissingMembership(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, "alternating")
	role := uniq("regrant")
	arn := e.setup(t, ctx, "alternating", role, "old-regrant-pw")
	super(t, ctx, "CREATE ROLE "+role+"_clone LOGIN")
	token := e.rotate(t, arn)
	e.steps(t, ctx, arn, token, stepCreate, stepSet, stepSet, stepTest, stepFinish)
	if !member(t, ctx, role+"_clone", role) {
		t.Fatalf("%s_clone is AWSCURRENT and not a member of %s", role, role)
	}
	e.finished(t, ctx, "alternating", arn, token, role+"_clone", "old-regrant-pw")
}
