package smtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotorhq/rotor/internal/smtest"
)

const lambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:rotate"

// TestRotateSecret walks the protocol as AWS and a rotation function do:
// RotateSecret creates the empty AWSPENDING version, createSecret fills it,
// finishSecret moves AWSCURRENT to it.
func TestRotateSecret(t *testing.T) {
	ctx := context.Background()
	srv := smtest.NewServer(t)
	c := srv.Client()
	v1 := srv.Put("db", `{"password":"one"}`)

	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("db")})
	if err != nil {
		t.Fatal(err)
	}
	if d.RotationEnabled != nil {
		t.Fatalf("a secret never configured reports RotationEnabled = %v", *d.RotationEnabled)
	}

	_, err = c.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("db")})
	if code := apiCode(t, err); code != "InvalidRequestException" {
		t.Fatalf("RotateSecret without a function: %s", code)
	}

	out, err := c.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId: aws.String("db"), RotationLambdaARN: aws.String(lambdaARN),
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	if err != nil {
		t.Fatal(err)
	}
	token := aws.ToString(out.VersionId)
	if token == "" {
		t.Fatal("RotateSecret returned no VersionId")
	}
	assertStages(t, stages(t, c, "db"), map[string][]string{v1: {"AWSCURRENT"}, token: {"AWSPENDING"}})

	// The version has no value yet: reading it is ResourceNotFoundException.
	for _, in := range []*secretsmanager.GetSecretValueInput{
		{SecretId: aws.String("db"), VersionId: aws.String(token), VersionStage: aws.String("AWSPENDING")},
		{SecretId: aws.String("db"), VersionStage: aws.String("AWSPENDING")},
	} {
		errorAs[*types.ResourceNotFoundException](t, getErr(t, c, in))
	}

	// A second rotation while this one is in progress is refused; the same
	// token again answers the same version.
	_, err = c.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("db")})
	if code := apiCode(t, err); code != "InvalidRequestException" {
		t.Fatalf("RotateSecret during a rotation: %s", code)
	}
	again, err := c.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("db"), ClientRequestToken: aws.String(token)})
	if err != nil || aws.ToString(again.VersionId) != token {
		t.Fatalf("RotateSecret with the same token: %v, %v", again, err)
	}

	// createSecret: PutSecretValue with the token fills the version.
	put := &secretsmanager.PutSecretValueInput{SecretId: aws.String("db"), ClientRequestToken: aws.String(token),
		SecretString: aws.String(`{"password":"two"}`), VersionStages: []string{"AWSPENDING"}}
	for range 2 { // Secrets Manager retries steps: the second is a no-op
		if _, err := c.PutSecretValue(ctx, put); err != nil {
			t.Fatal(err)
		}
	}
	got := getValue(t, c, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db"), VersionStage: aws.String("AWSPENDING")})
	if aws.ToString(got.SecretString) != `{"password":"two"}` || aws.ToString(got.VersionId) != token {
		t.Fatalf("AWSPENDING = %s", aws.ToString(got.VersionId))
	}
	put.SecretString = aws.String(`{"password":"three"}`)
	_, err = c.PutSecretValue(ctx, put)
	errorAs[*types.ResourceExistsException](t, err)

	// finishSecret.
	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("db"),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(token), RemoveFromVersionId: aws.String(v1)})
	if err != nil {
		t.Fatal(err)
	}
	assertStages(t, stages(t, c, "db"), map[string][]string{v1: {"AWSPREVIOUS"}, token: {"AWSCURRENT", "AWSPENDING"}})
	d, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("db")})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(d.RotationEnabled) || aws.ToString(d.RotationLambdaARN) != lambdaARN || d.LastRotatedDate == nil ||
		d.NextRotationDate == nil || d.RotationRules == nil || aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 30 {
		t.Fatalf("DescribeSecret after a rotation: %+v", d)
	}

	// With AWSPENDING on the current version, a new rotation may start.
	if _, err := c.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("db")}); err != nil {
		t.Fatal(err)
	}

	// CancelRotateSecret turns rotation off; the template's check sees it.
	if _, err := c.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("db")}); err != nil {
		t.Fatal(err)
	}
	d, _ = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("db")})
	if d.RotationEnabled == nil || *d.RotationEnabled {
		t.Fatalf("RotationEnabled after CancelRotateSecret = %v", d.RotationEnabled)
	}
}

// TestRotationErrors: the errors a rotation function meets with a token
// that is no version, and a label asked to be on two versions.
func TestRotationErrors(t *testing.T) {
	ctx := context.Background()
	srv := smtest.NewServer(t)
	c := srv.Client()
	v1 := srv.Put("db", "one")
	v2 := srv.Put("db", "two", "AWSPENDING")
	unknown := "00000000-0000-4000-8000-000000000000"

	errorAs[*types.ResourceNotFoundException](t, getErr(t, c, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String("db"), VersionId: aws.String(unknown), VersionStage: aws.String("AWSPENDING")}))
	_, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("db"),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(unknown), RemoveFromVersionId: aws.String(v1)})
	errorAs[*types.ResourceNotFoundException](t, err)
	// AWSCURRENT is on v1: moving it without naming v1 would put it on two.
	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("db"),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v2)})
	errorAs[*types.InvalidParameterException](t, err)
	// Naming a version that does not hold it is refused too: the move is
	// conditional on where the label is.
	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("db"),
		VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v2), RemoveFromVersionId: aws.String(v2)})
	errorAs[*types.InvalidParameterException](t, err)
	assertStages(t, stages(t, c, "db"), map[string][]string{v1: {"AWSCURRENT"}, v2: {"AWSPENDING"}})
}

func TestGetRandomPassword(t *testing.T) {
	ctx := context.Background()
	c := smtest.NewServer(t).Client()
	get := func(in *secretsmanager.GetRandomPasswordInput) string {
		t.Helper()
		out, err := c.GetRandomPassword(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.RandomPassword)
	}
	if pw := get(&secretsmanager.GetRandomPasswordInput{}); len(pw) != 32 || strings.Contains(pw, " ") {
		t.Fatalf("default password has length %d", len(pw))
	}
	for range 50 {
		pw := get(&secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(4), ExcludeCharacters: aws.String(`:/@"'\`)})
		if len(pw) != 4 || strings.ContainsAny(pw, `:/@"'\`) {
			t.Fatalf("password %d long holds an excluded character", len(pw))
		}
		for _, set := range []string{"abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"} {
			if !strings.ContainsAny(pw, set) {
				t.Fatalf("a 4-character password lacks a type it requires")
			}
		}
	}
	pw := get(&secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(64), ExcludePunctuation: aws.Bool(true),
		ExcludeUppercase: aws.Bool(true), ExcludeNumbers: aws.Bool(true)})
	if strings.Trim(pw, "abcdefghijklmnopqrstuvwxyz") != "" {
		t.Fatal("an excluded type appears")
	}
	for _, in := range []*secretsmanager.GetRandomPasswordInput{
		{PasswordLength: aws.Int64(0)},
		{PasswordLength: aws.Int64(4097)},
	} {
		_, err := c.GetRandomPassword(ctx, in)
		if code := apiCode(t, err); code != "ValidationException" {
			t.Fatalf("length %d: %s", aws.ToInt64(in.PasswordLength), code)
		}
	}
	for _, in := range []*secretsmanager.GetRandomPasswordInput{
		{ExcludeLowercase: aws.Bool(true), ExcludeUppercase: aws.Bool(true), ExcludeNumbers: aws.Bool(true), ExcludePunctuation: aws.Bool(true)},
		{PasswordLength: aws.Int64(3)}, // four types required
	} {
		_, err := c.GetRandomPassword(ctx, in)
		errorAs[*types.InvalidParameterException](t, err)
	}
	if pw := get(&secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(3), RequireEachIncludedType: aws.Bool(false)}); len(pw) != 3 {
		t.Fatal("wrong length")
	}
}
