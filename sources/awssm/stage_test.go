package awssm_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/internal/smtest"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/sources/awssm"
)

// TestStageRotateSecretToken: a UUID token is the pending version's id, as
// AWS's rotation protocol needs, and the empty version RotateSecret made for
// it is filled; a rotation started by RotateSecret keeps other stagers out.
func TestStageRotateSecretToken(t *testing.T) {
	ctx := ctxT(t)
	srv, src := newSource(t)
	cur := srv.Put("db", "old")
	out, err := srv.Client().RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("db"),
		RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:123456789012:function:f")})
	if err != nil {
		t.Fatal(err)
	}
	token := aws.ToString(out.VersionId)

	// Fetch does not report the empty version as pending.
	if v, err := src.Fetch(ctx, "db"); err != nil || !v.Pending.IsZero() {
		t.Fatalf("Fetch during RotateSecret's empty version: %v, pending %q", err, v.Pending.Version())
	}
	// Another rotation (an Agent's token) is refused.
	_, err = src.Stage(ctx, "db", secrets.StageRequest{Current: cur, Value: []byte(canary), Token: "20260301T120000Z-abcdef"})
	if !errors.Is(err, secrets.ErrConflict) {
		t.Fatalf("Stage over RotateSecret's version: %v", err)
	}
	noLeak(t, err)

	for range 2 { // the second is a retry
		id, err := src.Stage(ctx, "db", secrets.StageRequest{Current: cur, Value: []byte("new"), Token: token})
		if err != nil || id != token {
			t.Fatalf("Stage with the rotation's token = %q, %v; want %q", id, err, token)
		}
	}
	v, err := src.Fetch(ctx, "db")
	if err != nil || v.Pending.Version() != token || v.Pending.Reveal() != "new" {
		t.Fatalf("after Stage: pending %q, %v", v.Pending.Version(), err)
	}
}

// TestPromoteFinishesHalfDone: a promotion that stopped after moving
// AWSCURRENT (AWSPENDING still on the new current, as AWS's templates leave
// it) is finished by Promote.
func TestPromoteFinishesHalfDone(t *testing.T) {
	ctx := ctxT(t)
	srv, src := newSource(t)
	cur := srv.Put("db", "old")
	pend := srv.Put("db", "new", "AWSPENDING")
	_, err := srv.Client().UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("db"),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(pend), RemoveFromVersionId: aws.String(cur)})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Promote(ctx, "db", pend, cur); err != nil {
		t.Fatal(err)
	}
	st := srv.Stages("db")
	if !slices.Equal(st[pend], []string{"AWSCURRENT"}) || !slices.Equal(st[cur], []string{"AWSPREVIOUS"}) {
		t.Fatalf("stages after Promote: %v", st)
	}
}

// TestStageDiscardedAgain: a candidate discarded and then staged again
// with the same value gets AWSPENDING back (PutSecretValue alone would
// ignore the retry and leave it unlabelled).
func TestStageDiscardedAgain(t *testing.T) {
	ctx := ctxT(t)
	srv, src := newSource(t)
	cur := srv.Put("db", "old")
	req := secrets.StageRequest{Current: cur, Value: []byte("new"), Token: "rot-1"}
	id, err := src.Stage(ctx, "db", req)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Discard(ctx, "db", id); err != nil {
		t.Fatal(err)
	}
	id2, err := src.Stage(ctx, "db", req)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := src.Fetch(ctx, "db"); err != nil || v.Pending.Version() != id2 {
		t.Fatalf("after staging again: pending %q (first %q), %v", v.Pending.Version(), id, err)
	}
}

// readOnly is an API without the write methods.
type readOnly struct{ awssm.API }

func TestWritesNeedWriteAPI(t *testing.T) {
	ctx := ctxT(t)
	srv := smtest.NewServer(t)
	cur := srv.Put("db", "old")
	src, err := awssm.New(readOnly{srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Stage(ctx, "db", secrets.StageRequest{Current: cur, Value: []byte(canary)})
	if !errors.Is(err, secrets.ErrPermission) {
		t.Fatalf("Stage through a read-only client: %v", err)
	}
	if _, err := src.SaveRotation(ctx, "db", secrets.Rotation{ID: "r", Step: secrets.StepStarted}); !errors.Is(err, secrets.ErrPermission) {
		t.Fatalf("SaveRotation through a read-only client: %v", err)
	}
	_, err = src.Stage(ctx, "db?versionStage=AWSPENDING", secrets.StageRequest{Current: cur, Value: []byte("x")})
	if !errors.Is(err, secrets.ErrInvalid) {
		t.Fatalf("Stage of a key with a query: %v", err)
	}
}

// TestRecordSecret: the record lives in the companion secret, as JSON
// without a value, and the rotated secret gains no version.
func TestRecordSecret(t *testing.T) {
	ctx := context.Background()
	srv, src := newSource(t, awssm.WithRecordName(func(n string) string { return "rotor/" + n }))
	srv.Put("db", canary)
	if _, err := src.SaveRotation(ctx, "db", secrets.Rotation{ID: "r1", Step: secrets.StepStarted, Owner: "me"}); err != nil {
		t.Fatal(err)
	}
	vs := srv.Versions("rotor/db")
	if len(vs) != 1 || !slices.Contains(vs[0].Stages, "AWSCURRENT") {
		t.Fatalf("companion versions: %+v", vs)
	}
	if len(srv.Versions("db")) != 1 {
		t.Fatal("saving the record added a version to the rotated secret")
	}
	rec, err := src.LoadRotation(ctx, "db")
	if err != nil || rec.ID != "r1" || rec.Revision != vs[0].ID {
		t.Fatalf("LoadRotation = %+v, %v", rec, err)
	}
}

// TestStageTakenTokenIsConflict: staging another value under a UUID token
// whose version holds a value and no label (a candidate discarded earlier)
// fails with secrets.ErrConflict and an error that names the key.
func TestStageTakenTokenIsConflict(t *testing.T) {
	ctx := ctxT(t)
	srv, src := newSource(t)
	cur := srv.Put("db/app", `{"password":"cur"}`)
	const tok = "0f0e0d0c-0b0a-4908-8706-050403020100"
	id, err := src.Stage(ctx, "db/app", secrets.StageRequest{Current: cur, Value: []byte(`{"password":"a"}`), Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Discard(ctx, "db/app", id); err != nil {
		t.Fatal(err)
	}
	_, err = src.Stage(ctx, "db/app", secrets.StageRequest{Current: cur, Value: []byte(`{"password":"b"}`), Token: tok})
	if err == nil {
		t.Fatal("staged another value under a used token")
	}
	if !errors.Is(err, secrets.ErrConflict) || !strings.Contains(err.Error(), "db/app") {
		t.Fatalf("staging under a taken token: %q, want ErrConflict naming the key", err)
	}
}
