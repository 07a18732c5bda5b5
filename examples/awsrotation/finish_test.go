package main

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestConcurrentFinishSecretsBothSucceed: Secrets Manager may invoke a step
// again while an earlier invocation still runs. Of two finishSecret
// invocations for one token that both pass their checks, one moves
// AWSCURRENT; the other's move loses AWS's condition (RemoveFromVersionId:
// the old current), and Promote reads the labels again, finds this very
// promotion done, and succeeds: neither step fails.
func TestConcurrentFinishSecretsBothSucceed(t *testing.T) {
	for _, scheme := range []string{"single", "alternating"} {
		t.Run(scheme, func(t *testing.T) {
			ctx := ctxT(t)
			e := newEnv(t, scheme)
			role := uniq("cfin_" + scheme[:3])
			arn := e.setup(t, ctx, scheme, role, "old-cfin-pw")
			token := e.rotate(t, arn)
			e.steps(t, ctx, arn, token, stepCreate, stepSet, stepTest)
			var barrier sync.WaitGroup
			barrier.Add(2)
			mk := func() *Rotator {
				var once sync.Once
				return e.hooked(t, scheme, &hookClient{beforeUpdate: func(context.Context, *secretsmanager.UpdateSecretVersionStageInput) error {
					once.Do(func() { barrier.Done(); barrier.Wait() })
					return nil
				}})
			}
			a, b := mk(), mk()
			errs := make(chan error, 2)
			go func() { errs <- handle(ctx, a, arn, token, stepFinish) }()
			go func() { errs <- handle(ctx, b, arn, token, stepFinish) }()
			for range 2 {
				if err := <-errs; err != nil {
					t.Errorf("a concurrent finishSecret for the same token failed: %v", err)
				}
			}
			e.finished(t, ctx, scheme, arn, token, alt(scheme, role), "old-cfin-pw")
		})
	}
}

// TestRetriedFinishSecretRemovesPending: finishSecret moved AWSCURRENT, then
// stopped before removing AWSPENDING (the Lambda timed out). The retry
// finds the token AWSCURRENT, and, since AWSPENDING is still on it,
// removes it: the rotation ends with AWSCURRENT alone on the version.
func TestRetriedFinishSecretRemovesPending(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, "single")
	role := uniq("pfin")
	arn := e.setup(t, ctx, "single", role, "old-pfin-pw")
	token := e.rotate(t, arn)
	e.steps(t, ctx, arn, token, stepCreate, stepSet, stepTest)
	timedOut := e.hooked(t, "single", &hookClient{beforeUpdate: func(_ context.Context, in *secretsmanager.UpdateSecretVersionStageInput) error {
		if aws.ToString(in.VersionStage) == "AWSPENDING" {
			return context.DeadlineExceeded
		}
		return nil
	}})
	if err := handle(ctx, timedOut, arn, token, stepFinish); err == nil {
		t.Fatal("the interrupted finishSecret succeeded")
	}
	e.steps(t, ctx, arn, token, stepFinish) // Secrets Manager's retry
	e.finished(t, ctx, "single", arn, token, role, "old-pfin-pw")
}
