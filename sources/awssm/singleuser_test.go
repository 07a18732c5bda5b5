package awssm_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotorhq/rotor/secrets"
)

// errAuth stands for a database's refusal of a password (SQLSTATE 28P01).
type errAuth struct{}

func (errAuth) Error() string    { return "password authentication failed" }
func (errAuth) SQLState() string { return "28P01" }

// singleUserDB accepts one password at a time: AWS's single-user scheme
// replaces it in setSecret, with no overlap.
type singleUserDB struct {
	mu sync.Mutex
	pw string
}

func (d *singleUserDB) set(pw string) { d.mu.Lock(); d.pw = pw; d.mu.Unlock() }

func (d *singleUserDB) login(pw string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if pw != d.pw {
		return errAuth{}
	}
	return nil
}

// TestSingleUserRotationLosesNoCall runs AWS's single-user rotation
// (createSecret stages AWSPENDING, setSecret changes the database password,
// finishSecret moves AWSCURRENT) against a Store whose validator logs in.
// Between setSecret and finishSecret only AWSPENDING works: calls that meet
// the old password's refusal adopt the pending version and succeed, and the
// finished rotation changes nothing more.
func TestSingleUserRotationLosesNoCall(t *testing.T) {
	srv, src := newSource(t)
	client := srv.Client()
	ctx := ctxT(t)
	const name = "mcp/single"
	key := "awssm://" + name + "#password"
	created, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(passwordJSON("old-pw")),
	})
	if err != nil {
		t.Fatal(err)
	}
	db := &singleUserDB{pw: "old-pw"}
	validate := func(ctx context.Context, key string, v secrets.Versions) error {
		return db.login(v.Current.Reveal())
	}
	st, _ := newStore(t, src, secrets.WithValidator(validate, key))
	if _, err := st.Get(ctx, key); err != nil {
		t.Fatal(err)
	}
	sub := st.Subscribe()
	defer sub.Close()
	call := secrets.WrapTool(st, func(ctx context.Context, _ struct{}, _ struct{}) (struct{}, struct{}, error) {
		pw, err := secrets.ViewFrom(ctx, st).Get(ctx, key)
		if err != nil {
			return struct{}{}, struct{}{}, err
		}
		return struct{}{}, struct{}{}, db.login(pw.Reveal())
	})
	calls := func(n int) error {
		errs := make(chan error, n)
		for range n {
			go func() { _, _, err := call(ctx, struct{}{}, struct{}{}); errs <- err }()
		}
		var all []error
		for range n {
			all = append(all, <-errs)
		}
		return errors.Join(all...)
	}

	// createSecret
	const token = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	if _, err := client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), ClientRequestToken: aws.String(token),
		SecretString: aws.String(passwordJSON("new-pw")), VersionStages: []string{"AWSPENDING"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := calls(8); err != nil {
		t.Fatalf("calls after createSecret: %v", err)
	}
	// setSecret: the database takes the pending password; the old one is gone.
	db.set("new-pw")
	if err := calls(8); err != nil {
		t.Fatalf("calls between setSecret and finishSecret: %v", err)
	}
	if v, _ := st.Versions(ctx, key); v.Current.Version() != token || v.Previous.Version() != aws.ToString(created.VersionId) {
		t.Fatalf("serving %q after %q, want the pending version adopted", v.Current.Version(), v.Previous.Version())
	}
	// finishSecret
	if _, err := client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(token), RemoveFromVersionId: created.VersionId,
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := calls(8); err != nil {
		t.Fatalf("calls after finishSecret: %v", err)
	}
	var heard []string
	for _, c := range sub.Changes() {
		heard = append(heard, c.OldVersion+">"+c.NewVersion)
	}
	if len(heard) != 1 || heard[0] != aws.ToString(created.VersionId)+">"+token {
		t.Fatalf("subscribers heard %v, want the one switch to the new version", heard)
	}
}
