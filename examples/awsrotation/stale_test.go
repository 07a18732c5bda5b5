package main

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestStaleSetSecretChangesNoPassword: a setSecret invocation that read
// AWSCURRENT and AWSPENDING, then stalled, runs on after its rotation and
// two more finished. It re-reads the labels right before it changes a
// password, finds its token no longer AWSPENDING, and is refused: the
// clone, which AWSCURRENT names by then, keeps its password.
func TestStaleSetSecretChangesNoPassword(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, "alternating")
	role := uniq("stale")
	arn := e.setup(t, ctx, "alternating", role, "old-stale-pw")
	var master string
	{
		out, err := e.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(aws.ToString(out.SecretString)), &m)
		master = m["masterarn"].(string)
	}
	t1 := e.rotate(t, arn)
	e.steps(t, ctx, arn, t1, stepCreate)

	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	stale := e.hooked(t, "alternating", &hookClient{beforeGet: func(ctx context.Context, in *secretsmanager.GetSecretValueInput) error {
		if aws.ToString(in.SecretId) == master {
			once.Do(func() { close(reached); <-release })
		}
		return nil
	}})
	staleErr := make(chan error, 1)
	go func() { staleErr <- handle(ctx, stale, arn, t1, stepSet) }()
	<-reached

	// Meanwhile: the first rotation's retry finishes it, and two more
	// rotations run (clone, base, clone).
	e.steps(t, ctx, arn, t1, stepSet, stepTest, stepFinish)
	for range 2 {
		tok := e.rotate(t, arn)
		e.steps(t, ctx, arn, tok, stepCreate, stepSet, stepTest, stepFinish)
	}
	u, p := e.value(t, arn, "AWSCURRENT")
	if err := login(ctx, u, p); err != nil {
		t.Fatalf("before the stale step: AWSCURRENT does not log in: %v", err)
	}
	close(release)
	serr := <-staleErr
	if !errors.Is(serr, errRefused) {
		t.Errorf("the stale setSecret returned %v, want it refused", serr)
	}
	if err := login(ctx, u, p); err != nil {
		t.Fatalf("a stale setSecret for %s (returned %v) changed the password of %q, the user AWSCURRENT names: AWSCURRENT no longer logs in: %v", t1, serr, u, err)
	}
}
