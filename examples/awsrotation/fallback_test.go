package main

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestSingleUserSetSecretFallsBackToPrevious: when AWSCURRENT no longer
// logs in (the value was updated by hand, or the database lost the
// password) but AWSPREVIOUS does, setSecret logs in with AWSPREVIOUS to set
// the pending password, as AWS's single-user template does; otherwise the
// rotation would be stuck for good (Secrets Manager retries the token, and
// RotateSecret refuses a new one while it is pending).
func TestSingleUserSetSecretFallsBackToPrevious(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, "single")
	role := uniq("prevfb")
	super(t, ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'works-prev-pw'")
	arn := e.create(t, "db/"+role, dbJSON(role, "works-prev-pw", nil))
	if _, err := e.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn),
		SecretString: aws.String(dbJSON(role, "stale-current-pw", nil))}); err != nil {
		t.Fatal(err)
	}
	token := e.rotate(t, arn)
	e.steps(t, ctx, arn, token, stepCreate)
	if err := e.step(ctx, arn, token, stepSet); err != nil {
		t.Fatalf("setSecret with AWSCURRENT refused and AWSPREVIOUS working: %v", err)
	}
	e.steps(t, ctx, arn, token, stepTest, stepFinish)
	u, p := e.value(t, arn, "AWSCURRENT")
	if err := login(ctx, u, p); err != nil {
		t.Fatal(err)
	}
}
