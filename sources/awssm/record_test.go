package awssm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

// TestDeletedRecordReleasesLock: deleting the companion record secret with
// DeleteSecret's default recovery window releases a stuck lock. LoadRotation
// reads no record, and the next first save, whose CreateSecret AWS refuses
// while the name is scheduled for deletion, restores the secret and writes
// over it; the stuck owner's next save over its old revision then loses.
func TestDeletedRecordReleasesLock(t *testing.T) {
	ctx := ctxT(t)
	srv, src := newSource(t)
	srv.Put("db/app", `{"password":"x"}`)
	stuck, err := src.SaveRotation(ctx, "db/app", secrets.Rotation{ID: "r1", Step: "staged", Owner: "stuck", Expires: epoch.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client().DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("db/app/rotor-rotation")}); err != nil {
		t.Fatal(err)
	}
	got, err := src.LoadRotation(ctx, "db/app")
	if err != nil || got.ID != "" {
		t.Fatalf("LoadRotation after the delete: %+v, %v", got, err)
	}
	saved, err := src.SaveRotation(ctx, "db/app", secrets.Rotation{ID: "r2", Step: "started", Owner: "new"})
	if err != nil {
		t.Fatalf("the record reads as released, but a new rotation cannot save its record: %v", err)
	}
	got, err = src.LoadRotation(ctx, "db/app")
	if err != nil || got.ID != "r2" || got.Revision != saved.Revision {
		t.Fatalf("LoadRotation after the new save: %+v, %v; want r2 at %s", got, err, saved.Revision)
	}
	stuck.Step = "promoted"
	if _, err := src.SaveRotation(ctx, "db/app", stuck); !errors.Is(err, secrets.ErrConflict) {
		t.Fatalf("the stuck owner's save over its old revision: %v, want ErrConflict", err)
	}
	if _, err := src.SaveRotation(ctx, "db/app", secrets.Rotation{ID: "r3", Step: "started", Owner: "third"}); !errors.Is(err, secrets.ErrConflict) {
		t.Fatalf("a second first save over the restored record: %v, want ErrConflict", err)
	}
}

// noRestore is a client without RestoreSecret.
type noRestore struct{ awssm.WriteAPI }

// TestDeletedRecordWithoutRestoreSaysWhatToDo: a client that cannot
// restore a record secret scheduled for deletion fails the save with
// ErrConflict (not ErrNotFound, which LoadRotation's reading would
// suggest), naming ForceDeleteWithoutRecovery, the operator's way out.
func TestDeletedRecordWithoutRestoreSaysWhatToDo(t *testing.T) {
	ctx := ctxT(t)
	srv, _ := newSource(t)
	src, err := awssm.New(noRestore{srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Put("db/app", `{"password":"x"}`)
	if _, err := src.SaveRotation(ctx, "db/app", secrets.Rotation{ID: "r1", Step: "staged", Owner: "stuck"}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client().DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String("db/app/rotor-rotation")}); err != nil {
		t.Fatal(err)
	}
	_, err = src.SaveRotation(ctx, "db/app", secrets.Rotation{ID: "r2", Step: "started", Owner: "new"})
	if !errors.Is(err, secrets.ErrConflict) || errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("save over a deleted record without RestoreSecret: %v, want ErrConflict alone", err)
	}
	if !strings.Contains(err.Error(), "ForceDeleteWithoutRecovery") {
		t.Fatalf("the error does not say what to do: %v", err)
	}
}
