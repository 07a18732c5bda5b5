package main

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
)

// uniq returns name with a random suffix: tests run again on one
// PostgreSQL server (-count) create new roles.
func uniq(name string) string { return name + "_" + strings.ToLower(rand.Text()[:8]) }

// setup creates role (password oldPW) and its secret for scheme; for the
// alternating scheme, with a masterarn secret holding the superuser.
func (e env) setup(t *testing.T, ctx context.Context, scheme, role, oldPW string) string {
	t.Helper()
	super(t, ctx, "CREATE ROLE "+role+" LOGIN PASSWORD '"+oldPW+"'")
	extra := map[string]any{}
	if scheme == "alternating" {
		extra["masterarn"] = e.create(t, "db/"+role+"/master", dbJSON("postgres", pg.Password, nil))
	}
	return e.create(t, "db/"+role, dbJSON(role, oldPW, extra))
}

// steps runs steps in order for token; each must succeed.
func (e env) steps(t *testing.T, ctx context.Context, arn, token string, steps ...string) {
	t.Helper()
	for _, s := range steps {
		if err := e.step(ctx, arn, token, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// refused runs step for token, which must fail and change nothing: neither
// the labels, nor the versions, nor which credential logs in.
func (e env) refused(t *testing.T, ctx context.Context, arn, token, step, canary string) error {
	t.Helper()
	stages, versions := e.srv.Stages(arn), len(e.srv.Versions(arn))
	u, p := e.value(t, arn, "AWSCURRENT")
	err := e.step(ctx, arn, token, step)
	if err == nil {
		t.Fatalf("%s out of order succeeded", step)
	}
	if strings.Contains(err.Error(), canary) {
		t.Fatalf("%s: the error quotes a value: %v", step, err)
	}
	if after := e.srv.Stages(arn); !maps.EqualFunc(stages, after, slices.Equal) || len(e.srv.Versions(arn)) != versions {
		t.Fatalf("the refused %s changed the secret: labels %v, then %v", step, stages, after)
	}
	if err := login(ctx, u, p); err != nil {
		t.Fatalf("after the refused %s AWSCURRENT no longer logs in: %v", step, err)
	}
	return err
}

// noop runs step for token, which must succeed and change nothing.
func (e env) noop(t *testing.T, ctx context.Context, arn, token, step string) {
	t.Helper()
	stages, versions := e.srv.Stages(arn), len(e.srv.Versions(arn))
	if err := e.step(ctx, arn, token, step); err != nil {
		t.Fatalf("%s (a no-op): %v", step, err)
	}
	if after := e.srv.Stages(arn); !maps.EqualFunc(stages, after, slices.Equal) || len(e.srv.Versions(arn)) != versions {
		t.Fatalf("%s (a no-op) changed the secret: labels %v, then %v", step, stages, after)
	}
}

// finished checks a rotation to token that finishSecret completed:
// AWSCURRENT is token's version alone and logs in as wantUser; AWSPREVIOUS
// is the credential before (alternating: still logs in; single: refused).
func (e env) finished(t *testing.T, ctx context.Context, scheme, arn, token, wantUser, prevPW string) {
	t.Helper()
	if st := e.srv.Stages(arn); !slices.Equal(st[token], []string{"AWSCURRENT"}) {
		t.Fatalf("labels after finishSecret: %v, want AWSCURRENT alone on %s", st, token)
	}
	u, p := e.value(t, arn, "AWSCURRENT")
	if u != wantUser {
		t.Fatalf("AWSCURRENT names user %q, want %q", u, wantUser)
	}
	if err := login(ctx, u, p); err != nil {
		t.Fatalf("AWSCURRENT does not log in: %v", err)
	}
	pu, pp := e.value(t, arn, "AWSPREVIOUS")
	if pp != prevPW {
		t.Fatal("AWSPREVIOUS is not the credential that was current before")
	}
	err := login(ctx, pu, pp)
	switch {
	case scheme == "alternating" && err != nil:
		t.Fatalf("alternating: AWSPREVIOUS (%q) no longer logs in: %v", pu, err)
	case scheme == "single" && err == nil:
		t.Fatal("single: AWSPREVIOUS still logs in")
	}
}

// TestOutOfOrder sends the steps out of order, both schemes, against the
// real SDK client and a real PostgreSQL. Each misplaced step is either
// refused with a clear error, changing nothing, or a no-op, as AWS's
// templates have it (a token already AWSCURRENT, a createSecret or setSecret
// done already); then the steps in order finish the rotation, which ends as
// every rotation must.
//
// One deviation from the templates: their finishSecret moves the labels
// whatever the pending version holds. Ours logs in with it first, so a
// finishSecret before createSecret or setSecret is refused instead of
// making current a credential the database does not take.
func TestOutOfOrder(t *testing.T) {
	for _, scheme := range []string{"single", "alternating"} {
		t.Run(scheme, func(t *testing.T) {
			t.Run("SetTestFinishBeforeCreate", func(t *testing.T) {
				ctx := ctxT(t)
				e := newEnv(t, scheme)
				role := uniq("ooo_" + scheme[:3] + "_precreate")
				arn := e.setup(t, ctx, scheme, role, "old-pw-canary")
				token := e.rotate(t, arn)
				for _, s := range []string{stepSet, stepTest, stepFinish} {
					e.refused(t, ctx, arn, token, s, "old-pw-canary")
				}
				if scheme == "alternating" {
					// setSecret refused before it created the clone.
					if roleExists(t, ctx, alt(scheme, role)) {
						t.Fatal("a refused setSecret created the clone role")
					}
				}
				e.steps(t, ctx, arn, token, stepCreate, stepSet, stepTest, stepFinish)
				e.finished(t, ctx, scheme, arn, token, alt(scheme, role), "old-pw-canary")
			})
			t.Run("FinishBeforeSet", func(t *testing.T) {
				ctx := ctxT(t)
				e := newEnv(t, scheme)
				role := uniq("ooo_" + scheme[:3] + "_preset")
				arn := e.setup(t, ctx, scheme, role, "old-pw-canary")
				token := e.rotate(t, arn)
				e.steps(t, ctx, arn, token, stepCreate)
				err := e.refused(t, ctx, arn, token, stepFinish, "old-pw-canary")
				if !errors.Is(err, errRefused) {
					t.Fatalf("finishSecret before setSecret: %v, want a refusal", err)
				}
				e.refused(t, ctx, arn, token, stepTest, "old-pw-canary")
				e.steps(t, ctx, arn, token, stepSet, stepTest, stepFinish)
				e.finished(t, ctx, scheme, arn, token, alt(scheme, role), "old-pw-canary")
			})
			t.Run("FinishBeforeTestThenLateSteps", func(t *testing.T) {
				ctx := ctxT(t)
				e := newEnv(t, scheme)
				role := uniq("ooo_" + scheme[:3] + "_pretest")
				arn := e.setup(t, ctx, scheme, role, "old-pw-canary")
				token := e.rotate(t, arn)
				e.steps(t, ctx, arn, token, stepCreate, stepSet)
				// The templates finish without a test; so do we, the
				// credential being set.
				e.steps(t, ctx, arn, token, stepFinish)
				// Late and repeated steps for a token that is AWSCURRENT:
				// no-ops.
				for _, s := range []string{stepTest, stepSet, stepCreate, stepFinish} {
					e.noop(t, ctx, arn, token, s)
				}
				e.finished(t, ctx, scheme, arn, token, alt(scheme, role), "old-pw-canary")
			})
			t.Run("RetryOfEarlierStep", func(t *testing.T) {
				ctx := ctxT(t)
				e := newEnv(t, scheme)
				role := uniq("ooo_" + scheme[:3] + "_retry")
				arn := e.setup(t, ctx, scheme, role, "old-pw-canary")
				token := e.rotate(t, arn)
				e.steps(t, ctx, arn, token, stepCreate, stepSet, stepTest)
				_, pw := e.value(t, arn, "AWSPENDING")
				// createSecret and setSecret again, after testSecret: the
				// pending value and the database stay as they are.
				e.noop(t, ctx, arn, token, stepCreate)
				e.noop(t, ctx, arn, token, stepSet)
				if _, again := e.value(t, arn, "AWSPENDING"); again != pw {
					t.Fatal("a late createSecret replaced the pending value")
				}
				e.steps(t, ctx, arn, token, stepFinish)
				e.finished(t, ctx, scheme, arn, token, alt(scheme, role), "old-pw-canary")
			})
			t.Run("NewTokenWhilePending", func(t *testing.T) {
				ctx := ctxT(t)
				e := newEnv(t, scheme)
				role := uniq("ooo_" + scheme[:3] + "_newtok")
				arn := e.setup(t, ctx, scheme, role, "old-pw-canary")
				// A first rotation, so that AWSPREVIOUS exists.
				first := e.rotate(t, arn)
				e.steps(t, ctx, arn, first, stepCreate, stepSet, stepTest, stepFinish)
				prevID := ""
				for id, st := range e.srv.Stages(arn) {
					if slices.Contains(st, "AWSPREVIOUS") {
						prevID = id
					}
				}
				_, firstPW := e.value(t, arn, "AWSCURRENT")
				token := e.rotate(t, arn)
				e.steps(t, ctx, arn, token, stepCreate)
				_, pendPW := e.value(t, arn, "AWSPENDING")
				// AWS refuses a second rotation while one is pending.
				const other = "0f0e0d0c-0b0a-4908-8706-050403020100"
				if _, err := e.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(other)}); err == nil {
					t.Fatal("RotateSecret while a rotation is pending succeeded")
				}
				// A createSecret for another token: not a version, or a
				// version that is not AWSPENDING: refused.
				for _, s := range []string{stepCreate, stepSet, stepTest, stepFinish} {
					if err := e.refused(t, ctx, arn, other, s, pendPW); !errors.Is(err, errRefused) {
						t.Fatalf("%s for a token that is no version: %v", s, err)
					}
				}
				if err := e.refused(t, ctx, arn, prevID, stepCreate, pendPW); !errors.Is(err, errRefused) {
					t.Fatalf("createSecret for the AWSPREVIOUS version: %v", err)
				}
				// The token of AWSCURRENT: a finished rotation, a no-op.
				e.noop(t, ctx, arn, first, stepCreate)
				if _, again := e.value(t, arn, "AWSPENDING"); again != pendPW {
					t.Fatal("the pending value changed")
				}
				e.steps(t, ctx, arn, token, stepSet, stepTest, stepFinish)
				e.finished(t, ctx, scheme, arn, token, role, firstPW)
			})
		})
	}
}

// roleExists reports whether role exists in the cluster.
func roleExists(t *testing.T, ctx context.Context, role string) bool {
	t.Helper()
	conn, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}
